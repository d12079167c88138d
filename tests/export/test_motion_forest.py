"""The motion forest through the chain: ``train`` fits and writes it, ``evaluate`` scores fused, ``export``
puts it into the bundle, and the device's scorer gives the fused scores ``evaluate`` gives."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from edge_runtime.bundle import BundleError, load_bundle, parse_manifest, sha256_file
from edge_runtime.motion_stats import STATS_VERSION
from tests.export import helpers
from training.checkpoint import load_checkpoint, read_checkpoint


@pytest.fixture(scope="module")
def scored(forest_run, contrast_root):
    """The run's best.pt, its forest, and evaluate's scores of the test videos (fused and parts)."""
    from training.data import scan_videos
    from training.evaluate import score_video
    from training.motion_forest import load_checkpoint_fusion

    model, config, ckpt = load_checkpoint(forest_run / "best.pt")
    fusion = load_checkpoint_fusion(forest_run / "best.pt", ckpt)
    records = scan_videos(contrast_root / "test")[0]
    results = [score_video(model.eval(), r, config, torch.device("cpu"), fusion=fusion) for r in records]
    return config, ckpt, fusion, records, results


@pytest.fixture(scope="module")
def bundle(forest_run, contrast_root, tmp_path_factory):
    return helpers.export(
        forest_run / "best.pt", contrast_root, tmp_path_factory.mktemp("forest_bundle") / "b", target="onnx"
    )


def test_train_writes_the_forest_and_the_checkpoints_name_it(forest_run):
    path = forest_run / "motion_forest.npz"
    for name in ("best.pt", "last.pt"):
        ref = read_checkpoint(forest_run / name)["motion_forest"]
        assert ref["file"] == path.name and ref["sha256"] == sha256_file(path)
        assert ref["stats_version"] == STATS_VERSION and ref["trees"] == 5 and ref["weight"] == 0.5
        assert set(ref["val_auc"]) == {"fused", "network", "forest"}


def test_train_says_what_best_pt_holds_the_fused_validation_auc_and_its_parts(forest_run):
    ckpt = read_checkpoint(forest_run / "best.pt")
    auc = ckpt["motion_forest"]["val_auc"]
    printed = (forest_run.parent / "stdout.txt").read_text()
    assert (f"best.pt: epoch 1 of 1, validation video AUC {auc['fused']:.4f} fused (network {auc['network']:.4f}, "
            f"forest {auc['forest']:.4f}), threshold {ckpt['threshold']:.4f}") in printed  # fmt: skip


def test_evaluate_scores_the_share_of_the_network_and_the_forest(scored):
    _, _, fusion, _, results = scored
    assert fusion is not None and fusion.weight == 0.5 and fusion.forest.n_trees == 5
    for r in results:
        expected = 0.5 * r.parts["network"] + 0.5 * r.parts["forest"]
        np.testing.assert_allclose(r.snippet_scores, expected, rtol=1e-6, atol=1e-6)
    assert np.ptp(np.concatenate([r.parts["forest"] for r in results])) > 0  # the forest's part varies


def test_the_evaluate_command_reports_the_fused_network_and_forest_auc(
    forest_run, contrast_root, tmp_path, capsys
):
    from training.cli import main

    out = tmp_path / "eval"
    argv = [
        "evaluate",
        "--model_path",
        str(forest_run / "best.pt"),
        "--test_path",
        str(contrast_root / "test"),
    ]
    assert main([*argv, "--output", str(out), "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())
    auc = report["motion_forest"]["video_auc"]
    assert set(auc) == {"fused", "network", "forest"} and auc["fused"] == report["video_metrics"]["auc_roc"]
    for video in report["videos"]:  # each snippet's parts, from which any motion_weight is scored again
        parts = {name: np.array(s) for name, s in video["parts"].items()}
        fused = 0.5 * parts["network"] + 0.5 * parts["forest"]  # the run's motion_weight
        np.testing.assert_allclose(video["snippet_scores"], fused, rtol=1e-6, atol=1e-6)
    assert "forest AUC" in capsys.readouterr().out


def test_a_changed_forest_file_is_refused_by_evaluate_naming_it(forest_run, contrast_root, tmp_path, capsys):
    from training.cli import main

    run = tmp_path / "run"
    run.mkdir()
    for name in ("best.pt", "motion_forest.npz"):
        shutil.copyfile(forest_run / name, run / name)
    with open(run / "motion_forest.npz", "ab") as fh:
        fh.write(b"\0")
    argv = ["evaluate", "--model_path", str(run / "best.pt"), "--test_path", str(contrast_root / "test")]
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "motion_forest.npz changed" in err and len(err.splitlines()) == 1


def test_the_bundle_holds_the_forest_and_the_device_scores_as_evaluate(bundle, scored):
    from edge_runtime.backends import create_backend
    from edge_runtime.scoring import StreamingScorer
    from training.data import iter_snippet_batches

    config, ckpt, _, records, results = scored
    entry = json.loads((bundle.bundle / "manifest.json").read_text())["motion_forest"]
    assert entry == {"file": "motion_forest.npz", "sha256": ckpt["motion_forest"]["sha256"],
                     "stats_version": STATS_VERSION, "weight": 0.5}  # fmt: skip
    assert bundle.report["motion_forest"]["trees"] == 5
    loaded = load_bundle(bundle.bundle)
    backbone, head = (
        create_backend("onnxruntime", loaded.model(r, "fp32").path) for r in ("backbone", "head")
    )
    pre, s = loaded.preprocess, loaded.window.snippet_length
    for record, result in zip(records, results, strict=True):
        scorer = StreamingScorer(
            backbone, head, ["cam"], loaded.window.num_snippets, motion=loaded.motion_fusion()
        )
        snippets = np.concatenate(list(iter_snippet_batches(record.path, s, pre)))
        device = np.array([scorer.score({"cam": x})["cam"] for x in snippets])
        np.testing.assert_allclose(device, result.snippet_scores, rtol=1e-4, atol=1e-5)


def test_a_tampered_forest_in_the_bundle_is_refused_by_name(bundle, tmp_path):
    copy = shutil.copytree(bundle.bundle, tmp_path / "b")
    with open(copy / "motion_forest.npz", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\xff\xff")
    with pytest.raises(BundleError, match="motion_forest.npz changed since export"):
        load_bundle(copy)


def test_a_bundle_without_the_forest_scores_the_network_alone(bundle, scored, tmp_path):
    from edge_runtime.backends import create_backend
    from edge_runtime.scoring import StreamingScorer
    from training.data import iter_snippet_batches

    _, _, _, records, results = scored
    copy = shutil.copytree(bundle.bundle, tmp_path / "old")
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["motion_forest"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    (copy / "motion_forest.npz").unlink()
    old = load_bundle(copy)
    assert old.motion_forest is None and old.motion_fusion() is None
    backbone, head = (create_backend("onnxruntime", old.model(r, "fp32").path) for r in ("backbone", "head"))
    scorer = StreamingScorer(backbone, head, ["cam"], old.window.num_snippets, motion=old.motion_fusion())
    snippets = np.concatenate(
        list(iter_snippet_batches(records[0].path, old.window.snippet_length, old.preprocess))
    )
    device = np.array([scorer.score({"cam": x})["cam"] for x in snippets])
    np.testing.assert_allclose(device, results[0].parts["network"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m["preprocess"].update(modality="rgb"), "motion_forest needs preprocess.modality 'flow'"),
        (
            lambda m: m["motion_forest"].update(stats_version="motion-stats/0"),
            "motion_forest.stats_version must be",
        ),
        (lambda m: m["motion_forest"].update(weight=1.5), "motion_forest.weight must be a number in"),
        (lambda m: m["motion_forest"].update(file="forest.pkl"), "must end with .npz"),
        (lambda m: m["motion_forest"].update(extra=1), "unknown field(s) ['extra'] in motion_forest"),
        (lambda m: m["motion_forest"].update(crops=2), "motion_forest.crops must be 1 or 3"),
        (lambda m: m["motion_forest"].update(crops="3"), "motion_forest.crops must be"),
    ],
)
def test_a_bad_motion_forest_entry_is_refused_in_one_line(bundle, change, message):
    manifest = json.loads((bundle.bundle / "manifest.json").read_text())
    change(manifest)
    if manifest["preprocess"]["modality"] == "rgb":  # the backbone's input channels follow the modality
        for f in manifest["files"]:
            if f["role"] == "backbone":
                f["inputs"][0]["shape"][1] = 3
    with pytest.raises(BundleError) as exc:
        parse_manifest(manifest, bundle.bundle)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_the_forests_crops_go_into_the_manifest_and_back(bundle, forest_run):
    """``crops`` is written only when 3 (so a runtime without side crops refuses such a bundle by name, as it
    refuses any unknown field) and read back into the device's fusion and snippet window; absent is 1."""
    from export.manifest import _forest_entry
    from training.checkpoint import load_checkpoint

    _, _, ckpt = load_checkpoint(forest_run / "best.pt")
    assert ckpt["motion_forest"]["crops"] == 1 and "crops" not in _forest_entry(ckpt)
    entry = _forest_entry({**ckpt, "motion_forest": {**ckpt["motion_forest"], "crops": 3}})
    assert entry["crops"] == 3
    manifest = json.loads((bundle.bundle / "manifest.json").read_text())
    assert "crops" not in manifest["motion_forest"]
    old = parse_manifest(manifest, bundle.bundle)
    assert old.motion_crops == 1 and old.motion_fusion().crops == 1
    manifest["motion_forest"] = entry
    new = parse_manifest(manifest, bundle.bundle)
    assert new.motion_crops == 3 and new.motion_fusion().crops == 3


