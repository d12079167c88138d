"""benchmarks.real_cameras: each condition re-makes a clip as it says, the comparison counts what changed, and
the goal and the options are kept."""

import numpy as np
import pytest

pytest.importorskip("av")

from benchmarks import real_cameras  # noqa: E402
from edge_runtime.video import probe_video, read_frames, write_video  # noqa: E402


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 400x300 clip of 30 frames at 30 fps: a bright square moving over a textured grey field."""
    rng = np.random.default_rng(1)
    field = rng.integers(60, 140, (300, 400, 3), dtype=np.uint8)
    frames = []
    for i in range(30):
        f = field.copy()
        f[100:160, 10 + 8 * i : 70 + 8 * i] = 230
        frames.append(f)
    path = tmp_path_factory.mktemp("src") / "fi001.mp4"
    write_video(path, frames, 30.0)
    return path


def remade(clip, tmp_path, name):
    return real_cameras.remake_clip(clip, tmp_path / name / "fi001.mp4", real_cameras.CONDITIONS[name])


def test_small_and_12fps_are_the_size_and_rate_they_say(clip, tmp_path):
    small = probe_video(remade(clip, tmp_path, "small"))
    assert (small.width, small.height, small.num_frames) == (320, 240, 30)
    slow = probe_video(remade(clip, tmp_path, "12fps"))
    assert slow.fps == pytest.approx(12.0, abs=0.01) and slow.num_frames == 12  # 30 frames at 30 fps: 1 s
    assert (slow.width, slow.height) == (400, 300)


def test_a_starved_stream_is_smaller_and_the_noise_is_seeded(clip, tmp_path):
    again = remade(clip, tmp_path, "reencoded")
    starved = remade(clip, tmp_path, "starved")
    assert starved.stat().st_size < again.stat().st_size
    noisy = read_frames(remade(clip, tmp_path, "noisy")).astype(np.float32)
    clean = read_frames(again).astype(np.float32)
    assert 2.0 < float((noisy - clean).std()) < 12.0  # sigma 8, part of it taken by the encoder
    twice = real_cameras.remake_clip(clip, tmp_path / "twice" / "fi001.mp4", real_cameras.CONDITIONS["noisy"])
    assert np.array_equal(read_frames(twice), noisy.astype(np.uint8))  # the clip's name seeds the noise


def test_night_is_darker_and_an_existing_clip_is_kept(clip, tmp_path):
    night = remade(clip, tmp_path, "night")
    ratio = read_frames(night).mean() / read_frames(clip).mean()
    assert 0.25 < ratio < 0.45
    before = night.stat().st_mtime_ns
    assert remade(clip, tmp_path, "night").stat().st_mtime_ns == before  # a stopped run resumes
    assert not list((tmp_path / "night").glob("*.part"))


def test_handheld_moves_the_whole_frame_within_the_zoom_and_is_seeded(clip, tmp_path):
    import cv2

    shaken = read_frames(remade(clip, tmp_path, "handheld"))
    assert shaken.shape == read_frames(clip).shape  # the same size and frames
    grey = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY).astype(np.float32) for f in shaken]
    steps = [np.hypot(*cv2.phaseCorrelate(a, b)[0]) for a, b in zip(grey[:-1], grey[1:], strict=True)]
    assert max(steps) > 0.5  # the camera moves (the field is most of the frame, the square a little of it)
    start, end = (cv2.phaseCorrelate(grey[0], g)[0] for g in (grey[0], grey[-1]))
    assert np.hypot(*start) < 0.1 and np.hypot(*end) <= 2 * 0.9 * 0.05 * 400 * 1.1  # inside the margin
    change = real_cameras.CONDITIONS["handheld"].change
    frames = list(read_frames(clip))
    once, twice = (change(frames, 30.0, np.random.default_rng(7))[0] for _ in range(2))
    assert len(once) == len(twice) == len(frames)
    # seeded (remake_clip seeds it by the clip's name)
    assert all(np.array_equal(a, b) for a, b in zip(once, twice, strict=True))


def test_zooming_enlarges_the_picture_by_its_speed_and_is_seeded():
    still = np.zeros((300, 400, 3), np.uint8)
    still[130:170, 180:220] = 255  # a 40 px square near the centre, 30 frames of a still camera
    change = real_cameras.CONDITIONS["zooming"].change
    zoomed, rate = change([still] * 30, 30.0, np.random.default_rng(7))
    assert rate == 30.0 and len(zoomed) == 30 and np.array_equal(zoomed[0], still)

    def width(frame):  # the square's width in pixels: the most bright pixels in a row
        return float((frame[:, :, 0] > 127).sum(axis=1).max())

    growth = [width(f) / 40 for f in zoomed]
    assert growth[-1] == pytest.approx(1 + real_cameras.ZOOM_SPEED * 29 / 30, abs=0.03)
    assert all(a <= b + 0.03 for a, b in zip(growth[:-1], growth[1:], strict=True))  # it only grows
    again, _ = change([still] * 30, 30.0, np.random.default_rng(7))
    assert all(np.array_equal(x, y) for x, y in zip(zoomed, again, strict=True))  # seeded


def report(scores, threshold=0.5, ext="mp4"):
    return {
        "threshold": threshold,
        "videos": [
            {"video": f"/x/{n}.{ext}", "label": int(n.startswith("fi")), "score": s} for n, s in scores
        ],
    }


def test_the_comparison_counts_changed_decisions_over_the_shared_clips():
    recorded = report([("fi1", 0.9), ("fi2", 0.6), ("no1", 0.2), ("no2", 0.4), ("no3", 0.1)], ext="avi")
    # re-made as .mp4; no3 not scored again; the remade report's own threshold is not the run's
    remade_ = report([("fi1", 0.8), ("fi2", 0.4), ("no1", 0.3), ("no2", 0.7)], threshold=0.99)
    out = real_cameras.compare_reports(recorded, remade_)
    assert out["clips"] == 4 and out["changed"] == 2  # fi2 fell under the recorded 0.5, no2 rose over it
    assert out["shift"] == pytest.approx((-0.1 - 0.2 + 0.1 + 0.3) / 4)
    assert out["auc_recorded"] == 1.0 and out["auc"] == 0.75  # 3 of the 4 fight-calm pairs in order
    assert out["accuracy_recorded"] == 1.0 and out["accuracy"] == 0.5


def test_a_condition_over_the_goal_is_missed():
    ok = {"clips": 40, "auc_recorded": 0.8, "auc": 0.79, "accuracy_recorded": 0.7, "accuracy": 0.7,
          "shift": 0.0, "changed": 2}  # fmt: skip
    lines, met = real_cameras._summary({"starved": [ok], "noisy": [dict(ok, auc=0.75)]})
    assert not met and lines[-1].endswith("MISSED") and not lines[-2].endswith("MISSED")
    _, met = real_cameras._summary({"starved": [ok], "small": [dict(ok, changed=5)]})  # 5 of 40: over 10 %
    assert not met
    _, met = real_cameras._summary({"starved": [ok]})
    assert met


def test_a_work_folder_without_folds_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        real_cameras.main(["--work", str(tmp_path)])
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert exc.value.code == 2 and len(err) == 1 and "no fold with run/best.pt" in err[0]
