"""``i3dmtn export``: a checkpoint -> a self-describing FP32 + INT8 bundle for a device.

Examples::

    i3dmtn export --checkpoint runs/fight/best.pt --target openvino --calib-data data/ --out bundles/nuc
    i3dmtn export --checkpoint best.pt --device-profile jetson-orin-nano --calib-data data/ --out bundles/orin

Exit status: 0 written; 1 a gate failed, nothing written: the accuracy gate (INT8 lost more video AUC than
``--max-auc-drop``) or the event gate (INT8 alerts fewer held-out fights than FP32 under the bundle's event
policy); 2 bad options or input (one line naming the option).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["add_arguments", "run"]

log = logging.getLogger(__name__)

TARGETS = ("openvino", "onnx", "jetson")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The export options (argparse only: nothing heavy imported here)."""
    parser.add_argument(
        "--checkpoint", type=Path, required=True, help="checkpoint (.pt) written by `i3dmtn train`"
    )
    parser.add_argument(
        "--target", choices=TARGETS, help="openvino (NNCF INT8 IR), onnx (ONNX Runtime INT8) or jetson "
        "(INT8 Q/DQ ONNX for TensorRT); default: the device profile's, else onnx",
    )  # fmt: skip
    parser.add_argument(
        "--calib-data", type=Path, required=True,
        help="data set root (train/ [val/ test/] with normal/ and anomaly/ videos): calibration clips come "
        "from train/, the threshold and the event policy from val/, the FP32-vs-INT8 report from test/ unless "
        "--eval-data has them",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="bundle folder to write (atomically)")
    parser.add_argument(
        "--device-profile", metavar="NAME|PATH",
        help="device profile (shipped name or .toml path): picks target and precision (fp32: no quantization)",
    )  # fmt: skip
    parser.add_argument(
        "--eval-data", type=Path, help="data set root whose test/ (and val/) split to use instead"
    )
    parser.add_argument(
        "--calib-snippets", type=int, default=300, metavar="N",
        help="calibration snippets, stratified over normal/anomalous videos and over time (default 300)",
    )  # fmt: skip
    parser.add_argument(
        "--max-auc-drop", type=float, default=0.01,
        help="accuracy gate: largest allowed drop of held-out video AUC from FP32 to INT8 (default 0.01)",
    )  # fmt: skip
    parser.add_argument(
        "--allow-accuracy-drop", action="store_true",
        help="write the bundle even when the gate fails; the manifest records gate 'overridden'",
    )  # fmt: skip
    parser.add_argument(
        "--allow-event-loss", action="store_true",
        help="write the bundle even when INT8 alerts fewer held-out fights than FP32 (device events replayed "
        "under the bundle's event policy); the manifest records event_gate 'overridden'",
    )  # fmt: skip
    parser.add_argument(
        "--accuracy-control", action="store_true",
        help="openvino: NNCF quantization with accuracy control (video AUC on val/ videos, --max-auc-drop)",
    )  # fmt: skip
    parser.add_argument(
        "--preset", choices=("mixed", "performance"), default="mixed",
        help="openvino NNCF preset: mixed (symmetric weights, asymmetric activations; default) or performance",
    )  # fmt: skip
    parser.add_argument(
        "--baseline", type=Path, metavar="OLD_BUNDLE",
        help="compare with this older bundle on the same held-out videos, each scored as its device would and "
        "under its own event policy: video scores and events per video, false alarms gone / new, fights lost / "
        "gained, both video AUCs (printed, and under 'baseline' in report.json); it must cut the videos into "
        "the same snippets (preprocessing contract, snippet length, frame stride)",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle at --out")
    parser.add_argument("--seed", type=int, default=0, help="seed of the calibration clip choice (default 0)")
    parser.add_argument(
        "--no-progress", action="store_true",
        help="no progress bars, not even on a terminal (neither its own nor NNCF's); the stage lines stay",
    )  # fmt: skip


def _options(args: argparse.Namespace):  # -> ExportOptions
    from edge_runtime.usage import UsageError
    from export.pipeline import ExportOptions

    target, precision, profile = args.target, "int8", None
    if args.device_profile:
        from devices.profiles import ProfileError, load_profile

        try:
            profile = load_profile(args.device_profile)
        except ProfileError as exc:
            raise UsageError(f"--device-profile: {exc}") from None
        if target is not None and target != profile.model.target:
            raise UsageError(
                f"--target {target} contradicts --device-profile {profile.name} (target {profile.model.target})"
            )
        target = profile.model.target
        precision = "fp32" if profile.model.precision == "fp32" else "int8"
        if profile.model.precision == "fp16":
            log.info(
                "profile %s wants fp16: TensorRT builds it from the FP32 ONNX; exporting INT8 + FP32",
                profile.name,
            )
    if not args.checkpoint.is_file():
        raise UsageError(f"--checkpoint {args.checkpoint} does not exist or is not a file")
    for name, path in (("--calib-data", args.calib_data), ("--eval-data", args.eval_data)):
        if path is not None and not path.is_dir():
            raise UsageError(f"{name} {path} is not a folder")
    if args.calib_snippets < 1:
        raise UsageError(f"--calib-snippets must be >= 1, got {args.calib_snippets}")
    if not 0 <= args.max_auc_drop <= 1:
        raise UsageError(f"--max-auc-drop must be in [0, 1], got {args.max_auc_drop}")
    target = target or "onnx"
    if args.accuracy_control and target != "openvino":
        raise UsageError(f"--accuracy-control is for --target openvino (NNCF), not {target}")
    return ExportOptions(
        checkpoint=args.checkpoint, calib_data=args.calib_data, out=args.out, target=target, precision=precision,
        eval_data=args.eval_data, calib_snippets=args.calib_snippets, max_auc_drop=args.max_auc_drop,
        allow_accuracy_drop=args.allow_accuracy_drop, allow_event_loss=args.allow_event_loss,
        accuracy_control=args.accuracy_control,
        overwrite=args.overwrite, seed=args.seed, preset=args.preset, profile=profile.name if profile else None,
        baseline=args.baseline, progress=not args.no_progress,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Run the export; 0 on success, 1 when the accuracy or the event gate fails."""
    from calibration.select import CalibrationError
    from edge_runtime.bundle import BundleError
    from edge_runtime.usage import UsageError
    from export.pipeline import ExportError, run_export
    from export.report import AccuracyGateError
    from training.checkpoint import CheckpointError

    opts = _options(args)
    try:
        result = run_export(opts)
    except AccuracyGateError as exc:
        print(f"i3dmtn export: {exc}", file=sys.stderr)
        return 1
    except (ExportError, CalibrationError, CheckpointError, BundleError) as exc:
        raise UsageError(str(exc)) from None
    acc = result.report["accuracy"]
    print(
        f"wrote {result.bundle} ({opts.target}, {opts.precision}; threshold {result.report['threshold']:.4f}; "
        f"accuracy gate {acc['gate']}, event gate {acc.get('event_gate', 'not_checked')})"
    )
    events = result.report["comparison"].get("events")
    if events:
        p, source = events["policy"], result.report["event_policy"]["source"]
        alerted, alarms, n = events["fights_alerted"], events["false_alarms"], events["fights"]
        name = opts.precision.upper()
        print(
            f"device events on the {result.report['comparison']['videos']} held-out videos (event policy on "
            f"{p['on_threshold']:.3f}, off {p['off_threshold']:.3f}, min duration {p['min_duration_s']:g} s; "
            f"{source}): fights alerted FP32 {alerted['fp32']}/{n}, {name} {alerted['int8']}/{n}; false alarms "
            f"FP32 {alarms['fp32']}, {name} {alarms['int8']}"
        )
    if "baseline" in result.report:
        from export.baseline import baseline_table

        print(baseline_table(result.report["baseline"]))
    return 0
