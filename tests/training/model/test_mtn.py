"""RTFM's multi-scale temporal network, causal: shapes for any K, the branch pyramid, temporal context that
only looks back (a snippet's output never depends on later snippets)."""

import pytest
import torch

from training.model.mtn import MultiScaleTemporalNetwork, NonLocalBlock1d, dilations_for


@pytest.mark.parametrize("k", [1, 2, 4, 7])
def test_output_has_the_input_shape_for_any_k(k):
    mtn = MultiScaleTemporalNetwork(24, hidden_dim=8).eval()
    with torch.no_grad():
        out = mtn(torch.randn(3, k, 24))
    assert out.shape == (3, k, 24)
    assert torch.isfinite(out).all()


def test_trains_on_a_single_snippet_batch():
    mtn = MultiScaleTemporalNetwork(24, hidden_dim=8).train()
    out = mtn(torch.randn(2, 1, 24))  # (N, K=1, D)
    out.sum().backward()
    assert mtn.dilated[0][0].weight.grad is not None


@pytest.mark.parametrize("num_scales, dilations", [(1, (1,)), (2, (1, 2)), (3, (1, 2, 4)), (4, (1, 2, 4, 8))])
def test_num_scales_picks_the_dilated_branches(num_scales, dilations):
    mtn = MultiScaleTemporalNetwork(16, hidden_dim=4, num_scales=num_scales)
    assert dilations_for(num_scales) == dilations
    assert tuple(branch[0].dilation[0] for branch in mtn.dilated) == dilations
    assert mtn.fuse[0].in_channels == 4 * (num_scales + 1)  # the pyramid plus the non-local branch


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_bad_num_scales_is_refused_naming_the_option(bad):
    with pytest.raises(ValueError, match="mtn_num_scales"):
        MultiScaleTemporalNetwork(16, num_scales=bad)


def test_non_local_block_starts_as_the_identity():
    block = NonLocalBlock1d(8, norm_layer=torch.nn.BatchNorm1d).eval()
    x = torch.randn(2, 8, 5)
    torch.testing.assert_close(block(x), x)


def test_non_local_block_sees_the_whole_past():
    torch.manual_seed(0)
    block = NonLocalBlock1d(8, norm_layer=torch.nn.BatchNorm1d).eval()
    torch.nn.init.ones_(block.W[1].weight)  # as after training: the attention branch contributes
    x = torch.randn(1, 8, 12)
    y = x.clone()
    y[:, :, 0] += 3.0  # change only the first snippet
    with torch.no_grad():
        assert not torch.allclose(block(x)[:, :, -1], block(y)[:, :, -1])  # the last one hears of it


def test_non_local_block_never_sees_the_future():
    torch.manual_seed(0)
    block = NonLocalBlock1d(8, norm_layer=torch.nn.BatchNorm1d).eval()
    torch.nn.init.ones_(block.W[1].weight)
    x = torch.randn(1, 8, 12)
    y = x.clone()
    y[:, :, -1] += 3.0  # change only the last snippet
    with torch.no_grad():
        torch.testing.assert_close(block(x)[:, :, :-1], block(y)[:, :, :-1])


def _trained_like(mtn: MultiScaleTemporalNetwork) -> MultiScaleTemporalNetwork:
    """Non-trivial norms (the non-local branch active), as after training."""
    with torch.no_grad():
        for module in mtn.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.weight.uniform_(0.5, 1.5)
                module.running_mean.uniform_(-0.5, 0.5)
    return mtn.eval()


@pytest.mark.parametrize("k", [1, 3, 8])
def test_snippet_output_does_not_change_when_later_snippets_change(k):
    torch.manual_seed(k)
    mtn = _trained_like(MultiScaleTemporalNetwork(16, hidden_dim=8))
    x = torch.randn(2, 12, 16)
    y = x.clone()
    y[:, k:] = torch.randn(2, 12 - k, 16) * 5  # everything after snippet k - 1 replaced
    with torch.no_grad():
        a, b = mtn(x), mtn(y)
    torch.testing.assert_close(a[:, :k], b[:, :k])
    assert not torch.allclose(a[:, k:], b[:, k:])


def test_a_prefix_window_gives_the_same_outputs_as_the_whole_window():
    torch.manual_seed(0)
    mtn = _trained_like(MultiScaleTemporalNetwork(16, hidden_dim=8))
    x = torch.randn(2, 10, 16)
    with torch.no_grad():
        whole = mtn(x)
        for n in (1, 4, 9):
            torch.testing.assert_close(mtn(x[:, :n]), whole[:, :n])


def test_a_snippet_is_mixed_with_its_neighbours():
    torch.manual_seed(0)
    mtn = MultiScaleTemporalNetwork(16, hidden_dim=8, num_scales=1).eval()
    x = torch.randn(1, 12, 16)
    y = x.clone()
    y[:, 3] += 1.0
    with torch.no_grad():
        changed = (mtn(x) - mtn(y)).abs().amax(dim=2)[0]  # (K,)
    assert (
        changed[4] > 0 and changed[5] > 0
    )  # later neighbours of snippet 3 change (dilation 1, then the fuse)
    assert changed[2] == 0  # causal: an earlier snippet does not hear of it
    assert (
        changed[8] == 0
    )  # beyond the receptive field (3 + 2 + 2) (non-local branch still the identity at init)