def test_the_device_runtime_scores_a_three_crop_bundle_as_evaluate(bundle, scored, forest_run, tmp_path):
    """A bundle whose forest scores three crops: the runtime's camera windows carry the side crops' flow and
    its scorer gives evaluate's fused scores with the same fusion."""
    import dataclasses

    from edge_runtime.events import EventPolicy
    from edge_runtime.models import load_models
    from edge_runtime.mqtt import MqttPublisher
    from edge_runtime.mqtt_settings import MqttSettings
    from edge_runtime.outbox import Outbox
    from edge_runtime.resample import file_fps
    from edge_runtime.runtime import Runtime, RuntimeConfig
    from edge_runtime.sources import FileSource
    from edge_runtime.video import iter_frames, probe_video
    from training.evaluate import score_video

    config, _, fusion, records, _ = scored
    copy = shutil.copytree(bundle.bundle, tmp_path / "three")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["motion_forest"]["crops"] = 3
    (copy / "manifest.json").write_text(json.dumps(manifest))
    loaded = load_bundle(copy)
    record = records[-1]
    model, _, _ = load_checkpoint(forest_run / "best.pt")
    expected = score_video(
        model.eval(), record, config, torch.device("cpu"), fusion=dataclasses.replace(fusion, crops=3)
    )
    models = load_models(loaded, precision="fp32", backend="onnxruntime")
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        publisher = MqttPublisher(MqttSettings(port=1), "dev", outbox)
        runtime = Runtime(
            loaded,
            models,
            [("cam", FileSource(record.path))],
            publisher,
            RuntimeConfig("dev", EventPolicy(0.5)),
        )
        window, fps = runtime.cameras["cam"].window, file_fps(probe_video(record.path, verify=False).fps)
        snippets = [s.array for i, f in enumerate(iter_frames(record.path)) if (s := window.push(f, i / fps))]
        snippets += [window.flush().array] if window.pending else []
        assert snippets[0].shape[0] == 6  # the centre, left and right crops' flow
        device = [runtime.scorer.score({"cam": x})["cam"] for x in snippets]
    models.close()
    np.testing.assert_allclose(device, expected.snippet_scores, rtol=1e-4, atol=1e-5)
