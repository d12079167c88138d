"""The package sources never unpickle, evaluate strings or run a shell (an AST scan, so comments and
docstrings that mention the words do not count). One module may subclass ``pickle.Unpickler`` (to read numpy
arrays alone) and use nothing else of pickle: :data:`UNPICKLER_ONLY`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("training", "export", "calibration", "edge_runtime", "devices", "benchmarks")
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "shelve", "marshal", "joblib"}
# The one module that may import pickle, to subclass pickle.Unpickler with a find_class that admits numpy's
# array globals alone (the pinned Flax checkpoint of the I3D weights); any other use of pickle there still counts.
UNPICKLER_ONLY = {"training/weights/flax_pickle.py"}


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


def _is_unpickler_base(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    """``node`` is the ``pickle`` of ``pickle.Unpickler`` given as the base of a class."""
    attribute = parents.get(id(node))
    return (
        isinstance(node, ast.Name)
        and isinstance(attribute, ast.Attribute)
        and attribute.attr == "Unpickler"
        and isinstance(parents.get(id(attribute)), ast.ClassDef)
        and attribute in parents[id(attribute)].bases
    )


def unsafe_uses(tree: ast.AST, *, unpickler_only: bool = False) -> list[tuple[int, str]]:
    """``(line, what)`` for every unsafe construct in a parsed module. With ``unpickler_only``, ``import pickle``
    and ``class X(pickle.Unpickler)`` are allowed (and nothing else of pickle)."""
    hits: list[tuple[int, str]] = []
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            plain = isinstance(node, ast.Import) and all(a.asname is None for a in node.names)
            hits += [
                (node.lineno, f"import {n}")
                for n in names
                if n
                and n.split(".")[0] in UNSAFE_MODULES
                and not (unpickler_only and plain and n == "pickle")
            ]
        elif isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name in UNSAFE_MODULES - {"marshal"} and not (
                unpickler_only and _is_unpickler_base(node, parents)
            ):
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


UNPICKLER = "import pickle\n\nclass Arrays(pickle.Unpickler):\n    def find_class(self, module, name): ...\n"


def test_the_restricted_unpickler_module_may_subclass_unpickler_and_nothing_more():
    assert unsafe_uses(ast.parse(UNPICKLER), unpickler_only=True) == []
    assert unsafe_uses(ast.parse(UNPICKLER))  # elsewhere it is a hit
    for code in ("import pickle\npickle.loads(b'')", "from pickle import Unpickler", "import pickle as p"):
        assert unsafe_uses(ast.parse(code), unpickler_only=True), code
    assert unsafe_uses(
        ast.parse("import pickle\nclass A(pickle.Unpickler):\n  load = pickle.load\n"), unpickler_only=True
    )


def test_package_sources_never_unpickle_eval_exec_or_use_a_shell():
    sources = _sources()
    hits = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in sources
        for line, what in unsafe_uses(
            ast.parse(path.read_text(encoding="utf-8"), str(path)),
            unpickler_only=path.relative_to(ROOT).as_posix() in UNPICKLER_ONLY,
        )
    ]
    print(f"\n[source scan] files={len(sources)} hits={len(hits)}")
    assert len(sources) > 50
    assert hits == []
