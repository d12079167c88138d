"""``i3dmtn data``: data set tools. ``i3dmtn data prepare SRC --out DIR`` turns a downloaded fight data set
(Surveillance Camera Fight, RWF-2000, Hockey Fights, the project's own normal/ + anomaly/, or any layout
named by globs) into ``DIR/{train,val,test}/{normal,anomaly}/``: a seeded split, stratified by class and
grouped by source video, made of links to the source files, recorded in ``DIR/split.json``.
The work is done by :mod:`training.data.prepare`; this module parses options and prints the summary.
``i3dmtn data harvest --clips DIR --out DATA`` turns the clips a watcher saved and its people reviewed into
training videos (:mod:`training.data.harvest`).

Options are parsed here (not by argparse types) so that every bad value is one line naming its option.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_runtime.usage import UsageError

__all__ = ["add_arguments", "run"]

PREPARE_DESCRIPTION = """\
Turn a downloaded fight data set SRC into this project's layout OUT/{train,val,test}/{normal,anomaly}/
(what `i3dmtn train --data_path OUT` reads), linking the videos (symbolic links to their absolute paths,
hard links where those fail, never copies), and write OUT/split.json: each clip's source path, split,
label and group, plus the seed and options. Unreadable videos are skipped with a warning and counted.

layouts recognised in SRC (folder names in any case, ignoring - _ and spaces):
  fight/ + noFight/           Surveillance Camera Fight Dataset; also normal/ + anomaly/ (this
                              project's layout) and Violence/ + NonViolence/
  train|val/Fight|NonFight    RWF-2000 (and any train/ val/ [test/] folders holding class folders):
                              its own split is kept: its val/ (RWF-2000's evaluation set) becomes test/,
                              val/ is carved from its train/ with --val; a test/ of its own stays test/
                              and then its val/ stays val/. --resplit pools all clips and splits anew
  fi*.avi + no*.avi           Hockey Fights: files named fi* (fight) and no* (normal) directly in SRC
  --anomaly GLOB --normal GLOB
                              any other layout: globs relative to SRC (repeatable; ** recurses);
                              they override detection

The split is seeded (--seed), stratified by class and grouped: with --groups FILE, a JSON object of clip
path (relative to SRC, with /) -> source id, clips cut from one source video never land in two splits
(a clip-level split leaks the scene and inflates every score). Without --groups each clip is its own group.
"""

PREPARE_EPILOG = """\
examples:
  i3dmtn data prepare ~/data/surveillance-fight --groups ~/data/surveillance-fight/groups.json --out data/fight
  i3dmtn data prepare ~/data/RWF-2000 --out data/rwf --val 0.1
  i3dmtn data prepare ~/data/HockeyFights --out data/hockey --val 0.2 --test 0.2 --seed 3
  i3dmtn data prepare ~/data/new-cameras --out data/held-out --test 1   # evaluate on data/held-out/test
  i3dmtn data prepare ~/clips --anomaly 'fights/**/*.mp4' --normal 'calm/*.mp4' --out data/mine
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The actions of ``i3dmtn data`` and their options (argparse only: no heavy imports)."""
    parser.description = (
        "Data set tools: `i3dmtn data prepare --help` explains the layouts it reads; `i3dmtn data harvest "
        "--help` turns reviewed event clips into training videos."
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    _add_prepare(actions)
    _add_harvest(actions)


def _add_prepare(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser(
        "prepare",
        help="turn a downloaded data set (fight/noFight, RWF-2000, Hockey Fights, globs) into "
        "train/val/test folders of links, split by source video",
        description=PREPARE_DESCRIPTION,
        epilog=PREPARE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_prepare_input(p.add_argument_group("input"))
    _add_prepare_split(p.add_argument_group("split"))
    _add_prepare_output(p.add_argument_group("output"))


def _add_prepare_input(group: argparse._ArgumentGroup) -> None:
    group.add_argument("src", metavar="SRC", help="the downloaded data set folder (never modified)")
    group.add_argument(
        "--groups",
        metavar="FILE",
        help="JSON object: clip path relative to SRC -> group (source video) id; must name every clip",
    )
    for name, what, needs in (
        ("anomaly", "fight", "--normal; overrides detection"),
        ("normal", "normal", "--anomaly"),
    ):
        group.add_argument(
            f"--{name}",
            action="append",
            default=[],
            metavar="GLOB",
            help=f"{what} clips, a glob relative to SRC (repeatable; needs {needs})",
        )


def _add_prepare_split(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--val", metavar="F", help="share of clips for val/, 0 < F < 1 (default: 0.15)")
    group.add_argument(
        "--test",
        metavar="F",
        help="share of clips for test/, 0 <= F < 1 (default: 0.15); 0 makes no test/; 1 puts every clip in "
        "test/ (a held-out data set for i3dmtn evaluate --test_path OUT/test)",
    )
    group.add_argument("--seed", default="0", metavar="N", help="random seed of the split (default: 0)")
    group.add_argument(
        "--folds",
        metavar="K",
        help="cross-validation: cut the clips into K grouped, stratified folds (the same for one --seed) "
        "and make test/ fold --fold; val/ is --val of the rest",
    )
    group.add_argument("--fold", metavar="I", help="with --folds: which fold is test/ (0 .. K-1)")
    group.add_argument(
        "--resplit",
        action="store_true",
        help="for a SRC with its own train/ val/ split (RWF-2000): pool all clips and split them anew",
    )


def _add_prepare_output(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--out", required=True, metavar="DIR", help="output folder (created; must be empty unless --force)"
    )
    group.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty DIR, replacing the links a previous run made (never a video file)",
    )


HARVEST_DESCRIPTION = """\
Turn the event clips a watcher saved (i3dmtn alerts --save-clips DIR) and the reviews of them (its
database, --db) into training videos in this project's layout: clips reviewed "false alarm" go to
OUT/normal/, clips reviewed "fight" to OUT/anomaly/ with a record in OUT/annotations.json whose frames
between the event's start and end are 1. OUT/harvest.json records where each video came from (event,
device, camera, verdict, reviewer, note, SHA-256, source). A clip whose SHA-256 is not its event's is
refused; an existing file is never overwritten, so running it again adds only new reviews. OUT can be
the train/ folder of a prepared data set, or a folder of its own.
"""


def _add_harvest(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser(
        "harvest",
        help="turn reviewed event clips into training videos: false alarms to normal/, fights to anomaly/",
        description=HARVEST_DESCRIPTION,
        epilog="example:\n  i3dmtn data harvest --clips ~/clips --out data/fight/train",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--clips", required=True, metavar="DIR", help="the watcher's --save-clips folder")
    p.add_argument("--db", metavar="FILE", help="the watcher's database (default: DIR/watcher.sqlite)")
    p.add_argument(
        "--out", required=True, metavar="DATA", help="data set folder to add the videos to (created)"
    )


def _harvest(args: argparse.Namespace) -> int:
    from training.data.harvest import OUTCOMES, harvest
    from training.data.records import DatasetError

    clips = Path(args.clips)
    db = Path(args.db) if args.db else clips / "watcher.sqlite"
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    try:
        result = harvest(clips, db, out)
    except DatasetError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
    width = max(len(o) for o in OUTCOMES)
    print(f"  {'':{width}s} {'normal':>7s} {'anomaly':>8s}")
    for outcome in OUTCOMES:
        normal, anomaly = result.counts["normal"][outcome], result.counts["anomaly"][outcome]
        print(f"  {outcome:{width}s} {normal:7d} {anomaly:8d}")
    print(f"harvested {len(result.harvested)} video(s) into {out} (provenance: {out / 'harvest.json'})")
    return 0


def _float(option: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{option} must be a number, got {text!r}") from None


def _int(option: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{option} must be an integer, got {text!r}") from None


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--seed must be an integer >= 0, got {text!r}") from None
    if value < 0:
        raise UsageError(f"--seed must be an integer >= 0, got {value}")
    return value


def _table(counts: dict[str, dict[str, int]], total_groups: int) -> list[str]:
    rows = [f"  {'split':6s} {'normal':>7s} {'anomaly':>8s} {'total':>6s} {'groups':>7s}"]
    for split, n in counts.items():
        rows.append(
            f"  {split:6s} {n['normal']:7d} {n['anomaly']:8d} {n['normal'] + n['anomaly']:6d} {n['groups']:7d}"
        )
    normal = sum(n["normal"] for n in counts.values())
    anomaly = sum(n["anomaly"] for n in counts.values())
    rows.append(f"  {'all':6s} {normal:7d} {anomaly:8d} {normal + anomaly:6d} {total_groups:7d}")
    return rows


def _prepare(args: argparse.Namespace) -> int:
    from training.data.prepare import PrepareOptions, prepare_dataset
    from training.data.records import DatasetError

    opts = PrepareOptions(
        src=Path(args.src),
        out=Path(args.out),
        val=_float("--val", args.val),
        test=_float("--test", args.test),
        seed=_seed(args.seed),
        groups_file=Path(args.groups) if args.groups else None,
        anomaly=tuple(args.anomaly),
        normal=tuple(args.normal),
        resplit=args.resplit,
        force=args.force,
        folds=_int("--folds", args.folds),
        fold=_int("--fold", args.fold),
    )
    if not opts.src.exists():
        raise UsageError(f"SRC {opts.src} does not exist")
    try:
        result = prepare_dataset(opts)
    except DatasetError as exc:
        raise UsageError(str(exc)) from None
    groups = {c.group for c in result.clips}
    print(f"layout: {result.layout.description}")
    if result.grouped:
        print(f"groups: {len(groups)} from {opts.groups_file}; no group spans two splits")
    else:
        print(
            "groups: no --groups file, so each clip is its own group (clips cut from one source video may "
            "land in different splits)"
        )
    print(f"split: {result.split_note}")
    print("\n".join(_table(result.counts(), len(groups))))
    if result.skipped:
        print(f"skipped {len(result.skipped)} unreadable video(s) (listed in {result.split_file})")
    kinds = ", ".join(f"{n} {kind} links" for kind, n in sorted(result.links.items()))
    print(f"linked {len(result.clips)} clips into {opts.out} ({kinds}); split written to {result.split_file}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the chosen ``i3dmtn data`` action."""
    if args.data_command == "prepare":
        return _prepare(args)
    if args.data_command == "harvest":
        return _harvest(args)
    raise UsageError(f"unknown action {args.data_command!r}")  # argparse already refuses it
