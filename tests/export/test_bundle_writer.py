"""Bundle writer: what it writes loads with the reader; a failure or a kill never leaves a half bundle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge_runtime.bundle import BundleError, TensorSpec, load_bundle, sha256_file
from edge_runtime.preprocess import PreprocessConfig
from export.bundle import BundleFileSpec, BundleWriteError, clean_stale_temp_dirs, write_bundle

REPO = Path(__file__).resolve().parents[2]
S, K, D, CROP = 4, 8, 16, 32


def make_sources(src: Path) -> tuple[dict[str, Any], list[BundleFileSpec], dict[str, Path]]:
    """Dummy model files in ``src`` and the manifest / specs / extras describing them (an openvino bundle)."""
    src.mkdir(parents=True, exist_ok=True)
    backbone_io = {
        "inputs": [TensorSpec("snippets", ("N", 3, S, CROP, CROP))],
        "outputs": [TensorSpec("features", ("N", D))],
    }
    head_io = {
        "inputs": [{"name": "features", "shape": ["N", K, D]}],
        "outputs": [
            TensorSpec("snippet_scores", ("N", K)),
            TensorSpec("attention", ("N", K)),
            TensorSpec("video_score", ("N",)),
        ],
    }
    specs = []
    for role, io in (("backbone", backbone_io), ("head", head_io)):
        onnx = src / f"{role}.fp32.onnx"
        onnx.write_bytes(os.urandom(256))
        specs.append(BundleFileSpec(source=onnx, role=role, precision="fp32", format="onnx", **io))
        xml, weights = src / f"{role}.int8.xml", src / f"{role}.int8.bin"
        xml.write_bytes(b"<net/>" + os.urandom(16))
        weights.write_bytes(os.urandom(512))
        specs.append(
            BundleFileSpec(
                source=xml, role=role, precision="int8", format="openvino", companions=(weights,), **io
            )
        )
    report = src / "report.json"
    report.write_text(json.dumps({"fp32": {"auc": 0.9}, "int8": {"auc": 0.89}}))
    manifest = {
        "model": {"name": "i3d-mtn", "version": "0.1.0", "config": {"width": 0.25}},
        "target": "openvino",
        "precision": "int8",
        "preprocess": PreprocessConfig.square(CROP).to_dict(),
        "window": {"snippet_length": S, "num_snippets": K, "frame_stride": 1, "fps": 25.0},
        "threshold": 0.5,
        "accuracy": {"gate": "passed", "max_auc_drop": 0.01, "auc_drop": 0.01},
        "report": "report.json",
    }
    return manifest, specs, {"report.json": report}


def _hidden_leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_written_bundle_loads_with_the_reader(tmp_path):
    manifest, specs, extras = make_sources(tmp_path / "src")
    out = write_bundle(tmp_path / "bundle", manifest=manifest, files=specs, extras=extras)
    bundle = load_bundle(out)
    assert bundle.precisions == ("fp32", "int8")
    backbone = bundle.model("backbone")
    assert backbone.sha256 == sha256_file(tmp_path / "src" / "backbone.int8.xml")
    assert backbone.companions[0].sha256 == sha256_file(tmp_path / "src" / "backbone.int8.bin")
    assert bundle.model("head", "fp32").output("attention").shape == ("N", K)
    assert bundle.report.read_text() == extras["report.json"].read_text()
    assert bundle.manifest["model"]["created_at"].endswith("Z")
    assert _hidden_leftovers(tmp_path) == []


def test_manifest_is_indented_with_sorted_keys(tmp_path):
    manifest, specs, extras = make_sources(tmp_path / "src")
    out = write_bundle(tmp_path / "bundle", manifest=manifest, files=specs, extras=extras)
    text = (out / "manifest.json").read_text()
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"


def test_existing_folder_is_kept_without_overwrite(tmp_path):
    manifest, specs, extras = make_sources(tmp_path / "src")
    out = write_bundle(tmp_path / "bundle", manifest=manifest, files=specs, extras=extras)
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(BundleWriteError, match="already exists; pass overwrite=True"):
        write_bundle(out, manifest=manifest, files=specs, extras=extras)
    assert (out / "manifest.json").read_bytes() == before
    assert _hidden_leftovers(tmp_path) == []


def test_overwrite_replaces_the_bundle_and_leaves_nothing_behind(tmp_path):
    manifest, specs, extras = make_sources(tmp_path / "src")
    out = write_bundle(tmp_path / "bundle", manifest=manifest, files=specs, extras=extras)
    write_bundle(out, manifest={**manifest, "threshold": 0.7}, files=specs, extras=extras, overwrite=True)
    assert load_bundle(out).threshold == pytest.approx(0.7)
    assert _hidden_leftovers(tmp_path) == []


def test_overwrite_refuses_a_folder_that_is_not_a_bundle(tmp_path):
    manifest, specs, extras = make_sources(tmp_path / "src")
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(BundleWriteError, match="not a bundle folder"):
        write_bundle(precious, manifest=manifest, files=specs, extras=extras, overwrite=True)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_inconsistent_manifest_is_refused_before_anything_is_written(tmp_path):
    manifest, specs, extras = make_sources(tmp_path / "src")
    manifest["window"]["snippet_length"] = S + 1
    with pytest.raises(BundleError, match="input shape must be"):
        write_bundle(tmp_path / "bundle", manifest=manifest, files=specs, extras=extras)
    assert not (tmp_path / "bundle").exists()
    assert _hidden_leftovers(tmp_path) == []


def test_manifest_may_not_set_files_or_schema(tmp_path):
    manifest, specs, extras = make_sources(tmp_path / "src")
    with pytest.raises(BundleWriteError, match=r"must not hold \['files'\]"):
        write_bundle(tmp_path / "bundle", manifest={**manifest, "files": []}, files=specs, extras=extras)


def test_report_named_in_the_manifest_must_be_an_extra(tmp_path):
    manifest, specs, _ = make_sources(tmp_path / "src")
    with pytest.raises(BundleWriteError, match="report 'report.json' must be one of the extras"):
        write_bundle(tmp_path / "bundle", manifest=manifest, files=specs)


def test_interrupted_overwrite_keeps_the_old_bundle(tmp_path):
    manifest, specs, extras = make_sources(tmp_path / "src")
    out = write_bundle(tmp_path / "bundle", manifest=manifest, files=specs, extras=extras)

    def interrupt(name: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_bundle(
            out,
            manifest={**manifest, "threshold": 0.9},
            files=specs,
            extras=extras,
            overwrite=True,
            on_file=interrupt,
        )
    assert load_bundle(out).threshold == pytest.approx(0.5)
    assert _hidden_leftovers(tmp_path) == []


_KILLED_WRITER = """
import sys, time
from pathlib import Path
from tests.export.test_bundle_writer import make_sources
from export.bundle import write_bundle

