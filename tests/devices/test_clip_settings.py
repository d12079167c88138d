"""The profile's ``[clips]`` viewing size and rate: read with their defaults, a bad value refused in one line
naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.profiles import ProfileError, load_profile

PROFILE = '[device]\nname = "t"\n[model]\nbackend = "onnxruntime"\ntarget = "onnx"\n[clips]\n'


def _load(tmp_path: Path, lines: str):
    path = tmp_path / "box.toml"
    path.write_text(PROFILE + lines, encoding="utf-8")
    return load_profile(path).clips


def test_clip_size_and_rate_default_to_480_rows_at_15_fps(tmp_path):
    clips = _load(tmp_path, "")
    assert (clips.max_height, clips.fps) == (480, 15.0)


def test_clip_size_and_rate_are_read(tmp_path):
    clips = _load(tmp_path, "max_height = 720\nfps = 30\n")
    assert (clips.max_height, clips.fps) == (720, 30.0)
    clips = _load(tmp_path, "max_height = 0\nfps = 0\n")  # as decoded, every frame
    assert (clips.max_height, clips.fps) == (0, 0.0)


@pytest.mark.parametrize(
    "line",
    ["max_height = 7", "max_height = -1", "max_height = 5000", "max_height = 480.0", 'max_height = "480"',
     "fps = 0.5", "fps = 200", "fps = -1", "fps = true"],
)  # fmt: skip
def test_a_bad_clip_size_or_rate_is_one_line_naming_the_key(tmp_path, line):
    with pytest.raises(ProfileError) as info:
        _load(tmp_path, line + "\n")
    message = str(info.value)
    key = line.split(" = ")[0]
    assert "\n" not in message and "box.toml" in message and f"[clips] {key} must be" in message


def test_clip_mode_defaults_to_auto_and_is_read(tmp_path):
    assert _load(tmp_path, "").mode == "auto"
    assert _load(tmp_path, 'mode = "copy"\n').mode == "copy"
    assert _load(tmp_path, 'mode = "reencode"\n').mode == "reencode"


@pytest.mark.parametrize("line", ['mode = "remux"', "mode = 1", 'mode = "Copy"'])
def test_a_bad_clip_mode_is_one_line_naming_the_key(tmp_path, line):
    with pytest.raises(ProfileError) as info:
        _load(tmp_path, line + "\n")
    message = str(info.value)
    assert "\n" not in message and "[clips] mode" in message
