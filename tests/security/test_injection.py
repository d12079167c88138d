"""Topic wildcards and path traversal are refused wherever an id or a name comes from outside."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alert_consumer.actions import SnapshotSaver, snapshot_path
from alert_consumer.consumer import AlertConsumer
from edge_runtime.bundle import BundleError, load_bundle, parse_manifest
from edge_runtime.schema import SchemaError, validate_id
from edge_runtime.source_specs import parse_source_spec
from edge_runtime.sources import SourceSpecError
from tests.edge_runtime.test_bundle import _manifest

from .fuzzing import FUZZ

BAD_IDS = ["#", "+", "a/b", "dev/#", "dev+", "..", ".", "../x", "a/../b", "", " a", "a b", "a\x00", "a\n",
           "-a", ".hidden", "x" * 65, "ca\u0301mera", "$SYS", "a\\b"]  # fmt: skip


@pytest.mark.parametrize("value", BAD_IDS)
def test_validate_id_refuses_wildcards_separators_and_traversal(value):
    with pytest.raises(SchemaError, match="not allowed"):
        validate_id(value, "device_id")


def test_every_accepted_id_is_a_safe_topic_level_and_file_name():
    count = {"examples": 0, "accepted": 0}

    @FUZZ
    @given(st.text(max_size=70) | st.sampled_from(BAD_IDS))
    def check(value):
        count["examples"] += 1
        try:
            validate_id(value)
        except SchemaError:
            return
        count["accepted"] += 1
        assert not set(value) & set("#+/\\$\x00") and value not in (".", "..")
        assert value.isascii() and value.isprintable() and " " not in value
        assert Path(value).name == value and os.path.normpath(value) == value

    check()
    print(f"\n[fuzz validate_id] examples={count['examples']} accepted={count['accepted']}")
    assert count["examples"] >= 1000


@pytest.mark.parametrize("spec", ["a#=0", "a+b=0", "..=0", ".=0", "a b=0", "-x=0", "x" * 65 + "=0"])
def test_source_names_with_wildcards_or_traversal_are_refused(spec):
    with pytest.raises(SourceSpecError, match="camera name"):
        parse_source_spec(spec)


def test_source_spec_with_a_path_before_the_equals_sign_is_not_a_name(tmp_path):
    with pytest.raises(SourceSpecError, match="not a camera index"):
        parse_source_spec("../x=0")


@pytest.mark.parametrize(
    "field,value",
    [("event_id", "../../etc/cron.d/x"), ("event_id", "a/b"), ("camera", ".."), ("device_id", "#")],
)
def test_snapshot_path_never_leaves_the_snapshot_folder(tmp_path, field, value):
    event = {"device_id": "dev1", "camera": "cam1", "event_id": "e1", field: value}
    with pytest.raises(SchemaError):
        snapshot_path(tmp_path / "snaps", event)


def test_alerts_consumer_saves_no_snapshot_for_a_traversing_event_id(tmp_path):
    snaps = tmp_path / "deep" / "snaps"
    consumer = AlertConsumer("i3dmtn", [SnapshotSaver(snaps)])
    event = {
        "schema": "i3dmtn.event/1", "event_id": "../../../escaped", "seq": 0, "type": "start",
        "device_id": "dev1", "camera": "cam1", "timestamp": 1.0, "started_at": 1.0, "ended_at": None,
        "score": 0.9, "peak_score": 0.9, "threshold": 0.5, "model": {},
    }  # fmt: skip
    consumer.handle("i3dmtn/dev1/snapshot/cam1", b"\xff\xd8\xff\xe0jpeg")
    consumer.handle("i3dmtn/dev1/events", json.dumps(event).encode())
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == []


@pytest.mark.parametrize("bad", ["../x.onnx", "/etc/passwd", "a/../../x.onnx", "..", "sub/../../x"])
def test_bundle_file_paths_outside_the_folder_are_refused(tmp_path, bad):
    root = tmp_path / "bundle"
    root.mkdir()
    manifest = _manifest(root)
    manifest["files"][1]["path"] = bad
    with pytest.raises(BundleError) as info:
        parse_manifest(manifest, root)
    assert "\n" not in str(info.value)


def test_bundle_model_file_that_links_outside_is_refused(tmp_path):
    root = tmp_path / "bundle"
    root.mkdir()
    manifest = _manifest(root)
    outside = tmp_path / "outside.onnx"
    target = root / manifest["files"][1]["path"]
    outside.write_bytes(target.read_bytes())
    target.unlink()
    target.symlink_to(outside)
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="outside the bundle folder"):
        load_bundle(root)


def test_bundle_writer_refuses_extras_outside_the_folder(tmp_path):
    from export.bundle import write_bundle
    from tests.export.test_bundle_writer import make_sources

    manifest, specs, _ = make_sources(tmp_path / "src")
    manifest.pop("report")
    with pytest.raises(BundleError):
        write_bundle(
            tmp_path / "b", manifest=manifest, files=specs, extras={"../escape.json": specs[0].source}
        )
    assert not (tmp_path / "escape.json").exists() and not (tmp_path / "b").exists()
