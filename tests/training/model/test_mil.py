"""Attention MIL pooling and the snippet scorer."""

import torch

from training.model.mil import GatedAttention, SnippetScorer, attention_pool


def test_attention_is_a_distribution_over_snippets():
    attention = GatedAttention(12, attention_dim=6)
    weights = attention(torch.randn(3, 5, 12))
    assert weights.shape == (3, 5)
    assert (weights > 0).all()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(3))


def test_attention_of_one_snippet_is_one():
    weights = GatedAttention(12)(torch.randn(2, 1, 12))
    torch.testing.assert_close(weights, torch.ones(2, 1))


def test_attention_follows_the_snippets_when_they_are_reordered():
    attention = GatedAttention(12, attention_dim=6)
    x = torch.randn(2, 5, 12)
    order = torch.tensor([4, 2, 0, 1, 3])
    torch.testing.assert_close(attention(x[:, order]), attention(x)[:, order])


def test_snippet_scores_are_probabilities():
    scorer = SnippetScorer(12, (8, 4), dropout=0.0)
    scores = scorer(torch.randn(3, 5, 12) * 10)
    assert scores.shape == (3, 5)
    assert ((scores >= 0) & (scores <= 1)).all()


def test_scorer_layers_follow_hidden_dims():
    scorer = SnippetScorer(12, (8, 4))
    widths = [m.out_features for m in scorer.mlp if isinstance(m, torch.nn.Linear)]
    assert widths == [8, 4, 1]


def test_pooled_score_lies_between_the_lowest_and_highest_snippet_score():
    scores = torch.rand(4, 6)
    weights = torch.softmax(torch.randn(4, 6), dim=1)
    video = attention_pool(scores, weights)
    assert video.shape == (4,)
    assert (video >= scores.min(dim=1).values - 1e-6).all()
    assert (video <= scores.max(dim=1).values + 1e-6).all()
