"""DistributedDataParallel: a real 2-process gloo run of `i3dmtn train` under torchrun on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.training.test_features import CLI_SETS
from tests.training.tiny_data import synth_root


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return synth_root(tmp_path_factory)


@pytest.mark.timeout(300)
def test_two_rank_gloo_training_completes_and_rank_zero_writes(root, tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "training.cli", "train", "--config", "debug", *CLI_SETS, "--data_path", str(root),
        "--epochs", "2", "--output", str(out), "--device", "cpu", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=280, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rank 1 of 2" in result.stderr and "rank 0 of 2" in result.stderr
    assert {p.name for p in out.iterdir()} == {
        "best.pt", "last.pt", "config.json", "history.json", "training_curves.png"
    }  # fmt: skip
    history = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and not any(k.startswith("module.") for k in ckpt["model"])
    assert result.stdout.count("trained 2 epochs") == 1  # only rank 0 reports
