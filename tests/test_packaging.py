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


ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_benchmarks_is_not_installed_as_a_top_level_package(tmp_path):
    import tomllib
    from setuptools import find_packages

    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = find_packages(str(ROOT), include=include["include"])
    assert "training" in packages and "edge_runtime" in packages
    assert not [p for p in packages if p.split(".")[0] == "benchmarks"], packages
    # and this environment's install does not provide it outside the repository
    result = subprocess.run(
        [sys.executable, "-c", "import benchmarks"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "No module named 'benchmarks'" in result.stderr


def test_benchmarks_run_as_modules_from_the_repository_root():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.quality", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--quick" in result.stdout


def test_i3dmtn_bench_finds_the_benchmarks_of_its_clone_and_refuses_an_unknown_one(tmp_path):
    from training.commands.bench import repository_root

    assert repository_root() == ROOT
    exe = __import__("pathlib").Path(sys.executable).parent / "i3dmtn"
    result = subprocess.run(
        [str(exe), "bench", "nosuch"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "unknown benchmark(s) ['nosuch']" in result.stderr and "Traceback" not in result.stderr


def test_the_alert_consumer_is_its_own_package_installed_with_the_files_of_its_page():
    import tomllib
    from setuptools import find_packages

    from alert_consumer.web import _STATIC, STATIC_DIR

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = find_packages(str(ROOT), include=tool["packages"]["find"]["include"])
    assert "alert_consumer" in packages and "edge_runtime.alerts" not in packages
    # package data is globbed in the package's folder, as setuptools does for the wheel
    patterns = tool["package-data"]["alert_consumer"]
    shipped = {p for pattern in patterns for p in (ROOT / "alert_consumer").glob(pattern)}
    served = {STATIC_DIR / name for name, _ in _STATIC.values()}
    assert served and served <= shipped
