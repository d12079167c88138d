"""Fuzzing the command lines: random option lists end in an exit status, never in a traceback.

``edge-runtime``: its whole ``main`` runs (random values never name a usable bundle, so it stops at the
latest at the bundle check, before any camera or broker is touched). ``i3dmtn``: ``main`` runs on option
lists without a valid command; for every subcommand (whose run would train, export or connect) only the
argument parsing is fuzzed.
"""

from __future__ import annotations

import importlib.util
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

import edge_runtime.cli as edge_cli
import training.cli as i3dmtn_cli
from edge_runtime.cli_options import build_parser

from .fuzzing import FUZZ


def _option_strings(parser) -> list[str]:
    found = []
    for action in parser._actions:
        found += action.option_strings
        for sub in getattr(action, "choices", None) or {}:
            if isinstance(sub, str):
                found.append(sub)
    return sorted(set(found))


def _argv(options: list[str]):
    token = (
        st.sampled_from(options)
        | st.text(max_size=12)
        | st.integers(-5, 100).map(str)
        | st.sampled_from(["-", "--", "-1", "nan", "inf", "0", "1e309", "=", "a=b", "../x", "#", "+/"])
        | st.tuples(st.sampled_from(options), st.text(max_size=8)).map(lambda t: f"{t[0]}={t[1]}")
    )
    return st.lists(token, max_size=8)


@pytest.fixture
def quiet_root_logger(monkeypatch, tmp_path):
    """edge-runtime replaces the root logger's handlers; give pytest its own back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_edge_runtime_main_returns_a_status_for_any_options(quiet_root_logger, capsys):
    options = _option_strings(build_parser())
    counts: dict[int, int] = {}

    required = st.tuples(st.text(max_size=10), st.text(max_size=10)).map(
        lambda t: ["--bundle", t[0] or ".", "--device-id", t[1] or "dev1", "--camera", "0"]
    )  # gets past argparse, so the checks of _run are fuzzed too

    @FUZZ
    @given(st.one_of(st.just([]), required), _argv(options))
    def check(head, tail):
        argv = head + tail
        status = edge_cli.main(argv)
        assert status in (0, 1, 2), (argv, status)
        counts[status] = counts.get(status, 0) + 1
        err = capsys.readouterr().err
        assert "Traceback" not in err, err

    check()
    print(f"\n[fuzz edge-runtime argv] examples={sum(counts.values())} statuses={counts}")
    assert sum(counts.values()) >= 1000


def test_i3dmtn_main_without_a_command_exits_cleanly(capsys):
    options = ["-v", "--verbose", "-h", "--help", "--version", "--nope"]
    count = {"examples": 0}

    @FUZZ
    @given(_argv(options).filter(lambda argv: not any(a in i3dmtn_cli.COMMANDS for a in argv)))
    def check(argv):
        count["examples"] += 1
        try:
            status = i3dmtn_cli.main(argv)
        except SystemExit as exc:  # argparse: usage error (2) or --help (0)
            status = exc.code
        assert status in (0, 2), (argv, status)
        assert "Traceback" not in capsys.readouterr().err

    check()
    print(f"\n[fuzz i3dmtn argv] examples={count['examples']}")
    assert count["examples"] >= 1000


@pytest.mark.parametrize("command", sorted(i3dmtn_cli.COMMANDS))
def test_i3dmtn_subcommand_parsing_never_raises_anything_but_system_exit(command, capsys):
    module = i3dmtn_cli.COMMANDS[command][0]
    assert importlib.util.find_spec(module) is not None, f"i3dmtn {command}: its module {module} is missing"
    parser = i3dmtn_cli._build_parser(command)
    sub = next(a for a in parser._actions if getattr(a, "choices", None) and command in a.choices)
    options = _option_strings(sub.choices[command])
    count = {"examples": 0}

    @FUZZ
    @given(_argv(options))
    def check(argv):
        count["examples"] += 1
        try:
            parser.parse_args([command, *argv])
        except SystemExit as exc:
            assert exc.code in (0, 2)
        capsys.readouterr()

    check()
    print(f"\n[fuzz i3dmtn {command} parsing] examples={count['examples']}")
    assert count["examples"] >= 1000
