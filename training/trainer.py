"""``I3D_MTN_Trainer``: trains the detector end to end from pixels or its head on cached features.

Recipe (RTFM, Tian et al. ICCV 2021, where it applies):

- AdamW (Adam with decoupled weight decay; RTFM uses Adam with L2 weight decay) at ``learning_rate``;
- the learning rate of :func:`training.schedule.lr_at`: linear warmup over ``warmup_epochs``, cosine decay to
  ``min_lr_ratio * learning_rate``, per optimizer update;
- gradient accumulation over ``grad_accum_steps`` batches, gradient clipping at ``grad_clip`` (L2 norm);
- mixed precision (``amp``): ``auto`` uses it on CUDA only (bf16 where supported, else fp16 with a gradient
  scaler); ``on`` also uses bf16 autocast on CPU; ``off`` never;
- validation every epoch: the video score is the **max snippet score** (what the device's events fire on),
  ``val_auc`` its ROC AUC; ``best.pt`` keeps the best epoch, early stopping after
  ``early_stopping_patience`` epochs without a better ``val_auc`` (0: never);
- reproducible: every random choice derives from ``seed`` (model init, per-epoch shuffling, per-item
  sampling and augmentation, dropout), and ``last.pt`` stores the random states so ``resume`` continues the
  same run.

Two modes, picked from the training set: :class:`~training.data.AnomalyVideoDataset` items (``clips``) train
the whole model; :class:`~training.feature_dataset.FeatureDataset` items (``features``) train ``model.head``
only, with the backbone frozen (the checkpoint still holds the whole model). Under ``torchrun`` the trained
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
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Subset
from tqdm import tqdm

from training.checkpoint import (
    CheckpointError,
    load_model_state,
    read_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from training.configs import save_config, validate_config
from training.distributed import DistInfo, all_gather_objects, barrier, init_distributed
from training.feature_dataset import FeatureDataset
from training.losses import AnomalyLoss
from training.metrics import json_safe, video_metrics
from training.schedule import lr_at

__all__ = ["I3D_MTN_Trainer", "outputs_from_head"]

logger = logging.getLogger(__name__)


def outputs_from_head(head_out: Any, clip_length: int) -> dict[str, torch.Tensor]:
    """The detector's output dict from a :class:`~training.model.HeadOutput` (head-only training)."""
    return {
        "video_anomaly_score": head_out.video_score,  # (B,)
        "frame_anomaly_scores": head_out.snippet_scores.repeat_interleave(clip_length, dim=1),  # (B, K*S)
        "attention_weights": head_out.attention_weights,  # (B, K)
        "snippet_scores": head_out.snippet_scores,  # (B, K)
    }


