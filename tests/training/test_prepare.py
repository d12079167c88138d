"""``training.data.prepare``: downloaded layouts -> train/val/test folders of links, grouped, recorded."""

from __future__ import annotations

import errno
import os
from collections import Counter
from pathlib import Path

import pytest

from tests.training.source_layouts import fight_layout, make_source, read_split, tiny_videos, write_groups
from training.data.clip_links import output_names
from training.data.layouts import Clip, find_clips
from training.data.prepare import PrepareOptions, prepare_dataset
from training.data.records import DatasetError, find_splits, scan_videos

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "surveillance-fight"


@pytest.fixture
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return tiny_videos(tmp_path_factory)


def _prepare(src: Path, out: Path, **kw) -> object:
    return prepare_dataset(PrepareOptions(src=src, out=out, **kw))


def _on_disk(out: Path) -> dict[str, str]:
    """``{"split/class/name": link target}`` of every file under OUT's split folders."""
    return {
        p.relative_to(out).as_posix(): os.readlink(p) if p.is_symlink() else ""
        for p in sorted(out.glob("*/*/*"))
    }


def test_surveillance_fight_folders_become_anomaly_and_normal(tmp_path: Path, videos) -> None:
    src = fight_layout(tmp_path / "src", videos, n=10)
    result = _prepare(src, tmp_path / "out")
    assert result.layout.name == "class-folders"
    files = _on_disk(tmp_path / "out")
    assert len(files) == 20
    for path, target in files.items():
        cls = path.split("/")[1]
        assert (cls == "anomaly") == ("/fight/fi" in target) and (cls == "normal") == (
            "/noFight/nofi" in target
        )
    assert set(find_splits(tmp_path / "out")) == {"train", "val", "test"}
    records, skipped = scan_videos(tmp_path / "out" / "train")  # what the trainer reads
    assert records and not skipped and {r.label for r in records} == {0, 1}


@pytest.mark.parametrize(
    ("fight", "normal"),
    [("FIGHT", "No_Fight"), ("Fight", "NonFight"), ("anomaly", "normal"), ("Violence", "NonViolence")],
)
def test_class_folder_names_match_in_any_case(tmp_path: Path, videos, fight: str, normal: str) -> None:
    src = fight_layout(tmp_path / "src", videos, n=4, fight=fight, normal=normal)
    layout = find_clips(src)
    assert Counter(c.label for c in layout.clips) == {1: 4, 0: 4}
    assert all((c.label == 1) == c.rel.startswith(f"{fight}/") for c in layout.clips)


def _rwf(root: Path, videos, test: bool = False) -> Path:
    rels = [
        f"{s}/{c}/{s}_{c}_{i}.avi" for s in ("train", "val") for c in ("Fight", "NonFight") for i in range(6)
    ]
    if test:
        rels += [f"test/{c}/test_{c}_{i}.avi" for c in ("Fight", "NonFight") for i in range(3)]
    return make_source(root, rels, videos)


def test_rwf2000_keeps_its_split_its_val_becomes_test(tmp_path: Path, videos) -> None:
    src = _rwf(tmp_path / "RWF-2000", videos)
    result = _prepare(src, tmp_path / "out", val=0.35)
    assert result.layout.name == "split-folders"
    by_split = {c.source: c.split for c in result.clips}
    assert {s for rel, s in by_split.items() if rel.startswith("val/")} == {"test"}
    assert Counter(s for rel, s in by_split.items() if rel.startswith("train/")) == {"train": 8, "val": 4}
    assert "its val/ -> test/" in result.split_note
    assert result.counts()["val"] == {"normal": 2, "anomaly": 2, "groups": 4}


def test_a_source_test_split_is_kept_and_val_stays_val(tmp_path: Path, videos) -> None:
    src = _rwf(tmp_path / "src", videos, test=True)
    result = _prepare(src, tmp_path / "out")
    assert {c.source.split("/")[0] + "->" + c.split for c in result.clips} == {
        "train->train",
        "val->val",
        "test->test",
    }
    with pytest.raises(DatasetError, match="--val: SRC's own val/ split is kept"):
        _prepare(src, tmp_path / "out2", val=0.2)


