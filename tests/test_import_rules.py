"""Which package may import which: one rule table, checked on the source of every module of the project.

The rules and the reasons for them are in docs/architecture.md ("Import rules"). The source check walks the
syntax tree of each module, so an import inside a function (a lazy import) counts as much as one at the top.
The device packages and the alert consumer are also imported for real, which catches what they pull in
indirectly.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What the workstation installs and a device must never need (`pip install i3d-mtn-edge[openvino]` pulls none).
WORKSTATION_LIBS = frozenset({"torch", "torchvision", "nncf", "onnx", "sklearn", "matplotlib", "tqdm"})


@dataclass(frozen=True)
class Rule:
    may_import: frozenset[str]  # project packages or modules (dotted prefixes) besides the package itself
    never: frozenset[str] = frozenset()  # third-party top-level packages it must not import
    stdlib_only: tuple[str, ...] | None = None  # when set: only the standard library and these packages


# The one rule table. `benchmarks` measures everything, so it may import everything.
RULES: dict[str, Rule] = {
    "devices": Rule(may_import=frozenset(), stdlib_only=("tomli",)),
    "edge_runtime": Rule(may_import=frozenset({"devices"}), never=WORKSTATION_LIBS),
    "alert_consumer": Rule(may_import=frozenset({"edge_runtime"}), never=WORKSTATION_LIBS),
    "training": Rule(may_import=frozenset({"edge_runtime", "alert_consumer"})),
    "calibration": Rule(may_import=frozenset({"edge_runtime", "training.data"}), never=frozenset({"torch"})),
    "export": Rule(may_import=frozenset({"training", "calibration", "edge_runtime", "devices"})),
    "benchmarks": Rule(
        may_import=frozenset(
            {"training", "calibration", "export", "edge_runtime", "devices", "alert_consumer"}
        )
    ),
}

# The packages that run without the workstation (a device; a watcher's machine): importing every module of
# one of them must load no workstation library and no project package beyond what its rule allows (directly
# or through the packages it may import), so a device never loads the alert consumer.
LIGHT_PACKAGES = ("edge_runtime", "devices", "alert_consumer")


def reachable(package: str) -> set[str]:
    """``package`` and the project packages it may import, directly or through them."""
    found, todo = set(), [package]
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo += [m.split(".")[0] for m in RULES[name].may_import]
    return found


def project_packages() -> list[str]:
    """Every top-level package of the repository (a folder with ``__init__.py``), the tests excepted."""
    return sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name != "tests")


def imported_names(source: str, package: str) -> list[tuple[int, str]]:
    """``(line, dotted module)`` of every import in ``source``, relative imports resolved to ``package``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, package if node.level else node.module or ""))
    return found


def violations(package: str, rule: Rule, project: list[str], root: Path = ROOT) -> list[str]:
    """What the modules of ``package`` import against ``rule``, one line each naming the file and line."""
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    bad = []
    for path in sorted((root / package).rglob("*.py")):
        for line, name in imported_names(path.read_text(encoding="utf-8"), package):
            top = name.split(".")[0]
            where = f"{path.relative_to(root).as_posix()}:{line} imports {name}"
            if top == package or top in stdlib:
                continue
            if top in project:
                if not any(name == m or name.startswith(m + ".") for m in rule.may_import):
                    bad.append(f"{where}: {package} may import only {sorted(rule.may_import)}")
            elif top in rule.never:
                bad.append(f"{where}: {package} never imports {top}")
            elif rule.stdlib_only is not None and top not in rule.stdlib_only:
                bad.append(f"{where}: {package} uses only the standard library and {list(rule.stdlib_only)}")
    return bad


def test_every_package_has_a_rule():
    assert project_packages() == sorted(RULES), "add the new package to RULES and to docs/architecture.md"


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_imports_follow_the_rules(package):
    assert violations(package, RULES[package], project_packages()) == []


def test_a_broken_rule_is_reported_with_file_and_line(tmp_path):
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "__init__.py").write_text("")
    (tmp_path / "devices" / "bad.py").write_text(
        "import json\n\ndef f():\n    import numpy\n    from training import x\n"
    )
    found = violations("devices", RULES["devices"], ["devices", "training"], root=tmp_path)
    assert found == [
        "devices/bad.py:4 imports numpy: devices uses only the standard library and ['tomli']",
        "devices/bad.py:5 imports training: devices may import only []",
    ]


@pytest.mark.parametrize("package", ["edge_runtime", "devices"])
def test_the_device_packages_never_import_the_alert_consumer(package, tmp_path):
    assert "alert_consumer" not in reachable(package)  # so the real import below refuses it too
    (tmp_path / package).mkdir()
    (tmp_path / package / "bad.py").write_text(
        "def f():\n    from alert_consumer.web import AlertWebServer\n"
    )
    found = violations(package, RULES[package], [package, "alert_consumer"], root=tmp_path)
    assert found == [
        f"{package}/bad.py:2 imports alert_consumer.web: {package} may import only "
        f"{sorted(RULES[package].may_import)}"
    ]


@pytest.mark.parametrize("package", LIGHT_PACKAGES)
def test_light_packages_load_no_workstation_code(package):
    forbidden = sorted(WORKSTATION_LIBS | (set(RULES) - reachable(package)))
    code = (
        "import sys, pkgutil, importlib\n"
        f"for name in {[package]!r}:\n"
        "    pkg = importlib.import_module(name)\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, name + '.'):\n"
        "        try:\n"
        "            importlib.import_module(m.name)\n"
        "        except ImportError as e:\n"  # an optional backend library (openvino, tensorrt) not installed
        f"            if e.name and e.name.split('.')[0] in {forbidden!r}: raise\n"
        f"bad = sorted(n for n in sys.modules if n.split('.')[0] in {forbidden!r})\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr + result.stdout
