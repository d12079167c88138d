"""``--save-clips``: a clip is fetched from the device's endpoint over real HTTP and kept only when its
SHA-256 is the event's; profile ``[clips]`` keys are checked where they are read."""

from __future__ import annotations

import hashlib
import time

import pytest

from alert_consumer.clip_fetcher import ClipFetcher
from devices.profiles import ProfileError, parse_profile
from edge_runtime.clip_server import ClipServer
from edge_runtime.schema import CLIP_SCHEMA, validate_event
from tests.alert_consumer.helpers import make_event

TOKEN = "fetcher-token-0123456789"
BODY = b"\0\0\0\x18ftypmp42" + bytes(range(256)) * 8


def _end(sha256: str, size: int = len(BODY)) -> dict:
    clip = {"schema": CLIP_SCHEMA, "exists": True, "file": "ev-1.mp4", "codec": "h264", "started_at": 1.0,
            "duration_s": 2.0, "frames": 50, "width": 64, "height": 48, "size_bytes": size, "sha256": sha256}  # fmt: skip
    return validate_event({**make_event("end", event_id="ev-1", seq=2), "clip": clip})


def _fetch(tmp_path, event, token=TOKEN):
    folder = tmp_path / "device"
    folder.mkdir(exist_ok=True)
    (folder / "ev-1.mp4").write_bytes(BODY)
    with ClipServer(folder, "127.0.0.1", 0, TOKEN) as server:
        fetcher = ClipFetcher(tmp_path / "saved", f"http://127.0.0.1:{server.port}", token, retry_s=0.01)
        fetcher.on_event(event)
        fetcher.close(timeout=30)
    return fetcher


def test_a_clip_whose_hash_matches_is_saved_under_its_device(tmp_path):
    event = _end(hashlib.sha256(BODY).hexdigest())
    fetcher = _fetch(tmp_path, event)
    saved = tmp_path / "saved" / event["device_id"] / "ev-1.mp4"
    assert fetcher.saved == [saved] and saved.read_bytes() == BODY


def test_a_hash_mismatch_is_refused_and_nothing_is_kept(tmp_path, caplog):
    fetcher = _fetch(tmp_path, _end("0" * 64))
    assert fetcher.saved == [] and fetcher.failed == ["ev-1"]
    assert [p for p in (tmp_path / "saved").rglob("*") if p.is_file()] == []
    assert any("SHA-256" in r.getMessage() for r in caplog.records)


def test_more_bytes_than_announced_are_refused(tmp_path):
    fetcher = _fetch(tmp_path, _end(hashlib.sha256(BODY).hexdigest(), size=100))
    assert fetcher.saved == [] and [p for p in (tmp_path / "saved").rglob("*") if p.is_file()] == []


def test_a_wrong_token_fetches_nothing(tmp_path):
    start = time.monotonic()
    fetcher = _fetch(tmp_path, _end(hashlib.sha256(BODY).hexdigest()), token="not-the-token-0123456789")
    assert fetcher.saved == [] and fetcher.failed == ["ev-1"]
    assert time.monotonic() - start < 20  # a 401 is not retried


_PROFILE = '[device]\nname = "t"\n[model]\nbackend = "onnxruntime"\ntarget = "onnx"\n'


def test_profile_clips_section_is_read_with_its_defaults():
    clips = parse_profile(
        _PROFILE + '[clips]\nhttp_bind = "127.0.0.1:8765"\n', name="t", where="t.toml"
    ).clips
    assert (clips.pre_s, clips.post_s, clips.codec, clips.http_bind) == (3.0, 2.0, "h264", "127.0.0.1:8765")
    assert parse_profile(_PROFILE, name="t", where="t.toml").clips is None


@pytest.mark.parametrize(
    "line, needle",
    [('http_bind = "8765"', "http_bind"), ("pre_s = 99", "pre_s"), ('codec = "mpeg4"', "codec"),
     ('folder = "rel/clips"', "folder"), ("token = 'x'", "unknown key")],
)  # fmt: skip
def test_profile_clips_keys_are_refused_by_name(line, needle):
    with pytest.raises(ProfileError, match=needle):
        parse_profile(_PROFILE + f"[clips]\n{line}\n", name="t", where="t.toml")