def test_resplit_pools_the_source_split(tmp_path: Path, videos) -> None:
    src = _rwf(tmp_path / "src", videos)
    result = _prepare(src, tmp_path / "out", resplit=True, val=0.25, test=0.25, seed=1)
    counts = result.counts()
    assert {s: (n["normal"], n["anomaly"]) for s, n in counts.items()} == {
        "train": (6, 6),
        "val": (3, 3),
        "test": (3, 3),
    }
    assert any(c.source.startswith("val/") and c.split == "train" for c in result.clips)
    assert result.split_note.startswith("pooled SRC's own split")


def test_test_1_pools_a_source_split_into_test_only(tmp_path: Path, videos) -> None:
    src = _rwf(tmp_path / "src", videos, test=True)
    result = _prepare(src, tmp_path / "out", test=1.0)
    assert {c.split for c in result.clips} == {"test"} and len(result.clips) == 30
    assert result.counts() == {"test": {"normal": 15, "anomaly": 15, "groups": 30}}
    assert "SRC's own split (test, train, val) pooled" in result.split_note
    assert set(find_splits(tmp_path / "out")) == {"test"}
    records, skipped = scan_videos(tmp_path / "out" / "test")  # what i3dmtn evaluate reads
    assert len(records) == 30 and not skipped


def test_kept_split_refuses_a_group_spanning_its_source_splits(tmp_path: Path, videos) -> None:
    src = _rwf(tmp_path / "src", videos)
    rels = [c.rel for c in find_clips(src).clips]
    groups = write_groups(
        tmp_path / "g.json", {rel: "one-source" if rel.endswith("_0.avi") else rel for rel in rels}
    )
    with pytest.raises(DatasetError, match="more than one of SRC's own splits.*--resplit"):
        _prepare(src, tmp_path / "out", groups_file=groups)


def test_hockey_flat_fi_and_no_files(tmp_path: Path, videos) -> None:
    rels = [f"fi{i}_xvid.avi" for i in range(1, 6)] + [f"no{i}_xvid.avi" for i in range(1, 6)]
    src = make_source(tmp_path / "HockeyFights", rels, videos)
    result = _prepare(src, tmp_path / "out", val=0.2, test=0.2)
    assert result.layout.name == "flat-prefixes"
    assert all(c.label == (1 if c.source.startswith("fi") else 0) for c in result.clips)
    assert sum(n["normal"] + n["anomaly"] for n in result.counts().values()) == 10


def test_flat_files_with_other_names_are_refused_with_the_globs_hint(tmp_path: Path, videos) -> None:
    src = make_source(tmp_path / "src", ["fi1.avi", "no1.avi", "clip7.avi"], videos)
    with pytest.raises(DatasetError, match=r"1 video file\(s\).*'clip7.avi'.*--anomaly GLOB --normal GLOB"):
        find_clips(src)


def test_globs_override_detection(tmp_path: Path, videos) -> None:
    src = fight_layout(tmp_path / "src", videos, n=6)
    make_source(
        src, ["extra/fights/x1.mp4", "extra/fights/x2.mp4", "extra/calm/y1.mp4", "extra/calm/y2.mp4"], videos
    )
    layout = find_clips(
        src, anomaly=("extra/fights/*.mp4",), normal=("extra/calm/*", "noFight/nofi00[12].mp4")
    )
    assert layout.name == "globs"
    assert {c.rel: c.label for c in layout.clips} == {
        "extra/fights/x1.mp4": 1,
        "extra/fights/x2.mp4": 1,
        "extra/calm/y1.mp4": 0,
        "extra/calm/y2.mp4": 0,
        "noFight/nofi001.mp4": 0,
        "noFight/nofi002.mp4": 0,
    }
    with pytest.raises(DatasetError, match="match both --anomaly and --normal"):
        find_clips(src, anomaly=("**/*.mp4",), normal=("noFight/*.mp4",))


