"""Multiple-instance learning parts: a snippet scorer and gated attention pooling over a video's snippets.

Gated attention follows Ilse, Tomczak & Welling, "Attention-based Deep Multiple Instance Learning"
(ICML 2018, https://arxiv.org/abs/1802.04712), eq. 9: ``a_k = softmax_k(w^T (tanh(V h_k) * sigmoid(U h_k)))``.
The snippet scorer is RTFM's classifier (Tian et al. 2021): an MLP 512 -> 128 -> 1 with dropout and a sigmoid.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn

from training.configs import DEFAULTS

logger = logging.getLogger(__name__)

__all__ = ["GatedAttention", "SnippetScorer", "attention_pool"]


class GatedAttention(nn.Module):
    """Attention weights over the ``K`` snippets of each video: ``(N, K, D)`` -> ``(N, K)``, rows sum to 1.

    Args:
        in_dim: ``D``, the snippet feature size.
        attention_dim: size of the hidden attention space (``V`` and ``U`` have this many rows).
    """

    def __init__(self, in_dim: int, attention_dim: int = 128) -> None:
        super().__init__()
        if attention_dim < 1:
            raise ValueError(f"mil_attention_dim must be >= 1, got {attention_dim}")
        self.V = nn.Linear(in_dim, attention_dim)
        self.U = nn.Linear(in_dim, attention_dim)
        self.w = nn.Linear(attention_dim, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        gated = torch.tanh(self.V(features)) * torch.sigmoid(self.U(features))  # (N, K, A)
        logits = self.w(gated).squeeze(-1)  # (N, K)
        return torch.softmax(logits, dim=1)  # (N, K)


class SnippetScorer(nn.Module):
    """Anomaly score of each snippet: ``(N, K, D)`` -> ``(N, K)`` in ``(0, 1)``.

    Args:
        in_dim: ``D``, the snippet feature size.
        hidden_dims: widths of the hidden layers (RTFM: 512, 128).
        dropout: drop probability after each hidden layer.
    """

    def __init__(
        self, in_dim: int, hidden_dims: Sequence[int] = (512, 128), *, dropout: float = DEFAULTS["dropout"]
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout is a drop probability in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        width = in_dim
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.mlp(features).squeeze(-1))  # (N, K)


def attention_pool(scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Video score: attention-weighted sum of snippet scores, ``(N, K), (N, K)`` -> ``(N,)``.

    With weights on the simplex and scores in ``[0, 1]`` the result is in ``[0, 1]``.
    """
    return (scores * weights).sum(dim=1)  # (N,)
