"""``i3dmtn data prepare``: its help, its summary, and one line + exit 2 for each bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.training.source_layouts import fight_layout, make_source, read_split, tiny_videos, write_groups
from training.cli import main


@pytest.fixture
def src(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fight/fi001..fi008.mp4 + noFight/nofi001..nofi008.mp4."""
    return fight_layout(tmp_path / "src", tiny_videos(tmp_path_factory), n=8)


def _groups(src: Path, path: Path, add: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> Path:
    """A groups file at ``path`` naming SRC's clips (4 sources), plus ``add``, minus ``drop``."""
    rels = sorted(p.relative_to(src).as_posix() for p in src.rglob("*.mp4"))
    groups = {rel: f"source{i % 4}" for i, rel in enumerate(rels)}
    groups.update(add or {})
    for rel in drop:
        del groups[rel]
    return write_groups(path, groups)


def test_help_explains_the_layouts_with_an_example(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["data", "prepare", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for needle in (
        "fight/ + noFight/",
        "RWF-2000",
        "Hockey Fights",
        "--anomaly GLOB --normal GLOB",
        "--groups",
    ):
        assert needle in text
    assert "examples:\n  i3dmtn data prepare " in text


def test_the_data_command_is_listed(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "data" in capsys.readouterr().out


def test_prints_a_table_of_counts_and_says_each_clip_is_its_own_group(
    src: Path, tmp_path: Path, capsys
) -> None:
    args = ["data", "prepare", str(src), "--out", str(tmp_path / "out"), "--val", "0.25", "--test", "0.25"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "layout: class folders: anomaly <- fight/; normal <- noFight/" in out
    assert sum("each clip is its own group" in line for line in out.splitlines()) == 1
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("  ")}
    assert rows["split"] == ["normal", "anomaly", "total", "groups"]
    assert rows["train"] == ["4", "4", "8", "8"]
    assert rows["val"] == rows["test"] == ["2", "2", "4", "4"]
    assert rows["all"] == ["8", "8", "16", "16"]
    assert "16 symbolic links" in out and "split.json" in out


def test_test_1_makes_a_held_out_set_and_says_how_to_evaluate_it(src: Path, tmp_path: Path, capsys) -> None:
    out_dir = tmp_path / "held-out"
    assert main(["data", "prepare", str(src), "--out", str(out_dir), "--test", "1"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("  ")}
    assert set(rows) == {"split", "test", "all"} and rows["test"] == ["8", "8", "16", "16"]
    assert f"i3dmtn evaluate --test_path {out_dir / 'test'}" in out
    assert sorted(p.name for p in out_dir.iterdir()) == ["split.json", "test"]
    assert {c["split"] for c in read_split(out_dir)["clips"]} == {"test"}


def test_with_groups_it_counts_groups_per_split(src: Path, tmp_path: Path, capsys) -> None:
    groups = _groups(src, tmp_path / "groups.json")
    assert main(["data", "prepare", str(src), "--out", str(tmp_path / "out"), "--groups", str(groups),
                 "--val", "0.25", "--test", "0.25", "--seed", "2"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "groups: 4 from" in out and "each clip is its own group" not in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("  ")}
    assert sum(int(rows[s][3]) for s in ("train", "val", "test")) == 4 == int(rows["all"][3])
    assert read_split(tmp_path / "out")["seed"] == 2


def _bad_cases(src: Path, tmp_path: Path, videos: dict[str, Path]) -> dict[str, tuple[list[str], str]]:
    """name -> (arguments after ``data prepare``, a piece of the expected error line)."""
    out = ["--out", str(tmp_path / "out")]
    empty = tmp_path / "empty"
    (empty / "fight").mkdir(parents=True)
    (empty / "noFight").mkdir()
    unknown = make_source(tmp_path / "unknown", ["clips/a.mp4"], videos)
    rwf = make_source(tmp_path / "rwf", [f"{s}/{c}/{i}.avi" for s in ("train", "val") for c in ("Fight", "NonFight")
                                         for i in range(3)], videos)  # fmt: skip
    malformed = tmp_path / "bad.json"
    malformed.write_text('{"fight/fi001.mp4": "a",')
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps(["fight/fi001.mp4"]))
    nonempty = tmp_path / "full"
    nonempty.mkdir()
    (nonempty / "x").write_text("x")
    return {
        "src missing": ([str(tmp_path / "nowhere"), *out], "does not exist"),
        "no videos": ([str(empty), *out], "no video files"),
        "unknown layout": ([str(unknown), *out], "unknown data set layout; accepted: fight/ + noFight/"),
        "groups name a missing clip": (
            [
                str(src),
                *out,
                "--groups",
                str(_groups(src, tmp_path / "g1.json", add={"fight/fi404.mp4": "x"})),
            ],
            "names 1 clip(s) that are not videos found in SRC",
        ),
        "groups miss a clip": (
            [
                str(src),
                *out,
                "--groups",
                str(_groups(src, tmp_path / "g2.json", drop=("noFight/nofi002.mp4",))),
            ],
            "gives no group for 1 clip(s) of SRC, e.g. 'noFight/nofi002.mp4'",
        ),
        "groups file missing": ([str(src), *out, "--groups", str(tmp_path / "none.json")], "file not found"),
        "groups malformed JSON": ([str(src), *out, "--groups", str(malformed)], "not valid JSON"),
        "groups not an object": ([str(src), *out, "--groups", str(listed)], "expected a JSON object"),
        "val zero": ([str(src), *out, "--val", "0"], "0 < --val"),
        "val not a number": ([str(src), *out, "--val", "abc"], "--val must be a number, got 'abc'"),
        "test negative": ([str(src), *out, "--test", "-0.1"], "0 <= --test"),
        "fractions sum": ([str(src), *out, "--val", "0.6", "--test", "0.5"], "--val + --test < 1"),
        "val nan": ([str(src), *out, "--val", "nan"], "0 < --val"),
        "seed": ([str(src), *out, "--seed", "-1"], "--seed must be an integer >= 0"),
        "anomaly without normal": (
            [str(src), *out, "--anomaly", "fight/*"],
            "--anomaly and --normal go together",
        ),
        "glob matches nothing": (
            [str(src), *out, "--anomaly", "fight/*.avi", "--normal", "noFight/*"],
            "--anomaly 'fight/*.avi' matches no video files",
        ),
        "out not empty": ([str(src), "--out", str(nonempty)], "is not empty (use --force"),
        "resplit without own split": (
            [str(src), *out, "--resplit"],
            "--resplit applies only to a SRC with its own",
        ),
        "test with a kept split": ([str(rwf), *out, "--test", "0.2"], "--test: SRC's own split is kept"),
        "test 1 with val": (
            [str(src), *out, "--test", "1", "--val", "0.2"],
            "--test 1 puts every clip in test/",
        ),
        "test over 1": ([str(src), *out, "--test", "1.5"], "(or --test 1 alone)"),
        "test 1 resplit": ([str(src), *out, "--test", "1", "--resplit"], "--resplit applies only"),
    }


CASES = [
    "src missing", "no videos", "unknown layout", "groups name a missing clip", "groups miss a clip",
    "groups file missing", "groups malformed JSON", "groups not an object", "val zero", "val not a number",
    "test negative", "fractions sum", "val nan", "seed", "anomaly without normal", "glob matches nothing",
    "out not empty", "resplit without own split", "test with a kept split", "test 1 with val", "test over 1",
    "test 1 resplit",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_exit_2(
    case: str, src: Path, tmp_path: Path, tmp_path_factory, capsys
) -> None:
    args, expected = _bad_cases(src, tmp_path, tiny_videos(tmp_path_factory))[case]
    capsys.readouterr()
    assert main(["data", "prepare", *args]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("i3dmtn data: error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert not (tmp_path / "out").exists()


def test_too_few_groups_for_the_splits_is_one_line(src: Path, tmp_path: Path, capsys) -> None:
    rels = sorted(p.relative_to(src).as_posix() for p in src.rglob("*.mp4"))
    groups = write_groups(tmp_path / "g.json", {rel: "a" if rel.startswith("fight") else "b" for rel in rels})
    assert main(["data", "prepare", str(src), "--out", str(tmp_path / "out"), "--groups", str(groups)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["i3dmtn data: error: cannot split the clips into train, val, test: cannot split 2 group(s) "
                   "into 3 non-empty parts"]  # fmt: skip


def test_no_action_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["data"])
    assert exc.value.code == 2
