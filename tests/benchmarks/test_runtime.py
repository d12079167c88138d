"""The runtime benchmark's options, its moving-shapes videos and its camera search on a tiny flow bundle.

The figures themselves are measured by running the benchmark; here: a real tiny bundle (ONNX Runtime), real
videos, a real broker, and the real device loop, with sizes small enough to take seconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.runtime import (
    TRIAL_QUEUES,
    bench_cameras,
    frames_per_snippet,
    parse_options,
    rows,
    table,
    trial_seconds,
)
from benchmarks.runtime_models import CAMERA_FRAME, DARK, FPS, flat_frames, moving_frames
from edge_runtime.broker import LocalBroker
from edge_runtime.bundle import load_bundle
from edge_runtime.capture_queue import default_queue
from edge_runtime.models import load_models
from edge_runtime.preprocess import FramePreprocessor, PreprocessConfig
from tests.edge_runtime.runtime_helpers import S, make_bundle

RATE = 15.0
FLOW = PreprocessConfig.square(
    16, modality="flow", frame_rate=RATE
)  # the surveillance recipe's kind of input


@pytest.fixture(scope="module")
def flow_bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bench_flow_bundle"), preprocess=FLOW)


def _mean_flow(frames) -> float:
    """Mean encoded flow in [0, 1] at the surveillance recipe's scale (72 px short side, 64 px crop)."""
    pre = FramePreprocessor(PreprocessConfig(crop_size=(64, 64), resize_short_side=72, modality="flow"))
    return float(np.mean([np.abs(pre(f)).mean() for f in frames][1:]))  # the first frame has zero flow


def test_moving_frames_are_camera_sized_and_give_flow_where_flat_frames_give_almost_none():
    moving = list(moving_frames(12))
    assert all(f.shape == (*CAMERA_FRAME, 3) and f.dtype == np.uint8 for f in moving)
    at_15_fps = moving[::2]
    assert (
        _mean_flow(at_15_fps) > 0.02
    )  # the moving patches cover much of the crop (measured 0.044: 0.7 px a frame on average, 16 px = 1)
    assert _mean_flow(flat_frames(DARK, 6)) < _mean_flow(at_15_fps) / 4


def test_bundle_option_loads_the_bundle_and_quick_caps_the_cameras(flow_bundle):
    opts = parse_options(["--bundle", str(flow_bundle), "--quick"])
    assert opts.bundle.preprocess.modality == "flow" and opts.bundle.window.snippet_length == S
    assert opts.max_cameras == 3
    assert parse_options(["--bundle", str(flow_bundle), "--quick", "--max-cameras", "12"]).max_cameras == 12
    assert parse_options([]).bundle is None and parse_options([]).max_cameras == 10


