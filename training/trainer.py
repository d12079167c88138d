"""``I3D_MTN_Trainer``: trains the detector end to end from pixels or its head on cached features.

Recipe (RTFM, Tian et al. ICCV 2021, where it applies):

- AdamW (Adam with decoupled weight decay; RTFM uses Adam with L2 weight decay) at ``learning_rate``;
- the learning rate of :func:`training.schedule.lr_at`: linear warmup over ``warmup_epochs``, cosine decay to
  ``min_lr_ratio * learning_rate``, per optimizer update;
- gradient accumulation over ``grad_accum_steps`` batches, gradient clipping at ``grad_clip`` (L2 norm);
- mixed precision (``amp``): ``auto`` uses it on CUDA only (bf16 where supported, else fp16 with a gradient
  scaler); ``on`` also uses bf16 autocast on CPU; ``off`` never;
- an optional streaming consistency term (config key ``streaming_loss_weight``, default 0; the keyword
  argument overrides it; :mod:`training.train_step`): the head's newest score over random prefixes of the
  window should match the full window's score of that snippet. The MTN is causal, so they already match;
- optional stochastic weight averaging (config key ``swa_epochs``, :mod:`training.weight_average`): the last
  epochs' weights averaged into the model at a held learning rate, BatchNorm measured again;
- validation every epoch: the video score is the device's (max over snippets of the streaming score),
  ``val_auc`` its ROC AUC; ``best.pt`` keeps the best epoch (highest ``val_auc``, ties going to the lower
  ``val_loss``: a small validation set reaches AUC 1.0 long before the scores are good; with
  ``best_checkpoint = "last"``, the last epoch and its threshold), early stopping after
  ``early_stopping_patience`` epochs without a better epoch (0: never). Validation items hold ``K`` snippets
  of a video; ``i3dmtn train`` then sets the checkpoints' threshold on the whole validation videos, as
  ``evaluate`` and the device score them (:mod:`training.video_threshold`);
- reproducible: every random choice derives from ``seed`` (model init, per-epoch shuffling, per-item
  sampling and augmentation, dropout), and ``last.pt`` stores the random states so ``resume`` continues the
  same run.

The seed's call ``I3D_MTN_Trainer(model, config).train(train_loader, val_loader, num_epochs=50)`` is
:meth:`I3D_MTN_Trainer.fit` on DataLoaders: a training DataLoader is used as it is, and ``output_dir``
defaults to ``runs/<config name>`` as for ``i3dmtn train``.

Two modes, picked from the training set: :class:`~training.data.AnomalyVideoDataset` items (``clips``) train
the whole model; :class:`~training.feature_dataset.FeatureDataset` items (``features``) train ``model.head``
only, with the backbone frozen (the checkpoint still holds the whole model; with ``standardize_features`` the head
first takes the training snippets' mean and spread). Under ``torchrun`` the trained
module is wrapped in DistributedDataParallel and the data sharded with a DistributedSampler; rank 0 writes.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from training.checkpoint import (
    CheckpointError,
    copy_checkpoint,
    load_model_state,
    read_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from training.configs import check_training_mode, save_config, validate_config
from training.distributed import DistInfo, barrier, init_distributed
from training.epochs import epoch_row, epochs_since_best, log_epoch, selection_key
from training.feature_dataset import FeatureDataset
from training.finetune import write_init_record
from training.loaders import dataset_of, run_loader
from training.losses import AnomalyLoss, safe_bce
from training.metrics import json_safe
from training.mixup import mix_batch
from training.schedule import run_lr
from training.train_step import TrainStep, amp_dtype, outputs_from_head
from training.validation import gathered_video_metrics, streaming_batch
from training.weight_average import WeightAverage

__all__ = ["I3D_MTN_Trainer", "outputs_from_head"]

logger = logging.getLogger(__name__)


class I3D_MTN_Trainer:
    """Fit an :class:`~training.model.I3D_MTN_AnomalyDetector`; writes ``best.pt``, ``last.pt``,
    ``config.json`` and ``history.json`` into ``output_dir`` (rank 0 only)."""

    def __init__(
        self,
        model: nn.Module,
        config: Mapping[str, Any],
        *,
        output_dir: str | Path | None = None,
        device: str | torch.device | None = None,
        progress: bool = True,
        streaming_loss_weight: float | None = None,
    ) -> None:
        self.config = validate_config(config)
        self.streaming_loss_weight = float(
            self.config["streaming_loss_weight"] if streaming_loss_weight is None else streaming_loss_weight
        )
        self.dist: DistInfo = init_distributed(device)
        self.device = self.dist.device
        self.model = model.to(self.device)
        self.output_dir = Path("runs") / self.config["name"] if output_dir is None else Path(output_dir)
        self.progress = progress and self.dist.is_main
        self.loss_fn = AnomalyLoss(self.config)
        self.history: list[dict[str, Any]] = []
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer updates done
        self.best_metric = -math.inf
        self.best_loss = math.inf  # val_loss of the best epoch: breaks ties in best_metric
        self.threshold: float | None = None
        self.started_from: dict[str, Any] | None = None  # a fine-tune's checkpoint (training.finetune)
        self.head_only = False
        self.optimizer: torch.optim.Optimizer | None = None
        self.swa: WeightAverage | None = None  # the running average of the last swa_epochs epochs' weights
        self.amp_dtype = amp_dtype(self.config["amp"], self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

    # ------------------------------------------------------------------------------------------- set-up
    def _trained_module(self) -> nn.Module:
        return self.model.head if self.head_only else self.model

    def _setup(self, head_only: bool) -> None:
        self.head_only = head_only
        if head_only:
            self.model.backbone.requires_grad_(False)
        logits = getattr(self.model.backbone, "logits", None)  # Kinetics classifier: not on the feature path
        if logits is not None:
            logits.requires_grad_(False)  # (DDP refuses parameters that never get a gradient)
        module = self._trained_module()
        self.optimizer = torch.optim.AdamW(
            [p for p in module.parameters() if p.requires_grad],
            lr=self.config["learning_rate"],
            weight_decay=self.config["weight_decay"],
            # one fused kernel for all parameters instead of ~10 small ops per tensor: on the small head of
            # head-only training that cut an epoch by about 10%
            fused=self.device.type in ("cpu", "cuda") or None,
        )
        self.swa = WeightAverage(module, self.config) if self.config["swa_epochs"] else None
        self.wrapped: nn.Module = TrainStep(
            self.model, head_only=head_only, num_prefixes=4 if self.streaming_loss_weight > 0 else 0
        )
        if self.dist.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.wrapped = DistributedDataParallel(self.wrapped, device_ids=ids)

    def _seed(self) -> None:
        seed = int(self.config["seed"]) + 1000 * self.dist.rank
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)

    def _resume(self, path: Path) -> None:
        if not path.is_file():
            raise CheckpointError(f"cannot resume: {path} not found (train without resume first)")
        ckpt = read_checkpoint(path, map_location=self.device)
        changed = sorted(k for k in self.config if ckpt["config"].get(k) != self.config[k])
        if changed:
            logger.info("resuming %s with changed config keys %s", path, changed)
        load_model_state(self.model, ckpt["model"], path)
        if ckpt.get("optimizer") is not None and ckpt.get("head_only") == self.head_only:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        else:
            logger.warning("%s: optimizer state not restored (other training mode), starting it afresh", path)
        self.step = int(ckpt["scheduler"]["step"])
        self.epoch = int(ckpt["epoch"])
        self.best_metric = float(ckpt["best_metric"])
        self.best_loss = float(ckpt.get("best_loss", math.inf))  # checkpoints before ties were broken
        self.threshold = ckpt.get("threshold")
        self.history = list(ckpt.get("history", []))
        if self.swa is not None:
            self.swa.resume(ckpt.get("swa"), self.epoch, path)
        self.started_from = ckpt.get("started_from")
        if self.dist.is_main and "rng" in ckpt:
            set_rng_state(ckpt["rng"])
        logger.info("resumed from %s after epoch %d (best val_auc %.4f)", path, self.epoch, self.best_metric)

    def _loader(self, dataset: Dataset | DataLoader, epoch: int, *, train: bool) -> DataLoader:
        return run_loader(dataset, self.config, self.dist, self.device, epoch, train=train)

    # ------------------------------------------------------------------------------------------- steps
    def _autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype else nullcontext()

    def _inputs(self, batch: Mapping[str, Any]) -> torch.Tensor:
        key = "features" if self.head_only else "clips"  # (B, K, D) or (B, 3, K*S, H, W)
        return batch[key].to(self.device, non_blocking=True)

    def _loss(
        self, out: Mapping[str, torch.Tensor], batch: Mapping[str, Any]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """``(total to back-propagate, parts for the log)``: AnomalyLoss plus the streaming consistency term."""
        parts = self.loss_fn(
            out,
            batch["label"].to(self.device),
            batch["frame_labels"].to(self.device),
            batch["has_frame_labels"].to(self.device),
        )
        total, logged = parts.total, parts.as_dict()
        if "prefix_scores" in out:
            streaming = safe_bce(out["prefix_scores"], out["prefix_targets"])
            total = total + self.streaming_loss_weight * streaming
            logged["streaming"] = float(streaming.detach())
            logged["total"] = float(total.detach())
        return total, logged

    def _set_lr(self, updates_per_epoch: int) -> float:
        lr = run_lr(self.step, self.config, updates_per_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def train_epoch(self, dataset: Dataset, epoch: int) -> dict[str, float]:
        """One pass over ``dataset``: mean loss parts (over this rank's videos) and the last learning rate."""
        self.wrapped.train()
        if self.head_only:
            self.model.backbone.eval()
        if hasattr(dataset_of(dataset), "set_epoch"):
            dataset_of(dataset).set_epoch(epoch)
        loader = self._loader(dataset, epoch, train=True)
        accum = self.config["grad_accum_steps"]
        updates = math.ceil(len(loader) / accum)
        params = [p for p in self._trained_module().parameters() if p.requires_grad]
        sums: dict[str, float] = {}
        seen, lr = 0, self._set_lr(updates)
        self.optimizer.zero_grad(set_to_none=True)
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{self.config['epochs']}",
            unit="batch",
            disable=not self.progress,
            leave=False,
        )
        for i, batch in enumerate(bar):
            update_now = (i + 1) % accum == 0 or i + 1 == len(loader)
            sync = nullcontext() if update_now or not self.dist.distributed else self.wrapped.no_sync()
            with sync:
                inputs, batch = mix_batch(self._inputs(batch), batch, alpha=self.config["augment_mixup"])
                with self._autocast():
                    out = self.wrapped(inputs)
                total, parts = self._loss(out, batch)
                self.scaler.scale(total / accum).backward()
            if update_now:
                lr = self._set_lr(updates)
                self.scaler.unscale_(self.optimizer)
                if self.config["grad_clip"] > 0:
                    nn.utils.clip_grad_norm_(params, self.config["grad_clip"])
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
            n = len(batch["label"])
            seen += n
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value * n
            bar.set_postfix(loss=f"{sums['total'] / seen:.4f}")
        return {**{k: v / max(seen, 1) for k, v in sums.items()}, "lr": lr}

    @torch.no_grad()
    def validate(self, dataset: Dataset) -> dict[str, Any]:
        """Video metrics of ``dataset`` and its mean loss; all ranks share the work and the result. The video
        score is the device's (:func:`training.validation.streaming_batch`)."""
        self.model.eval()
        shard = Subset(dataset, range(self.dist.rank, len(dataset), self.dist.world_size))
        labels, scores, loss_sum = [], [], 0.0
        for batch in self._loader(shard, 0, train=False):
            with self._autocast():
                out, streamed = streaming_batch(
                    self.model, self._inputs(batch), head_only=self.head_only,
                    num_snippets=int(self.config["num_snippets"]),
                )  # fmt: skip
            loss_sum += self._loss(out, batch)[1]["total"] * len(batch["label"])
            labels += batch["label"].tolist()
            scores += streamed.max(axis=1).tolist()
        return gathered_video_metrics(labels, scores, loss_sum)

    def _average_weights(self, dataset: Dataset) -> None:
        """The averaged weights into the model, BatchNorm measured again on ``dataset`` (training.weight_average)."""
        self.wrapped.train()
        if self.head_only:
            self.model.backbone.eval()
        batches = (self._inputs(b) for b in self._loader(dataset, self.epoch, train=True))
        with self._autocast():  # the model's own forward: no streaming prefixes, one window each
            self.swa.finish(batches, self.model.head if self.head_only else self.model)

    # ------------------------------------------------------------------------------------------- the run
    def _checkpoint(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"step": self.step},
            "config": dict(self.config),
            "epoch": self.epoch,
            "best_metric": self.best_metric,
            "best_loss": self.best_loss,
            "threshold": self.threshold,
            "head_only": self.head_only,
            "history": json_safe(self.history),
            "rng": rng_state(),
            "started_from": self.started_from,
            "swa": None if self.swa is None else self.swa.state_dict(),
        }

    def _write(self, improved: bool) -> None:
        """``last.pt`` (and ``best.pt``), then ``history.json``; the checkpoints' seconds go into the epoch's
        row as ``checkpoint_s`` (in the checkpoints from the next epoch on)."""
        start = time.perf_counter()
        last = save_checkpoint(self.output_dir / "last.pt", self._checkpoint())
        if improved:
            copy_checkpoint(last, self.output_dir / "best.pt")  # the same dict: link or copy the file
        self.history[-1]["checkpoint_s"] = time.perf_counter() - start
        text = json.dumps(json_safe(self.history), indent=2) + "\n"
        tmp = self.output_dir / ".history.json.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self.output_dir / "history.json")

    def train(
        self,
        train_loader: Dataset | DataLoader,
        val_loader: Dataset | DataLoader,
        num_epochs: int | None = None,
        *,
        resume: bool = False,
    ) -> list[dict[str, Any]]:
        """The seed's call: :meth:`fit` for ``num_epochs`` epochs (default: the config's ``epochs``)."""
        if num_epochs is not None:
            short = {key: min(self.config[key], num_epochs) for key in ("warmup_epochs", "swa_epochs")}
            for key, value in short.items():
                if value != self.config[key]:
                    logger.info("%s %s > num_epochs: %s = %s for this run", key, self.config[key], key, value)
            self.config = validate_config({**self.config, "epochs": num_epochs, **short})
        return self.fit(train_loader, val_loader, resume=resume)

    def fit(
        self, train_dataset: Dataset | DataLoader, val_dataset: Dataset | DataLoader, *, resume: bool = False
    ) -> list[dict[str, Any]]:
        """Train for ``config["epochs"]`` epochs (or until early stopping); returns the per-epoch history.

        Either argument may be a DataLoader: the training one is iterated as it is (under ``torchrun`` pass
        data sets, which are sharded); the validation one gives its data set, which every rank shares."""
        if self.dist.distributed and isinstance(train_dataset, DataLoader):
            raise ValueError(
                "under torchrun pass the training data set, not a DataLoader (it is sharded here)"
            )
        val_dataset = dataset_of(val_dataset)
        if len(train_dataset) == 0 or len(val_dataset) == 0:
            raise ValueError(
                f"need training and validation videos, got {len(train_dataset)} and {len(val_dataset)}"
            )
        self._setup(isinstance(dataset_of(train_dataset), FeatureDataset))
        self._seed()
        check_training_mode(self.config, head_only=self.head_only)
        # a fine-tune keeps its checkpoint's statistics, a resumed run gets its own back from last.pt
        if self.config["standardize_features"] and self.started_from is None and not resume:
            features = dataset_of(train_dataset).snippet_features()  # every training snippet's
            self.model.head.set_feature_statistics(torch.from_numpy(features))
        if resume:
            self._resume(self.output_dir / "last.pt")
        if self.dist.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.config, self.output_dir / "config.json")
            write_init_record(self.output_dir, self.started_from)
        cfg, patience = self.config, self.config["early_stopping_patience"]
        mode = "head only (cached features)" if self.head_only else "end to end"
        logger.info(
            "training %s: %d train / %d val videos on %s",
            mode,
            len(dataset_of(train_dataset)),
            len(val_dataset),
            self.device,
        )
        while self.epoch < cfg["epochs"]:
            start = time.perf_counter()
            train = self.train_epoch(train_dataset, self.epoch)
            if self.swa is not None and self.swa.after_epoch(self.epoch):
                self._average_weights(train_dataset)
            val = self.validate(val_dataset)
            key = selection_key(val["auc_roc"], val["loss"])
            improved = cfg["best_checkpoint"] == "last" or key > (self.best_metric, -self.best_loss)
            self.epoch += 1
            if improved:
                self.best_metric, self.best_loss = key[0], -key[1]
                thr = val["optimal_threshold"]
                self.threshold = float(thr) if math.isfinite(thr) else None
            self.history.append(epoch_row(self.epoch, train, val, time.perf_counter() - start))
            if self.dist.is_main:
                self._write(improved)
            log_epoch(self.history[-1], cfg["epochs"], improved and cfg["best_checkpoint"] != "last")
            since_best = epochs_since_best(self.history)
            if patience and since_best >= patience:
                logger.info("early stopping: no better epoch for %d epochs", since_best)
                break
        barrier()
        return self.history
