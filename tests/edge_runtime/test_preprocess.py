import cv2
import numpy as np
import pytest

from edge_runtime.preprocess import (
    CONTRACT,
    CONTRACT_V1,
    CONTRACT_V2,
    CONTRACT_V3,
    FramePreprocessor,
    PreprocessConfig,
    PreprocessError,
    model_size,
    preprocess_clip,
    preprocess_frame,
    resize_frame,
    stack_snippet,
)


def test_known_pixel_lands_at_known_place_with_known_value():
    # 6x8 BGR frame, no resize (short side 6 == crop 6), centre crop of width 6 drops one column each side.
    frame = np.zeros((6, 8, 3), np.uint8)
    frame[2, 3] = (255, 0, 51)  # B=255, G=0, R=51 at row 2, column 3
    out = preprocess_frame(frame, PreprocessConfig(crop_size=(6, 6), resize_short_side=6))
    assert out.shape == (3, 6, 6) and out.dtype == np.float32
    # column 3 -> 2 after dropping one column; RGB order: R first.
    assert out[0, 2, 2] == pytest.approx(51 / 127.5 - 1)  # R
    assert out[1, 2, 2] == pytest.approx(-1.0)  # G
    assert out[2, 2, 2] == pytest.approx(1.0)  # B
    assert out[:, 0, 0] == pytest.approx([-1, -1, -1])


def test_bgr_order_keeps_channels():
    frame = np.zeros((4, 4, 3), np.uint8)
    frame[..., 0] = 255
    out = preprocess_frame(
        frame, PreprocessConfig(crop_size=(4, 4), resize_short_side=4, channel_order="BGR")
    )
    assert np.all(out[0] == 1.0) and np.all(out[2] == -1.0)


def test_resize_short_side_then_centre_crop():
    # 20x40 frame: left half black, right half white; short side 10 -> 10x20, crop 10x10 is the middle.
    frame = np.zeros((20, 40, 3), np.uint8)
    frame[:, 20:] = 255
    out = preprocess_frame(frame, PreprocessConfig(crop_size=(10, 10), resize_short_side=10))
    assert out.shape == (3, 10, 10)
    assert np.all(out[:, :, :5] == -1.0) and np.all(out[:, :, 5:] == 1.0)


def test_range_is_minus_one_to_one():
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, (3, 30, 50, 3), dtype=np.uint8)
    out = preprocess_clip(clip, PreprocessConfig.square(16))
    assert out.shape == (3, 3, 16, 16) and out.dtype == np.float32
    assert out.min() >= -1.0 and out.max() <= 1.0


def test_clip_equals_stacked_frames():
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(4)]
    cfg = PreprocessConfig.square(12)
    np.testing.assert_array_equal(
        preprocess_clip(frames, cfg), stack_snippet([preprocess_frame(f, cfg) for f in frames])
    )


def test_dict_round_trip():
    cfg = PreprocessConfig(crop_size=(32, 48), resize_short_side=40, channel_order="BGR")
    d = cfg.to_dict()
    # every frame, RGB: written as version 1, which runtimes older than the frame rate still read
    assert d["contract"] == CONTRACT_V1 and d["crop_size"] == [32, 48]
    assert "frame_rate" not in d and "modality" not in d
    assert PreprocessConfig.from_dict(d) == cfg


def test_dict_round_trip_version_2():
    cfg = PreprocessConfig.square(32, frame_rate=15, modality="flow")
    d = cfg.to_dict()
    assert d["contract"] == CONTRACT_V2 and d["frame_rate"] == 15.0 and d["modality"] == "flow"
    assert "flow_short_side" not in d  # runtimes that predate version 3 still read it
    assert PreprocessConfig.from_dict(d) == cfg and cfg.channels == 2