def stall(name):
    print("copied", name, flush=True)
    time.sleep(600)  # the test kills us here, mid-write

manifest, specs, extras = make_sources(Path(sys.argv[1]))
write_bundle(Path(sys.argv[2]), manifest=manifest, files=specs, extras=extras, on_file=stall)
"""


def test_killed_writer_leaves_no_bundle_and_a_rerun_succeeds(tmp_path):
    out = tmp_path / "bundle"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(tmp_path / "src"), str(out)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("copied"), proc.stderr.read()
        temp = [p.name for p in tmp_path.iterdir() if p.name.startswith(".bundle.tmp-")]
        assert len(temp) == 1
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()

    manifest, specs, extras = make_sources(tmp_path / "src")
    write_bundle(out, manifest=manifest, files=specs, extras=extras)
    assert load_bundle(out).precision == "int8"
    assert _hidden_leftovers(tmp_path) == []  # the dead writer's temp folder was cleaned


def _dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(proc.stdout)


def test_old_bundle_moved_aside_by_a_dead_writer_is_restored(tmp_path):
    manifest, specs, extras = make_sources(tmp_path / "src")
    out = write_bundle(tmp_path / "bundle", manifest=manifest, files=specs, extras=extras)
    aside = tmp_path / f".bundle.old-{_dead_pid()}-abcd"
    out.rename(aside)  # what a writer killed between its two renames leaves
    assert clean_stale_temp_dirs(out) == [aside]
    assert load_bundle(out).threshold == pytest.approx(0.5)
    assert not aside.exists()


def test_temp_folder_of_a_live_writer_is_left_alone(tmp_path):
    live = tmp_path / f".bundle.tmp-{os.getpid()}-abcd"
    live.mkdir()
    assert clean_stale_temp_dirs(tmp_path / "bundle") == []
    assert live.is_dir()