class I3D_MTN_Trainer:
    """Fit an :class:`~training.model.I3D_MTN_AnomalyDetector`; writes ``best.pt``, ``last.pt``,
    ``config.json`` and ``history.json`` into ``output_dir`` (rank 0 only)."""

    def __init__(
        self,
        model: nn.Module,
        config: Mapping[str, Any],
        *,
        output_dir: str | Path,
        device: str | torch.device | None = None,
        progress: bool = True,
    ) -> None:
        self.config = validate_config(config)
        self.dist: DistInfo = init_distributed(device)
        self.device = self.dist.device
        self.model = model.to(self.device)
        self.output_dir = Path(output_dir)
        self.progress = progress and self.dist.is_main
        self.loss_fn = AnomalyLoss(self.config)
        self.history: list[dict[str, Any]] = []
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer updates done
        self.best_metric = -math.inf
        self.threshold: float | None = None
        self.head_only = False
        self.optimizer: torch.optim.Optimizer | None = None
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

    # ------------------------------------------------------------------------------------------- set-up
    def _amp_dtype(self) -> torch.dtype | None:
        mode, kind = self.config["amp"], self.device.type
        if mode == "off" or (mode == "auto" and kind != "cuda"):
            return None
        if kind == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16  # amp "on" on CPU

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
        )
        self.wrapped = module
        if self.dist.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.wrapped = DistributedDataParallel(module, device_ids=ids)

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
        self.threshold = ckpt.get("threshold")
        self.history = list(ckpt.get("history", []))
        if self.dist.is_main and "rng" in ckpt:
            set_rng_state(ckpt["rng"])
        logger.info("resumed from %s after epoch %d (best val_auc %.4f)", path, self.epoch, self.best_metric)

    def _loader(self, dataset: Dataset, epoch: int, *, train: bool) -> DataLoader:
        cfg = self.config
        if train and self.dist.distributed:
            sampler = DistributedSampler(
                dataset, self.dist.world_size, self.dist.rank, shuffle=True, seed=cfg["seed"]
            )
            sampler.set_epoch(epoch)
        elif train:
            sampler = RandomSampler(
                dataset, generator=torch.Generator().manual_seed(int(cfg["seed"]) + epoch)
            )
        else:
            sampler = None
        return DataLoader(
            dataset,
            batch_size=cfg["batch_size"],
            sampler=sampler,
            num_workers=cfg["num_workers"],
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )

    # ------------------------------------------------------------------------------------------- steps
    def _forward(self, module: nn.Module, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        ctx = torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype else nullcontext()
        with ctx:
            if self.head_only:
                feats = batch["features"].to(self.device, non_blocking=True)  # (B, K, D)
                return outputs_from_head(module(feats), self.model.clip_length)
            return module(batch["clips"].to(self.device, non_blocking=True))  # clips (B, 3, K*S, H, W)

    def _loss(self, out: Mapping[str, torch.Tensor], batch: Mapping[str, Any]) -> Any:
        return self.loss_fn(
            out,
            batch["label"].to(self.device),
            batch["frame_labels"].to(self.device),
            batch["has_frame_labels"].to(self.device),
        )

    def _set_lr(self, updates_per_epoch: int) -> float:
        cfg = self.config
        lr = lr_at(
            self.step,
            total_steps=cfg["epochs"] * updates_per_epoch,
            warmup_steps=round(cfg["warmup_epochs"] * updates_per_epoch),
            base_lr=cfg["learning_rate"],
            min_lr_ratio=cfg["min_lr_ratio"],
        )
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def train_epoch(self, dataset: Dataset, epoch: int) -> dict[str, float]:
        """One pass over ``dataset``: mean loss parts (over this rank's videos) and the last learning rate."""
        self.wrapped.train()
        if self.head_only:
            self.model.backbone.eval()
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
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
                parts = self._loss(self._forward(self.wrapped, batch), batch)
                self.scaler.scale(parts.total / accum).backward()
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
            for key, value in parts.as_dict().items():
                sums[key] = sums.get(key, 0.0) + value * n
            bar.set_postfix(loss=f"{sums['total'] / seen:.4f}")
        return {**{k: v / max(seen, 1) for k, v in sums.items()}, "lr": lr}

    @torch.no_grad()
    def validate(self, dataset: Dataset) -> dict[str, Any]:
        """Video metrics of ``dataset`` (video score = max snippet score) and the mean loss; all ranks share
        the work and the result."""
        module = self._trained_module()
        module.eval()
        shard = Subset(dataset, range(self.dist.rank, len(dataset), self.dist.world_size))
        labels, scores, loss_sum = [], [], 0.0
        for batch in self._loader(shard, 0, train=False):
            out = self._forward(module, batch)
            loss_sum += float(self._loss(out, batch).total) * len(batch["label"])
            labels += batch["label"].tolist()
            scores += out["snippet_scores"].float().amax(dim=1).tolist()
        gathered = all_gather_objects((labels, scores, loss_sum))
        labels = [v for g in gathered for v in g[0]]
        scores = [v for g in gathered for v in g[1]]
        metrics = video_metrics(np.asarray(labels, np.int64), np.asarray(scores))
        metrics["loss"] = sum(g[2] for g in gathered) / max(len(labels), 1)
        return metrics

    # ------------------------------------------------------------------------------------------- the run
    def _checkpoint(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"step": self.step},
            "config": dict(self.config),
            "epoch": self.epoch,
            "best_metric": self.best_metric,
            "threshold": self.threshold,
            "head_only": self.head_only,
            "history": json_safe(self.history),
            "rng": rng_state(),
        }

    def _write(self, improved: bool) -> None:
        ckpt = self._checkpoint()
        if improved:
            save_checkpoint(self.output_dir / "best.pt", ckpt)
        save_checkpoint(self.output_dir / "last.pt", ckpt)
        text = json.dumps(json_safe(self.history), indent=2) + "\n"
        tmp = self.output_dir / ".history.json.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self.output_dir / "history.json")

    def fit(
        self, train_dataset: Dataset, val_dataset: Dataset, *, resume: bool = False
    ) -> list[dict[str, Any]]:
        """Train for ``config["epochs"]`` epochs (or until early stopping); returns the per-epoch history."""
        if len(train_dataset) == 0 or len(val_dataset) == 0:
            raise ValueError(
                f"need training and validation videos, got {len(train_dataset)} and {len(val_dataset)}"
            )
        self._setup(isinstance(train_dataset, FeatureDataset))
        self._seed()
        if resume:
            self._resume(self.output_dir / "last.pt")
        if self.dist.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.config, self.output_dir / "config.json")
        cfg, patience = self.config, self.config["early_stopping_patience"]
        mode = "head only (cached features)" if self.head_only else "end to end"
        logger.info(
            "training %s: %d train / %d val videos on %s",
            mode,
            len(train_dataset),
            len(val_dataset),
            self.device,
        )
        while self.epoch < cfg["epochs"]:
            start = time.perf_counter()
            train = self.train_epoch(train_dataset, self.epoch)
            val = self.validate(val_dataset)
            auc = val["auc_roc"]
            metric = _selection_metric(auc, val["loss"])
            improved = metric > self.best_metric
            self.epoch += 1
            if improved:
                self.best_metric = metric
                thr = val["optimal_threshold"]
                self.threshold = float(thr) if math.isfinite(thr) else None
            row = {
                "epoch": self.epoch,
                "lr": train.pop("lr"),
                **{f"train_{k}": v for k, v in train.items()},
                "val_loss": val["loss"],
                "val_auc": auc,
                "val_auc_pr": val["auc_pr"],
                "val_threshold": val["optimal_threshold"],
                "time_s": time.perf_counter() - start,
            }
            self.history.append(row)
            if self.dist.is_main:
                self._write(improved)
            logger.info(
                "epoch %d/%d: loss %.4f (video_bce %.4f, topk_mil %.4f, smooth %.5f, sparse %.4f) lr %.2e "
                "val_loss %.4f val_auc %.4f%s %.1fs",
                self.epoch, cfg["epochs"], row["train_total"], row["train_video_bce"], row["train_topk_mil"],
                row["train_smoothness"], row["train_sparsity"], row["lr"], row["val_loss"], auc,
                " (best)" if improved else "", row["time_s"],
            )  # fmt: skip
            since_best = self._epochs_since_best()
            if patience and since_best >= patience:
                logger.info("early stopping: no better val_auc for %d epochs", since_best)
                break
        barrier()
        return self.history

    def _epochs_since_best(self) -> int:
        values = [_selection_metric(r["val_auc"], r["val_loss"]) for r in self.history]
        return len(values) - 1 - int(np.argmax(values))


def _selection_metric(auc: float | None, loss: float) -> float:
    """What picks the best epoch: the validation AUC, or minus the loss when the AUC is undefined."""
    return float(auc) if auc is not None and math.isfinite(auc) else -float(loss)
