"""Corrupt inputs on disk: broken videos in a training set are skipped and counted; a tampered bundle is refused."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from edge_runtime.bundle import BundleError, load_bundle
from tests.export.test_bundle_writer import make_sources
from tests.training.tiny_data import write_video

SEED = 99


def _corrupt(path: Path, how: str, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: rng.randint(1, len(data) // 2)]))
    elif how == "garbage":
        path.write_bytes(rng.randbytes(len(data)))
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "scrambled":  # the header survives, the frames do not
        start = len(data) // 4
        data[start:] = rng.randbytes(len(data) - start)
        path.write_bytes(bytes(data))


def test_truncated_and_corrupt_videos_are_skipped_and_counted(tmp_path):
    torch = pytest.importorskip("torch")
    from training.data import AnomalyVideoDataset

    rng = random.Random(SEED)
    good, bad = [], []
    kinds = ["truncated", "garbage", "empty", "scrambled"] * 2
    for label in ("normal", "anomaly"):
        for i in range(6):
            path = write_video(tmp_path / label / f"v{i}.mp4", frames=12)
            if i < 4:
                _corrupt(path, kinds.pop(), rng)
                bad.append(path)
            else:
                good.append(path)
    dataset = AnomalyVideoDataset(tmp_path, clip_length=4, frame_size=32, num_snippets=2)
    items = [dataset[i] for i in range(len(dataset))]
    skipped = {s.path for s in dataset.skipped}
    print(
        f"\n[corrupt videos] videos={len(good) + len(bad)} corrupted={len(bad)} skipped={len(skipped)} items={len(items)}"
    )
    assert {r.path for r in dataset.records} | skipped == set(good) | set(bad)
    assert set(good) <= {r.path for r in dataset.records} and not skipped & set(good)
    assert len(skipped) >= len(bad) - 2  # a scrambled tail may still decode: then it is a usable video
    assert all(torch.isfinite(item["clips"]).all() for item in items)


@pytest.fixture
def bundle(tmp_path) -> Path:
    from export.bundle import write_bundle

    manifest, specs, extras = make_sources(tmp_path / "src")
    return write_bundle(tmp_path / "bundle", manifest=manifest, files=specs, extras=extras)


def test_one_changed_byte_in_any_model_file_is_refused(bundle):
    loaded = load_bundle(bundle)
    files = [mf.path for mf in loaded.files] + [c.path for mf in loaded.files for c in mf.companions]
    tried = 0
    for path in files:
        original = path.read_bytes()
        for offset in sorted({0, len(original) // 2, len(original) - 1}):
            tampered = bytearray(original)
            tampered[offset] ^= 0x01
            path.write_bytes(bytes(tampered))
            with pytest.raises(BundleError, match="changed since export") as info:
                load_bundle(bundle)
            assert path.name in str(info.value) and "\n" not in str(info.value)
            tried += 1
        path.write_bytes(original)
        assert load_bundle(bundle).files  # restored: loads again
    print(f"\n[tampered bundle] files={len(files)} tampered_copies={tried} refused={tried}")
    assert len(files) == 6
