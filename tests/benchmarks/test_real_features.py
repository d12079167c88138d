"""benchmarks.real_features: each round's feature cache laid out from one store, each clip computed once."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.real_features import round_features


def _round(root: Path, name: str, layout: dict[str, list[str]]) -> Path:
    data = root / name / "data"
    for where, clips in layout.items():
        for clip in clips:
            (data / where).mkdir(parents=True, exist_ok=True)
            (data / where / clip).write_bytes(b"video")
    return data


def test_a_clip_is_computed_by_the_first_round_only_and_laid_out_for_the_next(tmp_path):
    computed: list[str] = []

    def fake_cli(args: list[str], log: Path, threads: int) -> None:  # `i3dmtn features`: the missing clips
        data, out = Path(args[args.index("--data_path") + 1]), Path(args[args.index("--out") + 1])
        for video in sorted(data.glob("*/*/*")):
            feat = out / video.relative_to(data).with_name(video.name + ".npy")
            if not feat.exists():
                feat.parent.mkdir(parents=True, exist_ok=True)
                np.save(feat.with_name(video.name + ".labels.npy"), np.zeros(3, np.int8))
                np.save(feat, np.full((1, 4), len(computed), np.float32))
                computed.append(video.name)

    kw = dict(work=tmp_path, config="kinetics", sets=["--set", "seed=1"], weights=Path(__file__), threads=1)
    first = _round(tmp_path, "fold0", {"train/normal": ["a.mp4"], "test/anomaly": ["b.mp4"]})
    second = _round(tmp_path, "fold1", {"test/normal": ["a.mp4"], "train/anomaly": ["b.mp4", "c.mp4"]})
    round_features(fake_cli, data=first, here=first.parent, **kw)
    feats = round_features(fake_cli, data=second, here=second.parent, **kw)
    assert computed == ["b.mp4", "a.mp4", "c.mp4"]  # the second round computed c alone
    np.testing.assert_array_equal(
        np.load(feats / "test/normal/a.mp4.npy"), np.load(first.parent / "features/train/normal/a.mp4.npy")
    )
    assert (feats / "train/anomaly/b.mp4.labels.npy").exists()
    other = round_features(fake_cli, data=_round(tmp_path, "fold2", {"val/normal": ["a.mp4"]}),
                           here=tmp_path / "fold2", **{**kw, "sets": ["--set", "seed=2"]})  # fmt: skip
    assert (
        computed[-1] == "a.mp4" and (other / "val/normal/a.mp4.npy").exists()
    )  # another recipe: its own store


def test_a_round_laid_out_again_keeps_no_clip_of_an_earlier_split(tmp_path):
    def fake_cli(args: list[str], log: Path, threads: int) -> None:
        data, out = Path(args[args.index("--data_path") + 1]), Path(args[args.index("--out") + 1])
        for video in data.glob("*/*/*"):
            feat = out / video.relative_to(data).with_name(video.name + ".npy")
            feat.parent.mkdir(parents=True, exist_ok=True)
            np.save(feat.with_name(video.name + ".labels.npy"), np.zeros(3, np.int8))
            np.save(feat, np.zeros((1, 4), np.float32))

    kw = dict(work=tmp_path, config="kinetics", sets=[], weights=Path(__file__), threads=1)
    data = _round(tmp_path, "fold0", {"train/normal": ["a.mp4"], "test/anomaly": ["b.mp4"]})
    round_features(fake_cli, data=data, here=data.parent, **kw)
    for old in (data / "train/normal/a.mp4", data / "test/anomaly/b.mp4"):
        old.unlink()
    data = _round(
        tmp_path, "fold0", {"test/normal": ["a.mp4"], "train/anomaly": ["b.mp4"]}
    )  # another fold seed
    feats = round_features(fake_cli, data=data, here=data.parent, **kw)
    assert sorted(p.relative_to(feats).as_posix() for p in feats.rglob("*.mp4.npy")) == [
        "test/normal/a.mp4.npy",
        "train/anomaly/b.mp4.npy",
    ]
