"""Stochastic weight averaging (Izmailov et al., "Averaging Weights Leads to Wider Optima and Better
Generalization", UAI 2018) for the trainer's config key ``swa_epochs``.

The weights at the end of each of the last ``swa_epochs`` epochs are averaged (``torch.optim.swa_utils.
AveragedModel``); the learning rate holds at the schedule's value where that phase begins
(:func:`training.schedule.run_lr`), so the averaged weights come from around one region rather than from one point of a
decay. The averaged weights then replace the trained ones, and BatchNorm's running statistics, which an
average of weights does not give, are measured again on the training data (:func:`recompute_batchnorm`).

One network comes out, as without averaging: the device runs the same model at the same cost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

__all__ = ["WeightAverage", "recompute_batchnorm"]

logger = logging.getLogger("training.trainer")

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class WeightAverage:
    """The running mean of ``module``'s parameters over the epochs passed to :meth:`update`."""

    def __init__(self, module: nn.Module, config: Mapping[str, Any] | None = None) -> None:
        self.module = module
        self.average = AveragedModel(module, use_buffers=False)
        # the averaging phase of a run of ``config``: epochs (0-based) from ``start`` to ``epochs - 1``
        self.epochs = int(config["epochs"]) if config else 0
        self.start = self.epochs - int(config["swa_epochs"]) if config else 0

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

    def after_epoch(self, epoch: int) -> bool:
        """Average in the weights after 0-based ``epoch`` if it is in the phase; True after the run's last."""
        if epoch >= self.start:
            self.update()
        return epoch + 1 == self.epochs

    def finish(self, batches: Iterable[Any], forward: Callable[[Any], Any]) -> None:
        """The average into the module, and its BatchNorm measured again on ``batches``."""
        self.apply()
        seen = recompute_batchnorm(self.module, batches, forward)
        logger.info(
            "weights of the last %d epochs averaged; BatchNorm statistics measured again on %d batches",
            self.count,
            seen,
        )

    def resume(self, state: Mapping[str, Any] | None, epochs_done: int, source: object) -> None:
        """Carry a checkpoint's average over if the run stopped inside its phase (not when extended past it);
        a checkpoint without one (written without ``swa_epochs``) resumed inside the phase says how many of
        the phase's epochs the average will lack."""
        if epochs_done <= self.start:
            if state is not None:
                logger.info(
                    "%s: its averaged weights are not carried over (the averaging phase moved)", source
                )
        elif state is not None:
            self.load_state_dict(state)
        else:
            logger.warning(
                "%s holds no averaged weights (written without swa_epochs): the average leaves out epochs "
                "%d-%d of the averaging phase, which ran before the resume",
                source,
                self.start + 1,
                epochs_done,
            )

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
