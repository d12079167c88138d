"""``i3dmtn synth``: write a synthetic fight / normal video data set as real mp4 files.

Options are parsed here (not by argparse types) so that every bad value is one line naming its option.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

__all__ = ["add_arguments", "run", "parse_videos", "parse_size"]

_DEFAULTS = {"videos": "8,8,4,4,4,4", "frames": "96", "size": "160x120", "fps": "25", "fight": "0.25,0.5"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``i3dmtn synth`` (argparse only: no heavy imports)."""
    parser.description = (
        "Write a seeded synthetic data set of surveillance-like mp4 videos: people walking (normal) and "
        "people walking plus a fight interval (anomaly), laid out as OUT/{train,val,test}/{normal,anomaly}/*.mp4 "
        "with OUT/<split>/annotations.json holding per-video labels and per-frame 0/1 fight labels. "
        "The same --seed gives the same files. With --gym N it writes N calm gym scenes instead (people doing "
        "jumping jacks: big periodic limb motion, no fight) as OUT/normal/gym_*.mp4 with OUT/annotations.json, "
        "the hard normal scenes `i3dmtn demo --feedback` shows the review-and-fine-tune loop with."
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="output folder (created; must be empty unless --force)"
    )
    parser.add_argument(
        "--seed", default="0", metavar="N", help="random seed that pins every video (default: 0)"
    )
    parser.add_argument(
        "--videos",
        metavar="SPEC",
        help="how many videos: six counts TRAIN_N,TRAIN_A,VAL_N,VAL_A,TEST_N,TEST_A (normal, anomaly per split), "
        "or one number N meaning N normal + N anomaly for train and max(1, N//2) of each for val and test "
        f"(default: {_DEFAULTS['videos']})",
    )
    parser.add_argument(
        "--frames",
        default=_DEFAULTS["frames"],
        metavar="N",
        help=f"frames per video, >= 8 (default: {_DEFAULTS['frames']})",
    )
    parser.add_argument(
        "--size",
        default=_DEFAULTS["size"],
        metavar="WxH",
        help=f"frame size in pixels, even numbers >= 32 (default: {_DEFAULTS['size']})",
    )
    parser.add_argument(
        "--fps", default=_DEFAULTS["fps"], metavar="F", help="frames per second, > 0 (default: 25)"
    )
    parser.add_argument(
        "--fight-fraction",
        metavar="LO,HI",
        help="a fight lasts this fraction of its video, drawn per video from [LO, HI], 0 < LO <= HI <= 0.75 "
        f"(default: {_DEFAULTS['fight']})",
    )
    parser.add_argument(
        "--gym",
        metavar="N",
        help="write N calm gym scenes (jumping jacks) into OUT/normal/ instead of the fight data set "
        "(not with --videos or --fight-fraction)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty OUT, replacing the generator's own files there (other files are kept)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _usage(message: str) -> Exception:
    from edge_runtime.usage import UsageError

    return UsageError(message)


def _int(option: str, text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _usage(f"{option} must be an integer >= {minimum}, got {text!r}") from None
    if value < minimum:
        raise _usage(f"{option} must be an integer >= {minimum}, got {value}")
    return value


def parse_videos(text: str) -> tuple[int, int, int, int, int, int]:
    """``"8,8,4,4,4,4"`` or ``"N"`` -> six counts (see ``--help``); raises UsageError naming ``--videos``."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) == 1:
        n = _int("--videos", parts[0], 1)
        m = max(1, n // 2)
        return (n, n, m, m, m, m)
    if len(parts) != 6:
        raise _usage(f"--videos must be one number or six comma-separated counts, got {text!r}")
    counts = tuple(_int("--videos", p, 0) for p in parts)
    if sum(counts) == 0:
        raise _usage(f"--videos must ask for at least one video, got {text!r}")
    return counts  # type: ignore[return-value]


def parse_size(text: str) -> tuple[int, int]:
    """``"160x120"`` -> ``(160, 120)``; raises UsageError naming ``--size``."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise _usage(f"--size must be WxH in pixels, e.g. 160x120, got {text!r}")
    w, h = int(match.group(1)), int(match.group(2))
    if w < 32 or h < 32 or w % 2 or h % 2:
        raise _usage(f"--size must be even numbers >= 32 (mp4v needs even sizes), got {w}x{h}")
    return w, h


def _fraction(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(p) for p in text.split(","))
    except ValueError:
        raise _usage(f"--fight-fraction must be LO,HI, e.g. 0.25,0.5, got {text!r}") from None
    if not 0 < lo <= hi <= 0.75:
        raise _usage(f"--fight-fraction must satisfy 0 < LO <= HI <= 0.75, got {text!r}")
    return lo, hi


def _fps(text: str) -> float:
    try:
        fps = float(text)
    except ValueError:
        raise _usage(f"--fps must be a number > 0, got {text!r}") from None
    if not fps > 0 or fps != fps or fps == float("inf"):
        raise _usage(f"--fps must be a finite number > 0, got {text!r}")
    return fps


def run(args: argparse.Namespace) -> int:
    """Validate the options, generate the data set, print a summary."""
    seed = _int("--seed", args.seed, 0)
    frames = _int("--frames", args.frames, 8)
    videos = parse_videos(args.videos or _DEFAULTS["videos"])
    size = parse_size(args.size)
    fps = _fps(args.fps)
    fight = _fraction(args.fight_fraction or _DEFAULTS["fight"])
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise _usage(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise _usage(f"--out {out} is not empty (use --force to overwrite the generated files)")

    if args.gym is not None:
        return _run_gym(args, out, seed, frames, size, fps)

    from training.synth import SPLITS, SynthConfig, SynthError, generate_dataset

    try:
        cfg = SynthConfig(
            out=out, seed=seed, videos=videos, frames=frames, size=size, fps=fps, fight_fraction=fight
        )
        summary = generate_dataset(cfg, progress=not args.no_progress, overwrite=args.force)
    except SynthError as exc:
        raise _usage(str(exc)) from None
    print(
        f"wrote {summary['videos']} videos ({frames} frames, {size[0]}x{size[1]}, {fps:g} fps, seed {seed}) to {out}"
    )
    for split in SPLITS:
        s = summary["splits"][split]
        print(f"  {split:5s}: {s['normal']:3d} normal, {s['anomaly']:3d} anomaly  -> {s['annotations']}")
    return 0


def _run_gym(
    args: argparse.Namespace, out: Path, seed: int, frames: int, size: tuple[int, int], fps: float
) -> int:
    """``--gym N``: the gym scenes alone (the fight set's options are refused by name)."""
    count = _int("--gym", args.gym, 1)
    for option, value in (("--videos", args.videos), ("--fight-fraction", args.fight_fraction)):
        if value is not None:
            raise _usage(
                f"{option} sets the fight data set; --gym writes gym scenes only (leave out {option})"
            )

    from training.synth import SynthConfig, SynthError, generate_gym

    try:
        cfg = SynthConfig(out=out, seed=seed, frames=frames, size=size, fps=fps)
        summary = generate_gym(cfg, count, progress=not args.no_progress, overwrite=args.force)
    except SynthError as exc:
        raise _usage(str(exc)) from None
    print(
        f"wrote {summary['videos']} gym scenes ({frames} frames, {size[0]}x{size[1]}, {fps:g} fps, seed {seed}) "
        f"to {out / 'normal'} -> {summary['annotations']}"
    )
    return 0