def test_a_group_never_spans_two_splits_and_both_classes_are_everywhere(tmp_path: Path, videos) -> None:
    src = fight_layout(tmp_path / "src", videos, n=24)
    rels = sorted(c.rel for c in find_clips(src).clips)
    groups = {rel: f"source{i % 9}" for i, rel in enumerate(rels)}  # 9 sources, both classes in each
    result = _prepare(src, tmp_path / "out", groups_file=write_groups(tmp_path / "g.json", groups))
    split_of_group: dict[str, set[str]] = {}
    for c in result.clips:
        assert c.group == groups[c.source]
        split_of_group.setdefault(c.group, set()).add(c.split)
    assert all(len(s) == 1 for s in split_of_group.values())
    assert all(n["normal"] > 0 and n["anomaly"] > 0 for n in result.counts().values())


def test_the_seed_decides_the_split(tmp_path: Path, videos) -> None:
    src = fight_layout(tmp_path / "src", videos, n=12)
    splits = {}
    for run, seed in (("a", 3), ("b", 3), ("c", 4)):
        result = _prepare(src, tmp_path / run, seed=seed)
        splits[run] = {c.source: c.split for c in result.clips}
    assert splits["a"] == splits["b"]
    assert splits["a"] != splits["c"]
    assert _on_disk(tmp_path / "a") == _on_disk(tmp_path / "b")


def test_clips_are_symbolic_links_to_absolute_source_paths(tmp_path: Path, videos, monkeypatch) -> None:
    fight_layout(tmp_path / "src", videos, n=4)
    monkeypatch.chdir(tmp_path)
    result = _prepare(Path("src"), Path("out"))  # relative paths on the command line
    assert result.links == {"symbolic": 8}
    for c in result.clips:
        link = tmp_path / "out" / c.path
        assert link.is_symlink()
        assert Path(os.readlink(link)) == (tmp_path / "src" / c.source).resolve()
        assert link.resolve() == (tmp_path / "src" / c.source).resolve()


def test_hard_links_where_symbolic_links_fail(tmp_path: Path, videos, monkeypatch) -> None:
    src = fight_layout(tmp_path / "src", videos, n=4)

    def no_symlinks(*args, **kwargs):
        raise OSError(errno.EPERM, "symbolic links not permitted")

    monkeypatch.setattr(os, "symlink", no_symlinks)
    result = _prepare(src, tmp_path / "out")
    assert result.links == {"hard": 8}
    for c in result.clips:
        link = tmp_path / "out" / c.path
        assert not link.is_symlink() and link.samefile(src / c.source)


