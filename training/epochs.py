"""The trainer's per-epoch bookkeeping: which epoch is best, the history row, the log line.

The best epoch has the highest validation AUC, ties going to the lower validation loss (a small validation
set reaches AUC 1.0 long before the scores are good); minus the loss stands in for an undefined AUC. With the
config's ``best_checkpoint = "last"`` every epoch replaces the one before.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["epoch_row", "epochs_since_best", "log_epoch", "selection_key"]

logger = logging.getLogger("training.trainer")


def selection_key(auc: float | None, loss: float) -> tuple[float, float]:
    """What ranks epochs: ``(validation AUC, or minus the loss when the AUC is undefined; minus the loss)``."""
    metric = float(auc) if auc is not None and math.isfinite(auc) else -float(loss)
    return metric, -float(loss)


def epochs_since_best(history: Sequence[Mapping[str, Any]]) -> int:
    """Epochs after the best one of ``history`` (its rows from :func:`epoch_row`); the first of equals wins."""
    keys = [selection_key(r["val_auc"], r["val_loss"]) for r in history]
    return len(keys) - 1 - max(range(len(keys)), key=keys.__getitem__)


def epoch_row(
    epoch: int, train: Mapping[str, float], val: Mapping[str, Any], seconds: float
) -> dict[str, Any]:
    """One row of ``history.json``: the epoch's training losses and validation figures."""
    return {
        "epoch": epoch,
        "lr": train["lr"],
        **{f"train_{k}": v for k, v in train.items() if k != "lr"},
        "val_loss": val["loss"],
        "val_auc": val["auc_roc"],
        "val_auc_pr": val["auc_pr"],
        "val_threshold": val["optimal_threshold"],
        "time_s": seconds,  # training and validation; the trainer adds checkpoint_s
    }


def log_epoch(row: Mapping[str, Any], epochs: int, improved: bool) -> None:
    """The epoch's one log line."""
    logger.info(
        "epoch %d/%d: loss %.4f (video_bce %.4f, topk_mil %.4f, snippet_bce %.4f, frame_bce %.4f, smooth %.5f, "
        "sparse %.4f, streaming %.4f) lr %.2e val_loss %.4f val_auc %.4f%s %.1fs + %.1fs checkpoint",
        row["epoch"], epochs, row["train_total"], row["train_video_bce"], row["train_topk_mil"],
        row["train_snippet_bce"], row["train_frame_bce"],
        row["train_smoothness"], row["train_sparsity"], row.get("train_streaming", 0.0), row["lr"], row["val_loss"],
        row["val_auc"], " (best)" if improved else "", row["time_s"], row.get("checkpoint_s", 0.0),
    )  # fmt: skip
