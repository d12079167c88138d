"""The manifest's optional, versioned ``event_policy``: written and read back; older bundles load without it."""

from __future__ import annotations

import json

import pytest

from edge_runtime.bundle import BundleError, load_bundle
from edge_runtime.bundle_event_policy import EVENT_POLICY_SCHEMA, BundleEventPolicy
from tests.edge_runtime.runtime_helpers import make_bundle

POLICY = BundleEventPolicy(on_threshold=0.7, off_threshold=0.35, min_duration_s=0.25)


def _rewrite(bundle, change) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def _refused(bundle) -> str:
    with pytest.raises(BundleError) as info:
        load_bundle(bundle)
    message = str(info.value)
    assert "\n" not in message and "manifest.json" in message
    return message


def test_the_event_policy_round_trips_through_the_bundle_writer(tmp_path):
    bundle = make_bundle(tmp_path, event_policy=POLICY.to_dict())
    on_disk = json.loads((bundle / "manifest.json").read_text())["event_policy"]
    assert on_disk["schema"] == EVENT_POLICY_SCHEMA == "i3dmtn.event_policy/1"
    assert load_bundle(bundle).event_policy == POLICY


def test_a_manifest_without_an_event_policy_still_loads(tmp_path):
    bundle = make_bundle(tmp_path)
    assert "event_policy" not in json.loads((bundle / "manifest.json").read_text())
    loaded = load_bundle(bundle)
    assert loaded.event_policy is None and loaded.threshold == 0.5


def test_an_unknown_event_policy_version_is_refused_naming_it(tmp_path):
    bundle = make_bundle(tmp_path, event_policy=POLICY.to_dict())
    _rewrite(bundle, lambda m: m["event_policy"].update(schema="i3dmtn.event_policy/2"))
    assert "event_policy.schema 'i3dmtn.event_policy/2' is not supported" in _refused(bundle)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"off_threshold": 0.8},
            "event_policy.off_threshold (0.8) must be <= event_policy.on_threshold (0.7)",
        ),
        ({"on_threshold": 0.0}, "event_policy.on_threshold must be a number in (0.0, 1.0]"),
        ({"min_duration_s": -1}, "event_policy.min_duration_s must be a number in [0.0, 3600.0]"),
        ({"cooldown_s": 1.0}, "unknown field(s) ['cooldown_s'] in event_policy"),
    ],
)
def test_a_bad_event_policy_value_is_refused_naming_the_field(tmp_path, change, expected):
    bundle = make_bundle(tmp_path, event_policy=POLICY.to_dict())
    _rewrite(bundle, lambda m: m["event_policy"].update(change))
    assert expected in _refused(bundle)


def test_the_event_gate_of_the_accuracy_object_is_checked(tmp_path):
    bundle = make_bundle(tmp_path)
    _rewrite(bundle, lambda m: m["accuracy"].update(event_gate="skipped"))
    assert "accuracy.event_gate must be one of passed, overridden, not_checked" in _refused(bundle)
