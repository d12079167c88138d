"""``i3dmtn demo --feedback``: the loop from a person's review back to a better model, on generated videos.

After the usual demo (its bundle, its broker still up):

1. calm gym scenes (:func:`training.synth.generate_gym`: jumping jacks, big periodic limb motion, no fight),
   which the demo's model, trained on walkers and fights, takes for fights;
2. a device pass over them, with three training fights, recording a clip of each event; a watcher's database
   (:class:`~alert_consumer.review_store.ReviewStore`) fed by the alert consumer keeps the events;
3. the reviews, made through the review page's own code (:class:`~alert_consumer.reviewing.ReviewDesk`: kept
   in the database and published retained on MQTT): gym events "false alarm", fight events "fight";
4. ``i3dmtn data harvest`` of the reviewed clips into a copy of the training split (hard links);
5. ``i3dmtn train --init`` from the demo's checkpoint on the old data plus the harvest;
6. ``i3dmtn export --baseline`` against the demo's bundle, on the same held-out videos;
7. a second device pass with the new bundle over the same gym scenes and the held-out videos.

The gym scenes of the second pass are the ones whose clips were harvested: the demo shows the reviewed
false alarms going away, not generalisation to unseen scenes (the export's baseline report, on held-out
videos, says whether any fight was lost). The clips are written by the device straight into the watcher's
folder (``DIR/<device>/<event>.mp4``, one machine); across machines `i3dmtn alerts --save-clips` fetches them.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alert_consumer.review_store import ReviewStore
from alert_consumer.reviewing import ReviewDesk
from alert_consumer.state import AlertState
from edge_runtime.broker import LocalBroker
from training.demo_device import DEVICE_ID, PREFIX, EventCollector, camera_name, stream_device
from training.demo_stages import Stages, cli

__all__ = ["FEEDBACK_STAGES", "FeedbackPlan", "run_feedback", "review_events", "alarming", "feedback_lines"]

FEEDBACK_STAGES = 7
REVIEWER = "demo-reviewer"
TRAINING_FIGHTS = 3  # fights of the training split the first gym pass also plays: the reviews' "fight" side


@dataclass
class FeedbackPlan:
    """Where the demo's feedback loop reads and writes (all under ``root``) and how it fine-tunes."""

    root: Path  # OUT/feedback (emptied first: everything in it is the demo's own)
    data: Path  # the demo's data set (train/, val/, test/ and its frame cache)
    checkpoint: Path  # the demo's best.pt
    bundle: Path  # the demo's bundle
    gym: int  # gym scenes
    seed: int
    frames: int
    size: tuple[int, int]
    epochs: int  # of the fine-tune
    target: str
    timeout_s: float


def _copy_split(src: Path, dst: Path) -> None:
    """``src``'s videos hard-linked (copied where links cannot be made) and its annotations copied."""
    for video in sorted(src.glob("*/*.mp4")):
        target = dst / video.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(video, target)
        except OSError:
            shutil.copyfile(video, target)
    shutil.copyfile(src / "annotations.json", dst / "annotations.json")


def review_events(store: ReviewStore, client: Any, events: list[dict[str, Any]]) -> dict[str, int]:
    """Review every ended event with the review page's desk: a fight camera's "fight", any other's "false
    alarm"; returns how many of each."""
    desk = ReviewDesk(PREFIX, store, AlertState(PREFIX), REVIEWER)
    desk.attach(client)
    counts = {"fight": 0, "false_alarm": 0}
    for event in events:
        if event["type"] != "end":
            continue
        fight = event["camera"].startswith("anomaly-")
        verdict = "fight" if fight else "false_alarm"
        desk.submit(event["event_id"], verdict, "a fight" if fight else "a gym class doing jumping jacks")
        counts[verdict] += 1
    print(
        f"reviewed {counts['false_alarm']} event(s) 'false alarm', {counts['fight']} 'fight' (as {REVIEWER})"
    )
    return counts


def alarming(videos: list[Path], events: list[dict[str, Any]]) -> int:
    """How many of ``videos`` raised at least one event."""
    started = {e["camera"] for e in events if e["type"] == "start"}
    return sum(camera_name(v) in started for v in videos)


def feedback_lines(result: dict[str, Any]) -> list[str]:
    gym, fights = result["gym"], result["fights"]
    return [
        f"feedback loop: {result['reviews']['false_alarm']} false alarm(s) and {result['reviews']['fight']} "
        f"fight(s) reviewed, harvested, fine-tuned from {result['started_from']}",
        f"gym scenes alarming: before {gym['before']}/{gym['n']} -> after {gym['after']}/{gym['n']}; "
        f"fights alerted before {fights['before']}/{fights['n']} -> after {fights['after']}/{fights['n']}",
    ]


