"""Fuzzing ``annotations.json``: random and mutated files load or raise one DatasetError line naming the file."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from training.data import DatasetError, load_annotations

from .fuzzing import FUZZ, assert_one_line, deeply_nested, json_values, mutate

VALID = [
    {"video_path": "anomaly/fight_000.mp4", "label": 1, "num_frames": 6, "fps": 25.0,
     "frame_annotations": [0, 0, 1, 1, 1, 0]},
    {"video_path": "normal/walk_000.mp4", "label": 0, "num_frames": 4, "fps": 30},
    {"video_path": "anomaly/fight_001.mp4", "label": 1},
]  # fmt: skip


def _load(path, counts) -> None:
    counts["examples"] += 1
    try:
        assert isinstance(load_annotations(path), dict)
    except DatasetError as exc:
        counts["refused"] += 1
        assert_one_line(exc, str(path))


def test_mutated_annotations_load_or_raise_one_dataset_error_line(tmp_path):
    path, counts = tmp_path / "annotations.json", {"examples": 0, "refused": 0}

    @FUZZ
    @given(st.data())
    def check(data):
        path.write_text(json.dumps(mutate(data, VALID)))
        _load(path, counts)

    check()
    print(f"\n[fuzz annotations mutated] examples={counts['examples']} refused={counts['refused']}")
    assert counts["examples"] >= 1000 and counts["refused"] > 0


def test_random_json_and_bytes_annotations_load_or_raise_one_line(tmp_path):
    path, counts = tmp_path / "annotations.json", {"examples": 0, "refused": 0}

    @FUZZ
    @given(json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=300))
    def check(raw):
        path.write_bytes(raw)
        _load(path, counts)

    check()
    print(f"\n[fuzz annotations random] examples={counts['examples']} refused={counts['refused']}")
    assert counts["examples"] >= 1000 and counts["refused"] > 0


def test_deeply_nested_annotations_are_refused_with_one_line(tmp_path):
    path = tmp_path / "annotations.json"
    path.write_bytes(deeply_nested())
    with pytest.raises(DatasetError) as info:
        load_annotations(path)
    assert_one_line(info.value, str(path))
