"""The per-step head-only speed-up estimate: what it times and how it scales a snippet to a batch."""

from __future__ import annotations

import pytest
import torch

from benchmarks.head_speedup import format_speedup, step_speedup
from training.configs import get_config


def test_step_estimate_scales_one_snippet_to_the_presets_batch_and_leaves_the_model_untouched():
    result = step_speedup("debug", snippets=2)
    config = get_config("debug")
    assert result["batch_size"] == config["batch_size"] and result["num_snippets"] == config["num_snippets"]
    assert result["e2e_step_s"] == pytest.approx(
        result["e2e_snippet_s"] * config["batch_size"] * config["num_snippets"]
    )
    assert result["speedup"] == pytest.approx(result["e2e_step_s"] / result["head_step_s"])
    assert result["head_step_s"] > 0 and result["feature_dim"] == 128
    line = format_speedup(result)
    assert "debug preset" in line and "estimate" in line and line.endswith("x faster")


def test_main_prints_one_line(capsys):
    from benchmarks.head_speedup import main

    threads = torch.get_num_threads()
    try:
        assert main(["--config", "debug", "--snippets", "2", "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1 and "x faster" in out


def test_one_snippet_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="snippets must be >= 2"):
        step_speedup("debug", snippets=1)
