"""The CLIs answer --help quickly, without torch, and explain themselves (import rules: test_import_rules.py)."""

import subprocess
import sys

import pytest


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_i3dmtn_help_does_not_import_torch():
    result = _run(
        "import sys; from training.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass\n"
        "assert 'torch' not in sys.modules"
    )
    assert result.returncode == 0, result.stderr
    assert "synth" in result.stdout and "export" in result.stdout


@pytest.mark.parametrize("argv", [["i3dmtn", "--help"], ["edge-runtime", "--help"]])
def test_console_scripts_help(argv):
    exe = __import__("shutil").which(argv[0], path=str(__import__("pathlib").Path(sys.executable).parent))
    assert exe, f"{argv[0]} console script not installed"
    result = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower()