def _gym_pass(plan: FeedbackPlan, stages: Stages, broker: LocalBroker, gym: list[Path]) -> tuple[list, dict]:
    """Stages 2-3: the device over the gym scenes and a few training fights, clips recorded; the reviews."""
    clips = plan.root / "clips"
    fights = sorted((plan.data / "train" / "anomaly").glob("*.mp4"))[:TRAINING_FIGHTS]
    store = ReviewStore(clips / "watcher.sqlite")
    try:
        with EventCollector(broker.host, broker.port, sinks=(store,)) as collector:
            events = stages.run(
                f"edge-runtime on {len(gym)} gym scenes + {len(fights)} training fights; clips recorded",
                lambda: stream_device(broker, collector, plan.bundle, gym + fights, plan.root / "gym-before",
                                      clips=clips / DEVICE_ID, timeout_s=plan.timeout_s),
            )  # fmt: skip
            reviews = stages.run(
                "review the events on the watcher (the review page's desk): 'false alarm' / 'fight'",
                lambda: review_events(store, collector.client, events),
            )
    finally:
        store.close()
    return events, reviews


def _retrain(plan: FeedbackPlan, stages: Stages) -> tuple[Path, Path]:
    """Stages 4-6: harvest, fine-tune, export against the old bundle; the new checkpoint and bundle."""
    data, run, bundle = plan.root / "data", plan.root / "run", plan.root / "bundle"
    for split in ("train", "val"):
        _copy_split(plan.data / split, data / split)
    clips = plan.root / "clips"
    stages.run(
        "i3dmtn data harvest: the reviewed clips into a copy of the training split",
        lambda: cli(["data", "harvest", "--clips", str(clips), "--out", str(data / "train")]),
    )
    # best.pt = the last epoch: the validation videos hold no gym scene, so they rank every epoch alike (AUC
    # 1.0 from the first), and ranking would keep the first, which has seen the harvest once
    stages.run(
        f"i3dmtn train --init: fine-tune the demo's model on the old data plus the harvest (epochs: {plan.epochs})",
        lambda: cli(["train", "--init", str(plan.checkpoint), "--data_path", str(data), "--output", str(run),
                     "--epochs", str(plan.epochs), "--set", "best_checkpoint=last",
                     "--frame-cache", str(plan.data / ".frame_cache")]),
    )  # fmt: skip
    stages.run(
        "i3dmtn export --baseline: the new bundle and its report against the old one",
        lambda: cli(["export", "--checkpoint", str(run / "best.pt"), "--target", plan.target, "--calib-data",
                     str(plan.data), "--out", str(bundle), "--baseline", str(plan.bundle), "--overwrite"]),
    )  # fmt: skip
    return run / "best.pt", bundle


def run_feedback(
    plan: FeedbackPlan, stages: Stages, broker: LocalBroker, fights_before: int
) -> dict[str, Any]:
    """The loop's seven stages (the broker is the demo's, still running); ``fights_before``: the held-out fights
    the demo's pass alerted. Returns the before/after counts."""
    shutil.rmtree(plan.root, ignore_errors=True)
    gym_dir = plan.root / "gym"
    stages.run(
        f"synthesize {plan.gym} calm gym scenes (jumping jacks)",
        lambda: cli(["synth", "--gym", str(plan.gym), "--out", str(gym_dir), "--seed", str(plan.seed),
                     "--frames", str(plan.frames), "--size", f"{plan.size[0]}x{plan.size[1]}", "--no-progress"]),
    )  # fmt: skip
    gym = sorted((gym_dir / "normal").glob("*.mp4"))
    before, reviews = _gym_pass(plan, stages, broker, gym)
    checkpoint, bundle = _retrain(plan, stages)
    held_out = sorted((plan.data / "test").glob("*/*.mp4"))
    with EventCollector(broker.host, broker.port) as collector:
        after = stages.run(
            "edge-runtime, new bundle, same gym scenes + held-out videos",
            lambda: stream_device(broker, collector, bundle, gym + held_out, plan.root / "after",
                                  timeout_s=plan.timeout_s),
        )  # fmt: skip
    fights = [v for v in held_out if v.parent.name == "anomaly"]
    return {
        "gym": {"n": len(gym), "before": alarming(gym, before), "after": alarming(gym, after)},
        "fights": {"n": len(fights), "before": fights_before, "after": alarming(fights, after)},
        "held_out_normal_alarming_after": alarming([v for v in held_out if v not in fights], after),
        "reviews": reviews,
        "started_from": str(plan.checkpoint),
        "checkpoint": str(checkpoint),
        "bundle": str(bundle),
    }
