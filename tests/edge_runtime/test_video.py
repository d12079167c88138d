"""The shared video reader: real mp4v files written by OpenCV, truncated and missing files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_runtime.video import (
    VideoReadError,
    VideoWriteError,
    iter_frames,
    probe_video,
    read_frames,
    write_video,
)

W, H, N, FPS = 64, 48, 24, 25.0


def _frames(n: int = N) -> np.ndarray:
    """Frames whose mean brightness encodes their index (robust to mp4v compression)."""
    frames = np.zeros((n, H, W, 3), np.uint8)
    for i in range(n):
        frames[i] = 20 + 9 * i
    return frames


def _index_of(frame: np.ndarray) -> int:
    return int(round((float(frame.mean()) - 20) / 9))


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    write_video(path, _frames(), FPS)
    return path


def test_probe_reports_frame_count_fps_and_size(video: Path) -> None:
    info = probe_video(video)
    assert (info.num_frames, info.width, info.height) == (N, W, H)
    assert info.fps == pytest.approx(FPS)
    assert info.path == video


def test_read_all_frames_returns_every_frame_in_order(video: Path) -> None:
    frames = read_frames(video)
    assert frames.shape == (N, H, W, 3) and frames.dtype == np.uint8
    assert [_index_of(f) for f in frames] == list(range(N))


def test_read_selected_indices_keeps_the_given_order_and_repeats(video: Path) -> None:
    indices = [17, 3, 3, 0, 23]
    frames = read_frames(video, indices)
    assert frames.shape == (len(indices), H, W, 3)
    assert [_index_of(f) for f in frames] == indices


def test_read_no_indices_gives_an_empty_batch_of_the_right_size(video: Path) -> None:
    assert read_frames(video, []).shape == (0, H, W, 3)


def test_iter_frames_yields_the_same_frames_as_read_frames(video: Path) -> None:
    assert np.array_equal(np.stack(list(iter_frames(video))), read_frames(video))


def test_index_beyond_the_end_is_an_error_naming_the_file(video: Path) -> None:
    with pytest.raises(VideoReadError, match=r"beyond the end.*clip\.mp4"):
        read_frames(video, [0, N])


def test_negative_index_is_an_error(video: Path) -> None:
    with pytest.raises(VideoReadError, match=">= 0"):
        read_frames(video, [-1])


def test_missing_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.mp4"
    for call in (probe_video, read_frames, lambda p: list(iter_frames(p))):
        with pytest.raises(VideoReadError, match="nowhere.mp4"):
            call(missing)


def test_file_cut_in_half_is_an_error_naming_the_file(video: Path) -> None:
    data = video.read_bytes()
    cut = video.with_name("cut.mp4")
    cut.write_bytes(data[: len(data) // 2])
    for call in (probe_video, read_frames, lambda p: list(iter_frames(p))):
        with pytest.raises(VideoReadError, match="cut.mp4"):
            call(cut)


def test_corrupt_frame_data_is_reported_as_truncated_or_corrupt(video: Path) -> None:
    """An intact header over damaged frame data: the reader must not return fewer frames silently."""
    data = bytearray(video.read_bytes())
    mdat = data.find(b"mdat")
    moov = data.find(b"moov")
    assert 0 < mdat < moov, "expected OpenCV's mp4 layout: frame data before the index"
    start = mdat + (moov - mdat) // 4
    data[start : moov - 8] = bytes(moov - 8 - start)
    bad = video.with_name("bad.mp4")
    bad.write_bytes(bytes(data))
    with pytest.raises(VideoReadError, match=r"bad\.mp4.*(truncated|corrupt)"):
        read_frames(bad)
    with pytest.raises(VideoReadError, match=r"bad\.mp4"):
        probe_video(bad)


def test_a_directory_is_not_a_video(tmp_path: Path) -> None:
    with pytest.raises(VideoReadError, match="not a video file"):
        probe_video(tmp_path)


def test_write_video_is_byte_identical_for_the_same_frames(tmp_path: Path) -> None:
    write_video(tmp_path / "a.mp4", _frames(), FPS)
    write_video(tmp_path / "b.mp4", _frames(), FPS)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def test_write_video_refuses_frames_of_different_sizes(tmp_path: Path) -> None:
    frames = [np.zeros((H, W, 3), np.uint8), np.zeros((H, W + 2, 3), np.uint8)]
    with pytest.raises(VideoWriteError, match="must be 64x48"):
        write_video(tmp_path / "x.mp4", frames, FPS)