def test_no_link_at_all_is_an_error_never_a_copy(tmp_path: Path, videos, monkeypatch) -> None:
    src = fight_layout(tmp_path / "src", videos, n=4)

    def refuse(*args, **kwargs):
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(os, "symlink", refuse)
    monkeypatch.setattr(os, "link", refuse)
    with pytest.raises(DatasetError, match="prepare never copies videos"):
        _prepare(src, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*/*/*"))


def test_shared_file_names_get_their_parent_path_as_prefix(tmp_path: Path, videos) -> None:
    rels = ["fight/cam1/a.mp4", "fight/cam2/a.mp4", "fight/cam2/b.mp4", "noFight/cam1/a.mp4", "noFight/B.mp4"]
    rels += ["noFight/cam3/b.mp4"]  # "B.mp4" and "b.mp4" clash on a file system that ignores case
    src = make_source(tmp_path / "src", rels, videos)
    result = _prepare(src, tmp_path / "out", val=0.3, test=0.0)
    names = {c.source: c.path.split("/", 2)[2] for c in result.clips}
    assert names == {
        "fight/cam1/a.mp4": "fight_cam1_a.mp4",
        "fight/cam2/a.mp4": "fight_cam2_a.mp4",
        "fight/cam2/b.mp4": "b.mp4",
        "noFight/cam1/a.mp4": "a.mp4",
        "noFight/B.mp4": "noFight_B.mp4",
        "noFight/cam3/b.mp4": "noFight_cam3_b.mp4",
    }


def test_output_names_number_what_prefixes_cannot_separate() -> None:
    clips = [Clip("x/a_b/c.mp4", 1), Clip("x/a/b_c.mp4", 1), Clip("y/a_b/c.mp4", 1), Clip("y/a/b_c.mp4", 1)]
    clips += [Clip("a_b_c.mp4", 1)]
    names = output_names(clips)
    assert len(set(names.values())) == 5
    assert names["x/a/b_c.mp4"] == "x_a_b_c.mp4" and names["x/a_b/c.mp4"] == "x_a_b_c-2.mp4"


def test_the_split_file_records_every_clip_seed_and_options(tmp_path: Path, videos) -> None:
    src = fight_layout(tmp_path / "src", videos, n=8)
    rels = sorted(c.rel for c in find_clips(src).clips)
    groups = write_groups(tmp_path / "g.json", {rel: f"g{i // 2}" for i, rel in enumerate(rels)})
    _prepare(src, tmp_path / "out", groups_file=groups, seed=7, val=0.25, test=0.25)
    record = read_split(tmp_path / "out")
    assert record["seed"] == 7 and record["layout"] == "class-folders"
    assert record["options"]["val"] == 0.25 and record["options"]["groups"] == str(groups.resolve())
    assert record["options"]["folds"] is None and record["options"]["fold"] is None
    assert record["fractions"] == {"train": 0.5, "val": 0.25, "test": 0.25}
    assert sorted(c["source"] for c in record["clips"]) == rels
    for c in record["clips"]:
        assert c["path"].startswith(f"{c['split']}/{'anomaly' if c['label'] else 'normal'}/")
        assert (tmp_path / "out" / c["path"]).resolve() == (src / c["source"]).resolve()
        assert c["group"] == f"g{rels.index(c['source']) // 2}"
    assert {p: t for p, t in _on_disk(tmp_path / "out").items()}.keys() == {
        c["path"] for c in record["clips"]
    }


def test_unreadable_videos_are_skipped_warned_and_counted(tmp_path: Path, videos, caplog) -> None:
    src = fight_layout(tmp_path / "src", videos, n=6)
    (src / "fight" / "fi999.mp4").write_bytes(b"not a video")
    (src / "noFight" / "empty.mp4").write_bytes(b"")
    result = _prepare(src, tmp_path / "out")
    assert set(result.skipped) == {"fight/fi999.mp4", "noFight/empty.mp4"}
    assert "skipped 2 of 14 videos" in caplog.text
    assert len(result.clips) == 12
    assert {s["source"] for s in read_split(tmp_path / "out")["skipped"]} == set(result.skipped)


def test_a_non_empty_out_needs_force_which_replaces_links_only(tmp_path: Path, videos) -> None:
    src = fight_layout(tmp_path / "src", videos, n=6)
    out = tmp_path / "out"
    _prepare(src, out, seed=0)
    with pytest.raises(DatasetError, match="is not empty.*--force"):
        _prepare(src, out, seed=1)
    (out / "notes.txt").write_text("mine")
    result = _prepare(src, out, seed=1, force=True)
    assert set(_on_disk(out)) == {c.path for c in result.clips}  # no stale links of the first run
    assert (out / "notes.txt").read_text() == "mine"
    assert len(list(src.glob("*/*.mp4"))) == 12  # sources untouched
    real = out / "train" / "normal" / "my-own-video.mp4"
    real.write_bytes(b"someone's only copy")
    with pytest.raises(DatasetError, match="is not a link"):
        _prepare(src, out, seed=2, force=True)
    assert real.read_bytes() == b"someone's only copy"
    assert set(_on_disk(out)) - {"train/normal/my-own-video.mp4"} == {c.path for c in result.clips}


def test_force_removes_a_split_the_new_run_does_not_make(tmp_path: Path, videos) -> None:
    src = fight_layout(tmp_path / "src", videos, n=10)
    out = tmp_path / "out"
    _prepare(src, out, test=0.2)
    assert (out / "test").is_dir()
    result = _prepare(src, out, test=0.0, force=True)
    assert set(find_splits(out)) == {"train", "val"} and not (out / "test").exists()
    assert set(_on_disk(out)) == {c.path for c in result.clips}


def test_out_inside_src_is_refused(tmp_path: Path, videos) -> None:
    src = fight_layout(tmp_path / "src", videos, n=4)
    with pytest.raises(DatasetError, match="must not lie inside one another"):
        _prepare(src, src / "prepared")


@pytest.mark.slow
def test_the_real_surveillance_fight_set_with_its_groups(tmp_path: Path) -> None:
    if not (REAL / "groups.json").is_file():
        pytest.skip(f"the real data set is not here ({REAL}); it lives beside the project checkout")
    result = _prepare(REAL, tmp_path / "out", groups_file=REAL / "groups.json", seed=0)
    assert len(result.clips) + len(result.skipped) == 200 and not result.skipped
    splits_of_group: dict[str, set[str]] = {}
    for c in result.clips:
        splits_of_group.setdefault(c.group, set()).add(c.split)
    assert len(splits_of_group) == 29
    assert all(len(s) == 1 for s in splits_of_group.values())
    counts = result.counts()
    assert (
        sum(n["normal"] for n in counts.values()) == 100 and sum(n["anomaly"] for n in counts.values()) == 100
    )
    for split, fraction in (("train", 0.7), ("val", 0.15), ("test", 0.15)):
        for name in ("normal", "anomaly"):
            assert abs(counts[split][name] - 100 * fraction) <= 3, counts
    assert len(list((tmp_path / "out").glob("*/*/*.mp4"))) == 200


def test_folds_put_every_clip_in_exactly_one_test_fold_and_never_split_a_group(
    tmp_path: Path, videos
) -> None:
    src = fight_layout(tmp_path / "src", videos, n=20)
    rels = sorted(c.rel for c in find_clips(src).clips)
    groups = write_groups(tmp_path / "g.json", {rel: f"source{i % 10}" for i, rel in enumerate(rels)})
    tested: Counter = Counter()
    for fold in range(5):
        result = _prepare(src, tmp_path / f"out{fold}", groups_file=groups, folds=5, fold=fold, val=0.25)
        split_of_group: dict[str, set[str]] = {}
        for c in result.clips:
            split_of_group.setdefault(c.group, set()).add(c.split)
            tested[c.source] += c.split == "test"
        assert all(len(s) == 1 for s in split_of_group.values())
        assert set(result.counts()) == {"train", "val", "test"}
        assert "5-fold: test = fold" in result.split_note
        options = read_split(tmp_path / f"out{fold}")["options"]
        assert (options["folds"], options["fold"]) == (5, fold)
    assert sorted(tested) == rels and set(tested.values()) == {1}  # each clip is tested exactly once


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"folds": 5}, "--folds K and --fold I go together"),
        ({"folds": 1, "fold": 0}, "--folds must be an integer >= 2"),
        ({"folds": 5, "fold": 5}, "--fold in 0 .. folds-1"),
        ({"folds": 5, "fold": 0, "test": 0.2}, "--test does not apply with --folds"),
    ],
)
def test_bad_fold_options_are_one_line(tmp_path: Path, videos, kw, message) -> None:
    src = fight_layout(tmp_path / "src", videos, n=10)
    with pytest.raises(DatasetError, match=message):
        _prepare(src, tmp_path / "out", **kw)
