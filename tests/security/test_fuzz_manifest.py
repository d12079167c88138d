"""Fuzzing the bundle manifest: any mutation of a valid manifest loads or is refused with one BundleError line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_runtime.bundle import Bundle, BundleError, load_bundle, parse_manifest
from tests.edge_runtime.test_bundle import _manifest

from .fuzzing import FUZZ, assert_one_line, deeply_nested, mutate


@pytest.fixture
def valid(tmp_path: Path) -> tuple[Path, dict]:
    root = tmp_path / "bundle"
    root.mkdir()
    return root, _manifest(root)


def test_mutated_manifests_parse_or_raise_one_bundle_error_line(valid):
    root, manifest = valid
    counts = {"examples": 0, "refused": 0}

    @FUZZ
    @given(st.data())
    def check(data):
        counts["examples"] += 1
        doc = mutate(data, manifest)
        try:
            assert isinstance(parse_manifest(doc, root), Bundle)
        except BundleError as exc:
            counts["refused"] += 1
            assert_one_line(exc)

    check()
    print(f"\n[fuzz manifest parse_manifest] examples={counts['examples']} refused={counts['refused']}")
    assert counts["examples"] >= 1000 and counts["refused"] > 0


def test_mutated_manifest_files_load_or_raise_one_bundle_error_line(valid):
    root, manifest = valid
    counts = {"examples": 0, "refused": 0}

    @FUZZ
    @given(st.data())
    def check(data):
        counts["examples"] += 1
        (root / "manifest.json").write_text(json.dumps(mutate(data, manifest)))
        try:
            load_bundle(root)
        except BundleError as exc:
            counts["refused"] += 1
            assert_one_line(exc)

    check()
    print(f"\n[fuzz manifest load_bundle] examples={counts['examples']} refused={counts['refused']}")
    assert counts["examples"] >= 1000 and counts["refused"] > 0


def test_random_bytes_as_manifest_are_refused_with_one_line(valid):
    root, _ = valid
    counts = {"examples": 0}

    @FUZZ
    @given(st.binary(max_size=512) | st.text(max_size=200).map(str.encode))
    def check(raw):
        counts["examples"] += 1
        (root / "manifest.json").write_bytes(raw)
        with pytest.raises(BundleError) as info:
            load_bundle(root)
        assert_one_line(info.value, "manifest.json")

    check()
    print(f"\n[fuzz manifest bytes] examples={counts['examples']}")
    assert counts["examples"] >= 1000


def test_deeply_nested_manifest_is_refused_with_one_line(valid):
    root, _ = valid
    (root / "manifest.json").write_bytes(deeply_nested())
    with pytest.raises(BundleError) as info:
        load_bundle(root)
    assert_one_line(info.value, "manifest.json")
