"""How many frames a camera's capture queue holds: by default 1.5 snippets of frames at the contract's rate."""

from __future__ import annotations

import dataclasses

import pytest

from edge_runtime.bundle import load_bundle
from edge_runtime.bundle_manifest import Window
from edge_runtime.capture_queue import default_queue, queue_seconds
from edge_runtime.cli_options import MAX_QUEUE
from edge_runtime.events import EventPolicy
from edge_runtime.models import load_models
from edge_runtime.mqtt import MqttPublisher
from edge_runtime.mqtt_settings import MqttSettings
from edge_runtime.outbox import Outbox
from edge_runtime.preprocess import PreprocessConfig
from edge_runtime.runtime import Runtime, RuntimeConfig
from edge_runtime.sources import FileSource
from tests.edge_runtime.runtime_helpers import DARK, make_bundle, make_video


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return load_bundle(make_bundle(tmp_path_factory.mktemp("queue_bundle")))


def _with(bundle, snippet_length: int, stride: int, rate: float):
    window = Window(snippet_length, 1, stride, 30.0)
    return dataclasses.replace(bundle, window=window, preprocess=PreprocessConfig.square(8, frame_rate=rate))


@pytest.mark.parametrize(
    ("snippet_length", "stride", "rate", "frames", "seconds"),
    [
        (32, 1, 15.0, 48, 3.2),  # the kinetics recipe: 2.13 s snippets -> 1.5 x 32 frames at 15 fps
        (16, 1, 15.0, 32, 32 / 15),  # 24 frames: the least queue, 32
        (8, 1, 0.0, 32, 32 / 30),  # a bundle without a frame rate: a 30 fps camera's own frames
        (128, 32, 0.0, MAX_QUEUE, 10.0),  # never more than the option allows
    ],
)
def test_default_queue_holds_one_and_a_half_snippets_at_the_contracts_rate(
    bundle, snippet_length, stride, rate, frames, seconds
):
    with_window = _with(bundle, snippet_length, stride, rate)
    assert default_queue(with_window) == frames
    assert queue_seconds(with_window, frames) == pytest.approx(seconds)


def test_runtime_gives_each_camera_the_bundles_queue_unless_told(bundle, tmp_path):
    video = make_video(tmp_path / "calm.mp4", [(1, DARK)])
    slow = _with(bundle, bundle.window.snippet_length, 1, 1.0)
    models = load_models(bundle, precision="fp32", backend="onnxruntime")
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        publisher = MqttPublisher(MqttSettings(port=1), "dev", outbox)
        for config, expected in (
            (RuntimeConfig("dev", EventPolicy(0.5)), default_queue(slow)),
            (RuntimeConfig("dev", EventPolicy(0.5), max_queue=7), 7),
        ):
            runtime = Runtime(slow, models, [("cam", FileSource(video))], publisher, config)
            assert runtime.cameras["cam"].capture.max_queue == expected
    assert default_queue(slow) == 32  # 1.5 snippets of 4 frames, raised to the least queue


def test_the_runtime_takes_a_cameras_frames_at_the_contracts_rate_and_skips_the_others(bundle, tmp_path):
    video = make_video(tmp_path / "calm.mp4", [(2, DARK)], fps=30.0)  # 60 frames
    half = _with(bundle, bundle.window.snippet_length, 1, 15.0)
    models = load_models(half, precision="fp32", backend="onnxruntime")
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        publisher = MqttPublisher(MqttSettings(port=1), "dev", outbox)
        runtime = Runtime(
            half, models, [("cam", FileSource(video))], publisher, RuntimeConfig("dev", EventPolicy(0.5))
        )
        runtime.run()
    capture = runtime.cameras["cam"].capture.stats
    assert (capture.frames_read, capture.frames_skipped, runtime.stats.frames["cam"]) == (60, 30, 30)
    assert runtime.stats.snippets["cam"] == 30 // half.window.snippet_length  # whole snippets at 15 fps