@pytest.mark.parametrize(
    ("argv", "named"),
    [(["--bundle", "no/such/folder"], "--bundle"), (["--max-cameras", "0"], "--max-cameras"),
     (["--max-cameras", "many"], "--max-cameras")],
)  # fmt: skip
def test_bad_options_are_one_line_naming_the_option(argv, named, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_options(argv)
    assert exc.value.code == 2
    error = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(error) == 1 and named in error[0]


def test_a_folder_that_is_no_bundle_is_refused_by_name(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse_options(["--bundle", str(tmp_path)])
    err = capsys.readouterr().err
    assert "--bundle" in err and "manifest.json" in err and "Traceback" not in err


def test_a_snippet_spans_s_frames_at_the_contracts_rate(flow_bundle, tmp_path):
    assert frames_per_snippet(load_bundle(flow_bundle)) == S * FPS / RATE  # 15 fps on 30 fps video: 2x
    assert frames_per_snippet(load_bundle(make_bundle(tmp_path))) == 4  # rate 0: every frame, S = 4


def test_camera_search_on_a_flow_bundle_reports_drops_cpu_and_loop_shares(flow_bundle, tmp_path):
    bundle = load_bundle(flow_bundle)
    models = load_models(bundle)
    try:
        with LocalBroker() as broker:
            ctx = {"bundle": bundle, "models": models, "broker": broker, "work": tmp_path, "scene": "moving"}
            result = bench_cameras(ctx, seconds=1.0, max_cameras=2, queues=0)
    finally:
        models.close()
    # a 1 s video never fills a capture queue of 32 frames: no drops, the search reaches its cap
    assert [(t["cameras"], t["dropped"]) for t in result["trials"]] == [(1, 0), (2, 0)]
    assert result["sustained"] == 2 and result["best"] is result["trials"][-1]
    assert 0 < result["cpu_share_one"] <= 1
    for trial in result["trials"]:
        loop = trial["loop"]
        assert set(loop) == {"preprocess", "backbone", "head", "idle"}
        assert all(share > 0 for share in loop.values()) and sum(loop.values()) < 1
        assert loop["idle"] > loop["backbone"]  # a tiny model on 30 fps cameras mostly waits for frames
    assert (tmp_path / "live-moving-1.mp4").is_file()


def test_a_camera_trial_lasts_ten_times_a_cameras_queue(flow_bundle, tmp_path):
    bundle = load_bundle(flow_bundle)
    queue_s = default_queue(bundle) / bundle.preprocess.frame_rate
    assert trial_seconds(bundle, 1.0) == pytest.approx(TRIAL_QUEUES * queue_s) and TRIAL_QUEUES == 10
    assert trial_seconds(bundle, 1000.0) == 1000.0  # never shorter than asked
    assert trial_seconds(bundle, 1.0, queues=0) == 1.0  # --quick


def _results(sustained: int, cap: int, cpu_one: float) -> dict:
    loop = {"preprocess": 0.2, "backbone": 0.3, "head": 0.1, "idle": 0.3}
    best = {"cpu_share": 0.5, "loop": loop} if sustained else {}
    trials = [{"cameras": n, "dropped": 0} for n in range(1, sustained + 1)]
    if sustained < cap:
        trials.append({"cameras": sustained + 1, "dropped": 7})
    return {
        "a": {"e2e_fps": 100.0, "limit_fps": 400.0, "ratio": 0.25, "loop": loop},
        "b": {"sustained": sustained, "cap": cap, "cpu_share_one": cpu_one, "best": best, "trials": trials},
        "e": {"snippets": 10, "k": 3, "streaming": 10, "rescoring": 27, "saving": 2.7},
    }


def test_a_missed_camera_goal_is_a_no_and_a_cap_below_the_goal_is_not_checked():
    missed = {r[0]: r[3] for r in rows(_results(5, 10, 0.05), 2, real=True)}
    assert missed["(b) 30 fps cameras without drops"] is False
    assert missed["(c) CPU share of one live 30 fps camera"] is True
    assert missed["(a) end-to-end fps / backbone-only fps"] is None  # an exported bundle: no goal for (a)
    capped = {r[0]: r for r in rows(_results(3, 3, 0.05), 2, real=True)}
    assert capped["(b) 30 fps cameras without drops"][3] is None
    assert "not checked: cap 3" in capped["(b) 30 fps cameras without drops"][2]


def test_the_table_shows_each_figure_next_to_its_goal_and_the_loop_shares():
    text = table(rows(_results(9, 10, 0.2), 2, real=True))
    lines = {line.split("  ")[0]: line for line in text.splitlines()}
    assert lines["(b) 30 fps cameras without drops"].rstrip().endswith("yes")
    assert ">= 8" in lines["(b) 30 fps cameras without drops"]
    assert lines["(c) CPU share of one live 30 fps camera"].rstrip().endswith("NO")
    shares = lines["(f) loop time, 9 live camera(s)"]
    assert "preprocess 20.0%" in shares and "backbone 30.0%" in shares and "idle 30.0%" in shares
    assert "other 10.0%" in shares
