"""The device loop: captures -> snippet windows -> one batched backbone call -> event state machines -> MQTT.

Each camera has a :class:`~edge_runtime.capture.CaptureThread` (bounded queue: a slow inference never blocks
capture), a :class:`~edge_runtime.window.SnippetWindow`, a ring in the shared
:class:`~edge_runtime.scoring.StreamingScorer` and an :class:`~edge_runtime.events.EventStateMachine`. One pass
of the loop takes each camera's queued frames until its next snippet is complete; the snippets ready in that
pass go to ONE backbone call; each camera's newest snippet score is observed at the snippet's last frame time,
and the messages go to the publisher (outbox first). Capture threads shrink frames to the contract's size as
they decode them; the event machine keeps the peak snippet's last frame at full size, which is published as a
snapshot on ``start`` and when the peak rises (at most every ``snapshot_interval_s``); stats every
``stats_interval_s``, with the seconds the loop has spent in the snippet windows (preprocessing), the
backbone, the heads, and waiting idle for frames.

With clips (``RuntimeConfig.clips``) each camera's clip frames (at the clip's size, from the frames as decoded
or from its record stream: :mod:`edge_runtime.camera`) feed its pre-capture ring
(:class:`~edge_runtime.clips.CameraClips`); a ``start`` is sent, then its clip's writer begins; an ``end`` is
held until its clip is written and then sent with the clip's description.

Stop (:meth:`Runtime.request_stop`, from SIGTERM / SIGINT) or the end of every source: captures stop, open
events get their ``end``, the outbox is flushed (bounded wait) and ``offline`` is published.

>>> runtime = Runtime(bundle, models, [("door", FileSource("clip.mp4"))], publisher, config)  # doctest: +SKIP
>>> runtime.run()  # doctest: +SKIP
0
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from devices.clip_settings import ClipSettings

from .bundle import Bundle
from .camera import Camera
from .capture import CaptureThread
from .capture_queue import default_queue
from .clip_store import ClipStore
from .clips import CameraClips
from .display import ScoreDisplay
from .events import EventPolicy, EventStateMachine
from .models import LoadedModels
from .mqtt import MqttPublisher
from .pose_model import PoseModel
from .scoring import StreamingScorer
from .sources import FrameSource
from .stats import RuntimeStats
from .window import Snippet

__all__ = ["Runtime", "RuntimeConfig"]

log = logging.getLogger(__name__)

_IDLE_WAIT_S = 0.005  # nothing queued on any camera: sleep this long (a 30 fps frame is 33 ms)
_STOP_WAIT_S = 1.0  # at stop, wait this long in all for the capture threads (the rest are daemons)
_MAX_FRAMES_PER_PASS = 256  # per camera: bounds one pass, so other cameras and stats are not starved


@dataclass
class RuntimeConfig:
    """How the loop behaves (everything that is not a model, a source or a broker)."""

    device_id: str
    policy: EventPolicy
    stats_interval_s: float = 10.0  # /stats period; the health page shows fps, latency and scores from it
    snapshot_interval_s: float = 2.0  # a rising peak re-sends the snapshot at most this often (JPEGs are big)
    flush_timeout_s: float = 10.0  # at stop, wait this long for the outbox to drain (what is left stays)
    max_queue: int | None = None  # frames per capture queue; None: the bundle's default_queue
    show: bool = False  # a local window per camera (only with a display)
    audit_log: Path | None = None  # JSONL of every produced event message (event_id, seq, type, camera)
    ha_discovery: bool = False  # publish Home Assistant discovery configs once connected
    clips: ClipSettings | None = None  # record a clip of each event (None: no clips)
    clips_folder: Path | None = None  # where (the settings' folder, resolved for this device id)


def _start_capture(capture: CaptureThread) -> BaseException | None:
    try:
        capture.start()
    except BaseException as exc:  # noqa: BLE001 - handed to the caller, which raises the first
        return exc
    return None


class Runtime:
    """Runs the loop for ``cameras`` (``[(name, source)]``) until stopped or every source has ended."""

    def __init__(
        self,
        bundle: Bundle,
        models: LoadedModels,
        cameras: Sequence[tuple[str, FrameSource]],
        publisher: MqttPublisher,
        config: RuntimeConfig,
    ) -> None:
        self.bundle, self.models, self.publisher, self.config = bundle, models, publisher, config
        info = {**bundle.model_info(), "precision": models.precision, "backend": models.backend}
        self.clip_store = ClipStore.open(config.clips, config.clips_folder) if config.clips else None
        pose = bundle.pose_forest  # several people's poses: one pose model for every camera
        pose_model = PoseModel(pose.model, pose.height) if pose is not None else None
        if pose is not None:
            log.info("several people's poses: %s on every %d frame(s), %d px high, their forest's share %g",
                     pose.model.name, pose.every, pose.height, pose.weight)  # fmt: skip
        self.cameras = {
            name: Camera(
                name,
                src,
                bundle,
                EventStateMachine(config.device_id, name, config.policy, info),
                config.max_queue or default_queue(bundle),
                self._camera_clips(name, src),
                config.clips,
                pose_model,
            )  # fmt: skip
            for name, src in cameras
        }
        self.scorer = StreamingScorer(
            models.backbone, models.head, list(self.cameras), bundle.window.num_snippets,
            max_batch=getattr(models.backbone, "max_batch", None), motion=bundle.motion_fusion(),
        )  # fmt: skip
        self.stats = RuntimeStats(self.cameras)
        self._stop = threading.Event()
        self._audit: IO[str] | None = None
        self._display: ScoreDisplay | None = None
        self._discovery_sent = False
        self.failed_sources: list[str] = []

    def _camera_clips(self, name: str, source: FrameSource) -> CameraClips | None:
        c = self.config.clips
        if c is None or self.clip_store is None:
            return None
        return CameraClips.for_camera(name, source, self.clip_store, c, self.config.policy.min_duration_s,
                                      self.bundle.window)  # fmt: skip

    # ---- control ---------------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask the loop to stop, from any thread but the loop's own signal handlers (they hand it to a thread:
        setting the event there could wait on its lock, held by the code they interrupted)."""
        self._stop.set()

    def run(self) -> int:
        """Open every source (a :class:`~edge_runtime.sources.SourceError` is raised before anything runs),
        run until stopped or all sources ended, shut down cleanly; 0, or 1 when a source failed for good."""
        self._start_captures()
        for cam in self.cameras.values():
            cam.start_readers()
        if self.config.audit_log is not None:
            self.config.audit_log.parent.mkdir(parents=True, exist_ok=True)
            self._audit = open(self.config.audit_log, "a", encoding="utf-8")  # noqa: SIM115 - closed in _shutdown
        if self.config.show:
            self._display = ScoreDisplay(self.config.policy.on_threshold)
        self.publisher.end_open_events()  # a previous run killed mid-event: its consumers still show it open
        self.publisher.start()
        log.info(
            "running: %d camera(s) %s, window S=%d x K=%d, stride %d, thresholds on %.3f / off %.3f",
            len(self.cameras), ", ".join(self.cameras), self.bundle.window.snippet_length,
            self.bundle.window.num_snippets, self.bundle.window.frame_stride,
            self.config.policy.on_threshold, self.config.policy.off_threshold,
        )  # fmt: skip
        try:
            self._loop()
        finally:
            self._shutdown()
        return 1 if self.failed_sources else 0

    def _start_captures(self) -> None:
        """Open every camera at once (a network stream takes about a second to open: eight cameras opened one
        after another would wait eight); the first failure stops the others and is raised."""
        captures = [cam.capture for cam in self.cameras.values()]
        with ThreadPoolExecutor(max_workers=len(captures), thread_name_prefix="open") as pool:
            outcomes = list(pool.map(_start_capture, captures))
        failures = [exc for exc in outcomes if exc is not None]
        if failures:
            for cap, exc in zip(captures, outcomes, strict=True):
                if exc is None:
                    cap.request_stop()
            for cap, exc in zip(captures, outcomes, strict=True):
                if exc is None:
                    cap.stop(timeout=_STOP_WAIT_S)
            raise failures[0]

    # ---- the loop --------------------------------------------------------------------------------------
    def _loop(self) -> None:
        next_stats = time.monotonic() + self.config.stats_interval_s
        while not self._stop.is_set():
            ready, consumed = self._collect()
            if ready:
                self._score(ready)
            for cam in self.cameras.values():
                self._release_clips(cam)
            if all(cam.done for cam in self.cameras.values()):
                log.info("every source has ended")
                return
            if self.config.ha_discovery and not self._discovery_sent and self.publisher.connected:
                sent = self.publisher.publish_discovery(list(self.cameras), model_name=self.bundle.model_name)
                self._discovery_sent = sent > 0
            if time.monotonic() >= next_stats:
                self._publish_stats()
                next_stats = time.monotonic() + self.config.stats_interval_s
            if not ready and not consumed:
                started = time.perf_counter()
                self._stop.wait(_IDLE_WAIT_S)
                self.stats.idle(time.perf_counter() - started)

    def _collect(self) -> tuple[dict[str, Snippet], int]:
        """Each camera's next complete snippet, from the frames queued now; also how many frames were taken."""
        ready: dict[str, Snippet] = {}
        consumed = 0
        for cam in self.cameras.values():
            if cam.done:
                continue
            for _ in range(_MAX_FRAMES_PER_PASS):
                frame = cam.capture.get(timeout=0)
                if frame is None:
                    if cam.capture.finished:
                        self._source_ended(cam)
                    break
                consumed += 1
                if frame.segment != cam.segment:  # reconnected: frames before and after are not continuous
                    cam.segment = frame.segment
                    cam.window.reset()
                    self.scorer.reset(cam.name)
                cam.last_ts = frame.timestamp
                started = time.perf_counter()
                # the pose model needs the frame as decoded; one a lagging reader let go: the newest
                full = frame.full if frame.full is not None else cam.capture.newest_full()
                snippet = cam.window.push(
                    frame.image, frame.timestamp, resized=frame.shrunk, full=full, samples=frame.samples
                )
                self.stats.frame(cam.name, time.perf_counter() - started)
                cam.feed_clips(frame)
                if snippet is not None:
                    ready[cam.name] = snippet
                    cam.full_frame = cam.picture(frame)
                    break
        return ready, consumed

    def _score(self, ready: dict[str, Snippet]) -> None:
        poses = {name: s.poses for name, s in ready.items() if s.poses is not None}
        scores = self.scorer.score({name: s.array for name, s in ready.items()}, poses or None)
        self.stats.batch(len(ready))
        produced: dict[str, list[dict[str, Any]]] = {}
        for name, snippet in ready.items():
            self.stats.snippet(name, scores[name])
            cam = self.cameras[name]
            produced[name] = cam.machine.observe(scores[name], snippet.last_ts, frame=cam.full_frame)
            cam.full_frame = None
        now = [m for name, messages in produced.items() for m in self.cameras[name].hold_ends(messages)]
        self._emit(now)  # every camera: one fsync
        for name in produced:  # clips begin once their start is sent: it never waits on a writer
            if self.cameras[name].clips is not None:
                self.cameras[name].clips.begin()
        for name, snippet in ready.items():
            cam, score, messages = self.cameras[name], scores[name], produced[name]
            self._snapshot(cam, started=any(m["type"] == "start" for m in messages))
            if self._display is not None:
                self._display.show(name, snippet.last_frame, score, cam.machine.active)
            log.debug("%s: snippet %d score %.4f", name, snippet.index, score)

    def _emit(self, messages: list[dict[str, Any]]) -> None:
        """Store + send the event messages of one loop pass in one outbox transaction (group commit: one fsync
        for all cameras); log each and append it to the audit log (after it is durable)."""
        if not messages:
            return
        self.publisher.publish_events(messages)
        for message in messages:
            self.stats.message(message["camera"], message["type"])
            fields = {k: message[k] for k in ("event_id", "seq", "type", "camera")}
            log.info(
                "event %s seq %d: %s on %s (score %.3f)", *fields.values(), message["score"], extra=fields
            )
            if self._audit is not None:
                self._audit.write(json.dumps({**fields, "timestamp": message["timestamp"]}) + "\n")
        if self._audit is not None:
            self._audit.flush()

    def _release_clips(self, cam: Camera) -> None:
        if cam.clips is not None:
            self._emit(cam.clips.finished_ends())

    def _snapshot(self, cam: Camera, *, started: bool) -> None:
        machine = cam.machine
        if not machine.active:
            return
        now = time.monotonic()
        rose = machine.peak_score > cam.snap_peak and now - cam.snap_at >= self.config.snapshot_interval_s
        if not (started or rose):
            return
        jpeg = machine.snapshot_jpeg()
        if jpeg is not None and self.publisher.publish_snapshot(cam.name, jpeg):
            cam.snap_at, cam.snap_peak = now, machine.peak_score

    def _source_ended(self, cam: Camera) -> None:
        cam.done = True
        error = cam.capture.stats.last_error
        if error is not None and not cam.capture.source.live:
            self.failed_sources.append(cam.name)
            log.error("%s: the source failed: %s", cam.name, error)
        self._close_events(cam)

    def _close_events(self, cam: Camera) -> None:
        # A file played fast has timestamps ahead of the wall clock: never end before the last frame seen.
        self._emit(cam.hold_ends(cam.machine.close(max(time.time(), cam.last_ts))))
        if cam.clips is not None:  # the clip with the frames seen so far
            self._emit(cam.clips.close(timeout=self.config.flush_timeout_s))

    def _publish_stats(self) -> dict[str, Any]:
        body = self.stats.snapshot(
            {n: c.capture.stats for n, c in self.cameras.items()},
            self.scorer.stats(),
            {n: c.machine.active for n, c in self.cameras.items()},
        )
        body["precision"], body["backend"] = self.models.precision, self.models.backend
        if self.clip_store is not None:
            clips = [
                (n, c.clips, c.clip_sources) for n, c in self.cameras.items() if c.clip_sources is not None
            ]
            ring = sum(c.ring.nbytes + c.packets.nbytes for _, c, _ in clips)
            body["clips"] = {**dataclasses.asdict(self.clip_store.stats), "ring_mb": round(ring / 1e6, 2),
                             "fallbacks": sum(s.fallbacks for _, _, s in clips)}  # fmt: skip
            for name, _, sources in clips:
                body["cameras"][name]["clip_source"] = sources.active
        for name, cam in self.cameras.items():
            if cam.packets is not None:
                body["cameras"][name]["packets"] = dataclasses.asdict(cam.packets.stats)
            if cam.record is not None:
                record = cam.record.stats.as_dict()
                body["cameras"][name]["record"] = {**record, "offset_ms": cam.record_offset_ms}
        self.publisher.publish_stats(body)
        log.debug("stats %s", json.dumps(body, default=str))
        return body

    def _shutdown(self) -> None:
        reason = "stop requested" if self._stop.is_set() else "sources ended"
        log.info("stopping (%s)", reason)
        for cam in self.cameras.values():  # every camera at once: a reader may be inside a blocking read
            cam.capture.request_stop()
            cam.stop_readers()
        deadline = time.monotonic() + _STOP_WAIT_S
        for cam in self.cameras.values():
            cam.capture.stop(timeout=max(0.0, deadline - time.monotonic()))
            cam.join_readers(deadline)
        for cam in self.cameras.values():
            if not cam.done:
                cam.done = True
                self._close_events(cam)
        body = self._publish_stats()
        summary = {
            k: body[k]
            for k in (
                "frames",
                "skipped_frames",
                "snippets",
                "dropped_frames",
                "backbone_calls",
                "batches",
                "batched_calls",
                "max_batch",
                "event_messages",
                "latency_ms_p50",
                "latency_ms_p95",
                "preprocess_s",
                "backbone_s",
                "head_s",
                "idle_s",
            )  # fmt: skip
        }
        log.info("finished: %s", " ".join(f"{k}={v}" for k, v in summary.items()), extra=summary)
        self.publisher.stop(flush_timeout=self.config.flush_timeout_s)
        if self._audit is not None:
            self._audit.close()
        if self._display is not None:
            self._display.close()
