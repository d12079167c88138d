"""Tiny ONNX backbone and head files shared by the backend tests."""

from __future__ import annotations

import numpy as np
import pytest

from tests.edge_runtime.tiny_onnx import write_backbone, write_head


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Paths of a tiny backbone and head ONNX (feature size 8)."""
    folder = tmp_path_factory.mktemp("tiny_onnx")
    return write_backbone(folder / "backbone.onnx"), write_head(folder / "head.onnx")


@pytest.fixture
def snippets():
    """A batch of 2 snippets (2, 3, 4, 8, 8) in [-1, 1]."""
    return np.random.default_rng(0).uniform(-1, 1, (2, 3, 4, 8, 8)).astype(np.float32)


@pytest.fixture
def features():
    """A batch of 2 feature windows (2, 5, 8)."""
    return np.random.default_rng(1).normal(size=(2, 5, 8)).astype(np.float32)
