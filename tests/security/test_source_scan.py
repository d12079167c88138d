"""The package sources never unpickle, evaluate strings or run a shell (an AST scan, so comments and
docstrings that mention the words do not count)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("training", "export", "calibration", "edge_runtime", "devices", "benchmarks")
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "shelve", "marshal", "joblib"}


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES if (ROOT / pkg).is_dir() for p in (ROOT / pkg).rglob("*.py"))


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        base = func.value.id if isinstance(func.value, ast.Name) else "?"
        return f"{base}.{func.attr}"
    return ""


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def unsafe_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, what)`` for every unsafe construct in a parsed module."""
    hits: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            hits += [(node.lineno, f"import {n}") for n in names if n and n.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name in UNSAFE_MODULES - {"marshal"}:
                hits.append((node.lineno, f"use of {name}"))
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        keywords = {k.arg: k.value for k in node.keywords}
        if name in ("eval", "exec", "builtins.eval", "builtins.exec", "compile"):
            hits.append((node.lineno, f"{name}("))
        if _is_true(keywords.get("shell")):
            hits.append((node.lineno, f"{name}(shell=True)"))
        if _is_true(keywords.get("allow_pickle")):
            hits.append((node.lineno, f"{name}(allow_pickle=True)"))
        if name == "torch.load" and not _is_true(keywords.get("weights_only")):
            hits.append((node.lineno, "torch.load( without weights_only=True"))
        if name in ("os.system", "os.popen"):
            hits.append((node.lineno, f"{name}("))
    return hits


@pytest.mark.parametrize(
    "code",
    [
        "import pickle",
        "from pickle import loads",
        "x = pickle.loads(b'')",
        "np.load(f, allow_pickle=True)",
        "torch.load(p)",
        "torch.load(p, weights_only=False)",
        "eval('1')",
        "exec('x=1')",
        "subprocess.run('ls', shell=True)",
        "os.system('ls')",
    ],
)
def test_the_scanner_finds_each_unsafe_construct(code):
    assert unsafe_uses(ast.parse(code)), code


def test_the_scanner_ignores_safe_code_and_words_in_text():
    safe = '"""No pickle: never eval( or exec( or shell=True."""\n# pickle\ntorch.load(p, weights_only=True)\nnp.load(f)\n'
    assert unsafe_uses(ast.parse(safe)) == []


def test_package_sources_never_unpickle_eval_exec_or_use_a_shell():
    sources = _sources()
    hits = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in sources
        for line, what in unsafe_uses(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    ]
    print(f"\n[source scan] files={len(sources)} hits={len(hits)}")
    assert len(sources) > 50
    assert hits == []