def test_dict_round_trip_version_3():
    cfg = PreprocessConfig.square(32, frame_rate=15, modality="flow", flow_short_side=48)
    d = cfg.to_dict()
    assert d["contract"] == CONTRACT_V3 and d["flow_short_side"] == 48
    assert "flow_camera_motion" not in d  # runtimes that predate version 4 still read it
    assert PreprocessConfig.from_dict(d) == cfg
    with pytest.raises(PreprocessError, match="unknown preprocessing parameter"):
        PreprocessConfig.from_dict(
            {**PreprocessConfig.square(32, modality="flow").to_dict(), "flow_short_side": 48}
        )
    with pytest.raises(PreprocessError, match="has no flow_short_side"):
        PreprocessConfig.square(32, modality="flow", flow_short_side=48, contract=CONTRACT_V2)


def test_dict_round_trip_version_4():
    for mode in ("median", "align"):
        cfg = PreprocessConfig.square(32, modality="flow", flow_camera_motion=mode)
        d = cfg.to_dict()
        assert d["contract"] == CONTRACT and d["flow_camera_motion"] == mode
        assert PreprocessConfig.from_dict(d) == cfg
    old = PreprocessConfig.square(32, modality="flow", flow_short_side=48).to_dict()
    assert PreprocessConfig.from_dict(old).flow_camera_motion == "keep"  # a version 3 bundle keeps its flow
    with pytest.raises(PreprocessError, match="unknown preprocessing parameter"):
        PreprocessConfig.from_dict({**old, "flow_camera_motion": "median"})
    with pytest.raises(PreprocessError, match="has no flow_camera_motion"):
        PreprocessConfig.square(32, modality="flow", flow_camera_motion="median", contract=CONTRACT_V3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"flow_camera_motion": "median"}, "flow_camera_motion is for the flow modality"),
        ({"modality": "flow", "flow_camera_motion": "affine"}, "flow_camera_motion must be one of"),
        ({"flow_short_side": 48}, "for the flow modality"),
        ({"modality": "flow", "flow_short_side": 24}, "0 or >= resize_short_side"),
        ({"modality": "flow", "flow_short_side": -1}, ">= 0"),
        ({"modality": "flow", "flow_short_side": 48.0}, "whole number"),
    ],
)
def test_bad_flow_short_side_is_refused_by_name(kwargs, message):
    with pytest.raises(PreprocessError, match=message):
        PreprocessConfig.square(32, **kwargs)


def test_flow_computed_larger_is_resized_to_the_model_size_in_its_pixels():
    cfg = PreprocessConfig(crop_size=(32, 32), resize_short_side=36, modality="flow", flow_short_side=72)
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (144, 192), dtype=np.uint8), (7, 7), 0)
    frame = np.repeat(texture[:, :, None], 3, axis=2)
    working = resize_frame(frame, cfg)
    assert working.shape[:2] == (72, 96) and model_size(72, 96, cfg) == (36, 48)
    pre = FramePreprocessor(cfg)
    pre(frame)
    moved = pre(np.roll(frame, 8, axis=1))  # 8 px of the source: 4 of the working frame, 2 of the model size
    assert moved.shape == (2, 32, 32)
    assert moved[0].mean() == pytest.approx(2 / 16, rel=0.25) and abs(moved[1].mean()) < 0.02
    # the crop window lies in the model-size frame, as without flow_short_side
    assert np.array_equal(pre.from_resized(working, (0, 0, False)).shape, (2, 32, 32))


@pytest.mark.parametrize("mode", ["median", "align"])
def test_camera_motion_taken_out_keeps_a_moving_person(mode):
    cfg = PreprocessConfig.square(32, modality="flow", flow_camera_motion=mode)
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (48, 64), dtype=np.uint8), (5, 5), 0)
    frame = np.repeat(texture[:, :, None], 3, axis=2)
    kept, taken_out = FramePreprocessor(PreprocessConfig.square(32, modality="flow")), FramePreprocessor(cfg)
    for pre in (kept, taken_out):
        pre(frame)
    panned = np.roll(frame, 2, axis=1)  # the whole frame 2 px to the right: the camera moved
    assert kept(panned)[0].mean() == pytest.approx(1.33 / 16, rel=0.3)
    assert np.abs(taken_out(panned)).mean() < 0.01  # the camera's motion is gone
    person = panned.copy()  # a patch (a quarter of the frame) moves on while the camera holds still
    person[12:36, 16:40] = np.roll(panned, 3, axis=0)[12:36, 16:40]
    moved = taken_out(person)[1]  # y: the patch moved down, the rest of the frame stayed
    assert moved[6:18, 8:20].mean() > 0.05 and abs(np.median(moved)) < 0.01


