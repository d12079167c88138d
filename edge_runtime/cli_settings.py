"""What ``edge-runtime`` runs with, resolved from its options, the device profile and the bundle: the cameras,
the event policy, the backend's engine options and the outbox's default place."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from .usage import UsageError

__all__ = ["camera_sources", "default_outbox", "engine_options", "event_policy", "load_runtime_models"]

log = logging.getLogger(__name__)


def default_outbox(device_id: str, environ: Any = None) -> Path:
    """``$STATE_DIRECTORY/outbox-<id>.sqlite`` (systemd), else ``~/.local/state/i3dmtn/outbox-<id>.sqlite``."""
    env = os.environ if environ is None else environ
    state = env.get("STATE_DIRECTORY", "").split(":")[0]
    folder = Path(state) if state else Path.home() / ".local" / "state" / "i3dmtn"
    return folder / f"outbox-{device_id}.sqlite"


def camera_sources(args: argparse.Namespace, profile: Any) -> list[tuple[str, Any]]:
    """``(camera name, source)`` of every ``--camera``, ``--source`` and profile ``[cameras.NAME]``."""
    from .schema import SchemaError, validate_id
    from .source_specs import RECORD_ROLE, parse_source_specs
    from .sources import CameraSource, GStreamerSource

    cameras = []
    for spec in args.camera:
        head, sep, rest = spec.rpartition("=")
        index = rest.strip()
        if not index.isdigit():
            raise UsageError(
                f"--camera {spec!r}: expected [NAME=]INDEX with INDEX a number, e.g. 0 or door=0"
            )
        try:
            name = validate_id(head.strip(), "camera name") if sep else f"cam{index}"
        except SchemaError as exc:
            raise UsageError(f"--camera {spec!r}: {exc}") from None
        pipeline = profile.camera_pipeline(int(index)) if profile is not None else None
        if pipeline is not None:
            cameras.append((name, GStreamerSource(pipeline)))
        elif profile is not None:
            c = profile.camera
            cameras.append((name, CameraSource(int(index), width=c.width, height=c.height, fps=c.fps)))
        else:
            cameras.append((name, CameraSource(int(index))))
    specs = list(args.source)
    for name, streams in profile.cameras.items() if profile is not None else ():
        specs.append(
            f"{name}={streams.detect}" + (f"{RECORD_ROLE}{streams.record}" if streams.record else "")
        )
    streams = profile.streams if profile is not None else None
    decoder = args.stream_decoder or (streams.decoder if streams is not None else "software")
    codec = streams.codec if streams is not None else "h264"
    parsed = parse_source_specs(specs, realtime=args.realtime, loop=args.loop, decoder=decoder, codec=codec)
    names = [n for n, _ in cameras + parsed]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"camera name(s) {dupes} are used twice: give each --camera / --source a NAME=")
    return cameras + parsed


def engine_options(profile: Any, backend: str) -> dict[str, Any]:
    """The profile's [engine] keys as options of the backend that runs (none, with a warning, when --backend
    chose another backend than the profile's: its [engine] keys are that backend's)."""
    if profile is None:
        return {}
    if profile.model.backend != backend:
        log.warning(
            "--backend %s: the device profile's [engine] settings are for %s and are not used",
            backend, profile.model.backend,
        )  # fmt: skip
        return {}
    e = profile.engine
    if backend == "onnxruntime" and e.intra_op_threads is not None:
        return {"intra_op_num_threads": e.intra_op_threads}
    if backend == "openvino":
        keys = {
            "performance_hint": e.performance_hint,
            "num_streams": e.num_streams,
            "max_batch": e.max_batch,
        }
        return {key: value for key, value in keys.items() if value is not None}
    if backend == "tensorrt" and e.workspace_mb is not None:
        return {"workspace_mb": e.workspace_mb, "timing_cache": e.timing_cache, "max_batch": e.max_batch,
                "opt_batch": e.opt_batch, "builder_optimization_level": e.builder_optimization_level}  # fmt: skip
    return {}


def event_policy(args: argparse.Namespace, profile: Any, bundle: Any) -> Any:
    """The event policy: each setting from its option, else the device profile's ``[events]`` key, else the
    bundle's event policy (chosen at export on validation videos; a bundle from before it: its threshold), else
    the runtime's default. An off threshold not given follows the on threshold at the profile's ``off_ratio``,
    else at the bundle's off/on ratio (0.8 for a bundle without an event policy)."""
    from .events import EventPolicy

    ev = profile.events if profile is not None else None
    base = bundle.event_policy
    bundle_src = "bundle event policy" if base is not None else "default"

    def pick(option: str, key: str, fallback: Any, fallback_src: str) -> tuple[Any, str]:
        if getattr(args, option) is not None:
            return getattr(args, option), "--" + option.replace("_", "-")
        if ev is not None and getattr(ev, key) is not None:
            return getattr(ev, key), f"profile {profile.name}"
        return fallback, fallback_src

    on, on_src = pick("on_threshold", "on_threshold", base.on_threshold if base else bundle.threshold,
                      "bundle event policy" if base is not None else "bundle threshold")  # fmt: skip
    if args.off_threshold is not None:
        off, off_src = args.off_threshold, "--off-threshold"
    elif ev is not None and ev.off_ratio is not None:
        off, off_src = on * ev.off_ratio, f"profile {profile.name} off_ratio"
    elif base is not None:
        same = on == base.on_threshold
        off = base.off_threshold if same else on * base.off_threshold / base.on_threshold
        off_src = "bundle event policy" if same else "the bundle event policy's off/on ratio"
    else:
        off, off_src = None, "0.8 x on"
    defaults = EventPolicy(on_threshold=on)
    min_s, min_src = pick("min_duration", "min_duration_s",
                          base.min_duration_s if base else defaults.min_duration_s, bundle_src)  # fmt: skip
    cool_s, cool_src = pick("cooldown", "cooldown_s", defaults.cooldown_s, "default")
    every_s, _ = pick("update_interval", "update_interval_s", defaults.update_interval_s, "default")
    try:
        policy = EventPolicy(on_threshold=on, off_threshold=off, min_duration_s=min_s, cooldown_s=cool_s,
                             update_interval_s=every_s)  # fmt: skip
    except ValueError as exc:
        raise UsageError(
            str(exc).replace("event policy ", "--").replace("_threshold", "-threshold")
        ) from None
    log.info(
        "event policy: on %.3f (%s), off %.3f (%s), min duration %g s (%s), cooldown %g s (%s)",
        policy.on_threshold, on_src, policy.off_threshold, off_src, policy.min_duration_s, min_src,
        policy.cooldown_s, cool_src,
    )  # fmt: skip
    return policy


def load_runtime_models(args: argparse.Namespace, profile: Any, bundle: Any) -> Any:
    from .models import load_models

    backend = args.backend or (profile.model.backend if profile is not None else None)
    return load_models(
        bundle,
        precision=args.precision or (profile.model.precision if profile is not None else None),
        backend=backend,
        device=args.inference_device or (profile.model.device if profile is not None else None),
        options=engine_options(profile, backend) if backend else {},
    )
