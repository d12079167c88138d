"""The trainer's DataLoaders: a training set shuffled per epoch from the seed (sharded with a DistributedSampler
under ``torchrun``), a validation set in order, and a caller's own DataLoader used as it is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from training.distributed import DistInfo

__all__ = ["dataset_of", "run_loader"]


def run_loader(
    dataset: Dataset | DataLoader, cfg: Mapping[str, Any], dist: DistInfo, device: torch.device, epoch: int, *,
    train: bool,
) -> DataLoader:  # fmt: skip
    """Batches of ``dataset`` for ``epoch``: shuffled by ``cfg["seed"] + epoch`` (by the seed and the epoch
    under DDP) when ``train``, else in order."""
    if isinstance(dataset, DataLoader):
        return dataset  # the caller's own loader (the seed's ``train``): its batches as they are
    if train and dist.distributed:
        sampler = DistributedSampler(dataset, dist.world_size, dist.rank, shuffle=True, seed=cfg["seed"])
        sampler.set_epoch(epoch)
    elif train:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(int(cfg["seed"]) + epoch))
    else:
        sampler = None
    return DataLoader(
        dataset,
        batch_size=cfg["batch_size"],
        sampler=sampler,
        num_workers=cfg["num_workers"],
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )


def dataset_of(data: Dataset | DataLoader) -> Dataset:
    """The data set behind a DataLoader, or ``data`` itself."""
    return data.dataset if isinstance(data, DataLoader) else data
