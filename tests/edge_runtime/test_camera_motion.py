import cv2
import numpy as np
import pytest

from edge_runtime.camera_motion import camera_shift, camera_similarity, without_camera_motion


@pytest.fixture
def dis():
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)


def _scene(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (96, 128), dtype=np.uint8), (5, 5), 0)


def _panned(grey: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``grey`` as a camera panning by ``(-dx, -dy)`` films it: the scene moves by ``(dx, dy)`` px."""
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(grey, shift, grey.shape[::-1], borderMode=cv2.BORDER_REFLECT)


def test_camera_shift_is_the_median_vector():
    flow = np.zeros((10, 10, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.0, -1.0
    flow[:3, :3] = 9.0  # a person: under half of the frame
    assert camera_shift(flow).tolist() == [2.0, -1.0]


def test_camera_similarity_fits_the_camera_and_not_the_people():
    ys, xs = np.mgrid[0:48, 0:64].astype(np.float32)
    truth = cv2.getRotationMatrix2D((20.0, 30.0), 1.5, 1.04)  # a turn of 1.5 degrees and a 4 % zoom
    truth[:, 2] += (1.5, -0.5)  # and a pan
    moved_to = np.stack([xs, ys, np.ones_like(xs)], axis=-1) @ truth.T
    flow = (moved_to - np.stack([xs, ys], axis=-1)).astype(np.float32)
    flow[5:30, 10:40] += (6.0, -4.0)  # people: a quarter of the frame moves on its own
    assert np.allclose(camera_similarity(flow), truth, atol=1e-3)


def _zoomed(grey: np.ndarray, zoom: float, turn: float) -> np.ndarray:
    h, w = grey.shape
    turned = cv2.getRotationMatrix2D((w / 2, h / 2), turn, zoom)
    return cv2.warpAffine(grey, turned, (w, h), borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize(("zoom", "turn"), [(1.03, 0.0), (1.0, 2.0)])
def test_align_takes_out_a_zoom_or_a_turn_that_the_median_leaves(dis, zoom, turn):
    before = _scene()
    after = _zoomed(before, zoom, turn)
    flow = dis.calc(before, after, None)
    inner = (slice(10, -10), slice(10, -10))

    def residue(mode: str) -> float:
        return float(np.abs(without_camera_motion(mode, dis, before, after, flow.copy())[inner]).mean())

    assert residue("median") > 0.5  # a zoom or a turn moves every pixel differently: no single vector
    assert residue("align") < residue("median") / 3


@pytest.mark.parametrize("pan", [1.3, 2.6, 4.2])
def test_align_leaves_less_of_a_pan_on_a_still_scene_than_the_median(dis, pan):
    before = _scene()
    after = _panned(before, pan, 0.7 * pan)  # a sub-pixel pan: DIS follows it only roughly
    flow = dis.calc(before, after, None)
    inner = (slice(8, -8), slice(8, -8))  # the frame's edges are the reflected border's

    def residue(mode: str) -> float:
        return float(np.abs(without_camera_motion(mode, dis, before, after, flow.copy())[inner]).mean())

    assert residue("keep") > 0.7 * pan  # the whole frame moves: (pan, 0.7 pan) px
    assert residue("align") < residue("median") / 2
    assert residue("align") < 0.06


def test_align_keeps_what_moves_in_the_scene(dis):
    before = _scene()
    after = _panned(before, 2.0, 0.0)
    person = _panned(_scene(1), 0.0, 3.0)  # a patch of another texture, 3 px down, while the camera pans
    after[30:66, 40:88] = person[30:66, 40:88]
    before[30:66, 40:88] = _scene(1)[30:66, 40:88]
    flow = without_camera_motion("align", dis, before, after, dis.calc(before, after, None))
    assert np.median(flow[40:56, 52:76, 1]) > 1.5  # the patch still moves down (by 3 px)
    assert abs(np.median(flow[:, :, 0])) < 0.05 and np.abs(flow[:20, :, 0]).mean() < 0.2  # the pan is gone


def test_keep_returns_the_flow_itself(dis):
    flow = np.ones((4, 4, 2), np.float32)
    assert without_camera_motion("keep", dis, None, None, flow) is flow
