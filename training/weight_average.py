"""Stochastic weight averaging (Izmailov et al., "Averaging Weights Leads to Wider Optima and Better
Generalization", UAI 2018) for the trainer's config key ``swa_epochs``.

The weights at the end of each of the last ``swa_epochs`` epochs are averaged (``torch.optim.swa_utils.
AveragedModel``); the learning rate holds at the schedule's value where that phase begins
(:func:`swa_start_step`), so the averaged weights come from around one region rather than from one point of a
decay. The averaged weights then replace the trained ones, and BatchNorm's running statistics, which an
average of weights does not give, are measured again on the training data (:func:`recompute_batchnorm`).

One network comes out, as without averaging: the device runs the same model at the same cost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

__all__ = ["WeightAverage", "recompute_batchnorm", "swa_start_step"]

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def swa_start_step(config: Mapping[str, Any], updates_per_epoch: int) -> int | None:
    """The update from which the learning rate holds still (the averaging phase), or None without one."""
    epochs = int(config["swa_epochs"])
    return (int(config["epochs"]) - epochs) * updates_per_epoch if epochs else None


class WeightAverage:
    """The running mean of ``module``'s parameters over the epochs passed to :meth:`update`."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.average = AveragedModel(module, use_buffers=False)

    @property
    def count(self) -> int:
        """Epochs averaged so far."""
        return int(self.average.n_averaged)

    def update(self) -> None:
        self.average.update_parameters(self.module)

    @torch.no_grad()
    def apply(self) -> None:
        """Copy the averaged parameters into the trained module (its BatchNorm statistics are then stale)."""
        if not self.count:
            raise RuntimeError("no weights averaged yet")
        for mine, averaged in zip(self.module.parameters(), self.average.module.parameters(), strict=True):
            mine.copy_(averaged)

    def state_dict(self) -> dict[str, Any]:
        return self.average.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.average.load_state_dict(state)


@torch.no_grad()
def recompute_batchnorm(module: nn.Module, batches: Iterable[Any], forward: Callable[[Any], Any]) -> int:
    """Measure the running statistics of ``module``'s BatchNorm layers again: reset, then a cumulative mean over
    ``forward(batch)`` for every batch, in training mode (as ``torch.optim.swa_utils.update_bn``, but only for
    ``module``'s own layers: a frozen backbone outside it keeps its statistics). Returns the batches seen."""
    norms = [m for m in module.modules() if isinstance(m, _NORMS) and m.track_running_stats]
    if not norms:
        return 0
    momenta = {m: m.momentum for m in norms}
    modes = {m: m.training for m in norms}
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts the same
        m.train()
    seen = 0
    try:
        for batch in batches:
            forward(batch)
            seen += 1
    finally:
        for m in norms:
            m.momentum = momenta[m]
            m.train(modes[m])
    return seen
