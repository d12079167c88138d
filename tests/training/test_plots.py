import cv2
import numpy as np
import pytest

from edge_runtime.video import probe_video, read_frames, write_video
from training.plots import (
    create_video_with_annotations,
    plot_anomaly_scores_timeline,
    plot_roc_pr,
    plot_training_curves,
    visualize_attention_weights,
)


def assert_png(path):
    assert path.is_file() and path.stat().st_size > 0
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 50 and image.shape[1] > 50
    assert not list(path.parent.glob(".*tmp*")), "temporary file left behind"


@pytest.mark.parametrize("as_rows", [True, False])
def test_training_curves_from_rows_or_columns(tmp_path, as_rows):
    rows = [
        {"epoch": e, "train_loss": 1 / e, "train_smoothness": 1e-3 / e, "val_auc": 0.5 + e / 20, "lr": 1e-3}
        for e in range(1, 6)
    ]
    history = rows if as_rows else {k: [r[k] for r in rows] for k in rows[0]}
    assert_png(plot_training_curves(history, save_path=tmp_path / "new" / "curves.png"))


def test_training_curves_tolerate_missing_values(tmp_path):
    history = [{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.5, "val_auc": None, "note": "x"}]
    assert_png(plot_training_curves(history, save_path=tmp_path / "curves.png"))


def test_roc_pr_with_threshold(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 20)
    scores = np.clip(labels * 0.4 + rng.uniform(0, 0.6, 40), 0, 1)
    assert_png(plot_roc_pr(labels, scores, tmp_path / "roc_pr.png", threshold=0.5))


def test_roc_pr_with_one_class_still_writes_a_figure(tmp_path):
    assert_png(plot_roc_pr([1, 1], [0.2, 0.9], tmp_path / "roc_pr.png"))


def test_roc_pr_length_mismatch_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="differ in length"):
        plot_roc_pr([0, 1], [0.2], tmp_path / "roc_pr.png")


def test_timeline_with_ground_truth(tmp_path):
    scores = np.concatenate([np.full(30, 0.1), np.full(20, 0.9), np.full(30, 0.2)])
    labels = (np.arange(80) >= 28) & (np.arange(80) < 52)
    out = plot_anomaly_scores_timeline(
        scores, tmp_path / "t.png", threshold=0.5, frame_labels=labels, title="v1"
    )
    assert_png(out)


@pytest.mark.parametrize("shape", [(8,), (5, 8)])
def test_attention_one_video_or_many(tmp_path, shape):
    rng = np.random.default_rng(1)
    att = rng.dirichlet(np.ones(8), size=shape[:-1] or None)
    assert_png(visualize_attention_weights(att, rng.uniform(size=shape), save_path=tmp_path / "att.png"))


def test_attention_shape_mismatch_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="snippet_scores"):
        visualize_attention_weights(np.ones((2, 4)) / 4, np.ones((2, 5)), save_path=tmp_path / "a.png")


def test_attention_of_one_video_is_drawn_with_its_frame_scores(tmp_path):
    fig = visualize_attention_weights(np.ones(4) / 4, np.linspace(0, 1, 32))
    scores = fig.axes[1].lines[0]
    assert scores.get_label() == "frame score" and len(scores.get_xdata()) == 32
    assert scores.get_xdata()[0] > -0.5 and scores.get_xdata()[-1] < 3.5  # across the 4 snippets


def grey_video(path, n=12, h=96, w=128):
    write_video(path, [np.full((h, w, 3), 120, np.uint8)] * n, fps=10.0)
    return path


def is_red(region: np.ndarray) -> bool:
    b, g, r = region.reshape(-1, 3).mean(axis=0)
    return r > 180 and g < 70 and b < 70


def test_annotated_video_keeps_frames_and_shows_banner_only_above_threshold(tmp_path):
    src = grey_video(tmp_path / "in.mp4")
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.45, 0.49, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    out = create_video_with_annotations(src, scores, tmp_path / "out" / "ann.mp4", threshold=0.5)
    info = probe_video(out)
    assert info.num_frames == 12 and (info.width, info.height) == (128, 96)
    frames = read_frames(out)
    banner = frames[:, 2:10, 40:90]  # inside the banner, away from the ALERT text
    assert [is_red(b) for b in banner] == [bool(s >= 0.5) for s in scores]
    assert not list(out.parent.glob(".*tmp*"))


def test_annotated_video_with_fewer_scores_keeps_every_frame(tmp_path):
    src = grey_video(tmp_path / "in.mp4", n=10)
    out = create_video_with_annotations(
        src, np.full(6, 0.9), tmp_path / "ann.mp4", threshold=0.5, frame_labels=np.ones(10)
    )
    frames = read_frames(out)
    assert len(frames) == 10
    assert is_red(frames[5, 2:10, 40:90]) and not is_red(frames[6, 2:10, 40:90])
