"""``i3dmtn export`` options: bad input is one line and exit status 2, before any heavy work."""

from __future__ import annotations

import pytest

from training.cli import main


def _run(capsys, *argv) -> tuple[int, str]:
    code = main(["export", *map(str, argv)])
    return code, capsys.readouterr().err.strip()


@pytest.fixture
def base(tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"not used before the options are checked")
    (tmp_path / "data").mkdir()
    return ["--checkpoint", ckpt, "--calib-data", tmp_path / "data", "--out", tmp_path / "bundle"]


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["export", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ("--checkpoint", "--target", "--calib-data", "--out", "--device-profile", "--eval-data",
                   "--calib-snippets", "--max-auc-drop", "--allow-accuracy-drop", "--accuracy-control",
                   "--overwrite", "--seed"):  # fmt: skip
        assert option in text


def test_accuracy_control_is_refused_for_a_non_openvino_target(capsys, base):
    code, err = _run(capsys, *base, "--target", "onnx", "--accuracy-control")
    assert code == 2
    assert err == "i3dmtn export: error: --accuracy-control is for --target openvino (NNCF), not onnx"


def test_a_target_that_contradicts_the_device_profile_is_refused(capsys, base):
    code, err = _run(capsys, *base, "--target", "openvino", "--device-profile", "jetson-orin-nano")
    assert code == 2
    assert "contradicts --device-profile jetson-orin-nano (target jetson)" in err


def test_an_unknown_device_profile_is_one_line(capsys, base):
    code, err = _run(capsys, *base, "--device-profile", "toaster")
    assert code == 2 and "\n" not in err and "unknown device profile 'toaster'" in err


def test_a_missing_checkpoint_names_the_option(capsys, base, tmp_path):
    base[1] = tmp_path / "missing.pt"
    code, err = _run(capsys, *base)
    assert code == 2 and err.startswith("i3dmtn export: error: --checkpoint") and "does not exist" in err


def test_an_unreadable_checkpoint_is_one_line(capsys, base):
    code, err = _run(capsys, *base)
    assert code == 2 and "\n" not in err and "checkpoint" in err


def test_an_existing_output_needs_overwrite(capsys, base, tmp_path):
    (tmp_path / "bundle").mkdir()
    code, err = _run(capsys, *base)
    assert code == 2 and "--out" in err and "--overwrite" in err


def test_no_progress_draws_no_bar_even_on_a_terminal_neither_its_own_nor_nncfs(
    untrained_ckpt, synth_root, tmp_path
):
    import sys
    from pathlib import Path

    from tests.terminal_helpers import run_on_a_terminal

    exe = Path(sys.executable).parent / "i3dmtn"
    argv = [str(exe), "export", "--checkpoint", str(untrained_ckpt), "--calib-data", str(synth_root),
            "--target", "openvino", "--calib-snippets", "16"]  # fmt: skip
    drawn = run_on_a_terminal([*argv, "--out", str(tmp_path / "bars")])
    assert "%|" in drawn and "\u2501" in drawn  # on this terminal tqdm's bars and NNCF's rich bars draw
    quiet = run_on_a_terminal([*argv, "--out", str(tmp_path / "quiet"), "--no-progress"])
    assert "stage 6/6" in quiet and (tmp_path / "quiet" / "manifest.json").is_file()
    assert "%|" not in quiet and "\u2501" not in quiet, quiet  # no bar at all