def test_version_1_manifest_refuses_version_2_keys():
    d = PreprocessConfig.square(32).to_dict()
    with pytest.raises(PreprocessError, match="unknown preprocessing parameter"):
        PreprocessConfig.from_dict({**d, "frame_rate": 15.0})
    with pytest.raises(PreprocessError, match="has no frame_rate"):
        PreprocessConfig(crop_size=(8, 8), resize_short_side=8, frame_rate=15, contract=CONTRACT_V1)


def test_flow_is_zero_without_motion_and_signed_with_it():
    cfg = PreprocessConfig.square(32, modality="flow")
    pre = FramePreprocessor(cfg)
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (48, 64), dtype=np.uint8), (5, 5), 0)
    frame = np.repeat(texture[:, :, None], 3, axis=2)
    first = pre(frame)
    assert first.shape == (2, 32, 32) and not first.any()  # no predecessor: zero flow
    assert np.abs(pre(frame)).max() < 0.02  # still: (almost) no flow
    moved = pre(np.roll(frame, 2, axis=1))  # 2 px to the right (x grows): 1.33 px of the resized frame
    assert moved[0].mean() == pytest.approx(1.33 / 16, rel=0.3) and abs(moved[1].mean()) < 0.02
    mirrored = FramePreprocessor(cfg)
    mirrored.from_resized(resize_frame(frame, cfg), (8, 16, True))
    out = mirrored.from_resized(resize_frame(np.roll(frame, 2, axis=1), cfg), (8, 16, True))
    assert out[0].mean() == pytest.approx(-1.33 / 16, rel=0.3)  # mirrored, the motion goes left


def test_flow_needs_a_frame_dis_can_use():
    with pytest.raises(PreprocessError, match="flow needs resize_short_side"):
        PreprocessConfig.square(8, modality="flow")


def test_preprocess_frame_refuses_flow():
    with pytest.raises(PreprocessError, match="FramePreprocessor"):
        preprocess_frame(np.zeros((32, 32, 3), np.uint8), PreprocessConfig.square(16, modality="flow"))


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"crop_size": (0, 10)}, "crop_size"),
        ({"crop_size": (-4, -4), "resize_short_side": 1}, "crop_size"),
        ({"crop_size": (10, 10), "resize_short_side": 5}, "resize_short_side"),
        ({"channel_order": "GRB"}, "channel_order"),
        ({"std": (0.5, 0.0, 0.5)}, "std"),
        ({"mean": (0.5, 0.5)}, "mean"),
        ({"interpolation": "magic"}, "interpolation"),
        ({"contract": "other/9"}, "contract"),
    ],
)
def test_nonsense_parameters_are_refused(kwargs, needle):
    with pytest.raises(PreprocessError, match=needle):
        PreprocessConfig(**kwargs)


def test_unknown_key_in_dict_is_refused():
    d = PreprocessConfig().to_dict() | {"gamma": 2.2}
    with pytest.raises(PreprocessError, match="gamma"):
        PreprocessConfig.from_dict(d)


@pytest.mark.parametrize(
    "frame, needle",
    [
        (np.zeros((8, 8, 3), np.float32), "uint8"),
        (np.zeros((8, 8), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((8, 8, 4), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((0, 8, 3), np.uint8), r"\(H, W, 3\)"),
        ([[1, 2, 3]], "numpy array"),
    ],
)
def test_bad_frames_are_refused(frame, needle):
    with pytest.raises(PreprocessError, match=needle):
        preprocess_frame(frame, PreprocessConfig.square(8))


def test_empty_snippet_is_refused():
    with pytest.raises(PreprocessError, match="empty"):
        stack_snippet([])
