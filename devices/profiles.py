"""Device profiles: one TOML file per kind of device, telling the runtime how to run a bundle there.

stdlib only (``tomllib``): the device installs this without the workstation packages.

Schema (every section but ``[device]`` and ``[model]`` is optional; unknown sections or keys are errors)::

    [device]
    name = "Jetson Orin Nano"              # required, logged when edge-runtime starts ("device: ...")
    description = "..."                    # optional, logged after the name

    [model]
    backend = "tensorrt"                   # required: tensorrt | openvino | onnxruntime
    target = "jetson"                      # bundle target: jetson (tensorrt) | openvino, onnx (openvino) | onnx
                                           # (onnxruntime); default: the backend's own
    precision = "int8"                     # int8 | fp16 (tensorrt only) | fp32; default int8
    input_size = 224                       # square crop the bundle must have been exported for; default 224
    device = "cuda:0"                      # tensorrt: cuda:N; openvino: CPU | GPU | GPU.N | NPU | AUTO[:A,B];
                                           # onnxruntime: CPU; default cuda:0 / CPU / CPU

    [camera]
    pipeline = "nvarguscamerasrc sensor-id={sensor_id} ! ..."  # GStreamer template with {sensor_id}, {width},
                                           # {height}, {fps}; absent: a USB / V4L2 camera opened by index
    width = 1280                           # default 1280
    height = 720                           # default 720
    fps = 30                               # default 30

    [cameras.door]                         # IP cameras by name (any number of tables; optional)
    detect = "rtsp://10.0.0.5/sub"         # required: the stream that is scored (a camera's sub-stream)
    record = "rtsp://10.0.0.5/main"        # optional: its full-resolution stream (snapshots, clips)

    [streams]                              # how RTSP cameras' video is decoded
    decoder = "software"                   # software: OpenCV's FFmpeg, any OpenCV (default); nvv4l2decoder:
                                           # Jetson's hardware decoder, vaapi: Intel's VA-API, both in a
                                           # GStreamer pipeline (an OpenCV built with GStreamer; README)
    codec = "h264"                         # h264 | h265: what the cameras send (hardware decoders); default h264

    [engine]                               # only the keys of the profile's backend
    workspace_mb = 1024                    # tensorrt: builder workspace, 16-65536; default 1024
    timing_cache = true                    # tensorrt: true (beside the engines), false, or an absolute path
                                           # of the cache file; default true
    builder_optimization_level = 3         # tensorrt: 0-5; default 3 (TensorRT's own default)
    max_batch = 4                          # tensorrt, openvino: most snippets per backbone call, 1-64;
                                           # tensorrt: the engine profile's, default 4; openvino: default 1
                                           # on the CPU (a batch saves it no time and holds its memory),
                                           # no limit on a GPU
    opt_batch = 1                          # tensorrt: the batch the engine is tuned for (usually the number of
                                           # cameras), 1-max_batch; default 1
    performance_hint = "LATENCY"           # openvino: LATENCY | THROUGHPUT; default LATENCY
    num_streams = 1                        # openvino: 1-64 or "AUTO"; default: from the hint
    intra_op_threads = 0                   # onnxruntime: 0-256, 0: ONNX Runtime's choice; default 0

    [events]                               # the first three override the bundle's event policy (chosen at
                                           # export on validation videos); unset, the bundle's is used
    on_threshold = 0.5                     # in (0, 1); default: the bundle's (a bundle without a policy: its
                                           # threshold)
    off_ratio = 0.8                        # off threshold = on * off_ratio, in (0, 1]; default: the bundle's
                                           # off threshold, or its off/on ratio for another on (else 0.8)
    min_duration_s = 1.0                   # score above off this long (<= 3600 s) before a start; default:
                                           # the bundle's (else 1.0)
    cooldown_s = 5.0                       # quiet time (<= 86400 s) after an end before a start; default 5
    update_interval_s = 2.0                # one update per interval (<= 3600 s); default 2.0

    [clips]                                # event clips: see devices/clip_settings.py for every key

>>> load_profile("generic-cpu").model.backend
'onnxruntime'
"""

from __future__ import annotations

import dataclasses
import logging
import re
import string
from importlib import resources
from pathlib import Path
from typing import Any

from .clip_settings import parse_clips
from .profile_section import ProfileError, Section, describe_toml
from .profile_settings import (
    CameraSettings,
    CameraStreams,
    DeviceInfo,
    DeviceProfile,
    EngineSettings,
    EventSettings,
    ModelSettings,
    StreamSettings,
)

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, published as tomli
    try:
        import tomli as tomllib  # type: ignore[no-redef]
    except ModuleNotFoundError:
        tomllib = None  # type: ignore[assignment]

__all__ = [
    "BACKENDS",
    "EVENT_SECONDS_MAX",
    "ProfileError",
    "load_profile",
    "list_profiles",
    "parse_profile",
]

log = logging.getLogger(__name__)

BACKENDS = ("tensorrt", "openvino", "onnxruntime")
PRECISIONS = ("int8", "fp16", "fp32")
_TARGETS = {"tensorrt": ("jetson",), "openvino": ("openvino", "onnx"), "onnxruntime": ("onnx",)}
_DEVICE = {
    "tensorrt": (r"cuda:\d+", "cuda:N", "cuda:0"),
    "openvino": (
        r"CPU|GPU(\.\d+)?|NPU|AUTO(:[A-Z0-9.]+(,[A-Z0-9.]+)*)?",
        "CPU, GPU, GPU.N, NPU, AUTO[:A,B]",
        "CPU",
    ),
    "onnxruntime": (r"CPU", "CPU", "CPU"),
}
_ENGINE_KEYS = {
    "tensorrt": ("workspace_mb", "timing_cache", "builder_optimization_level", "max_batch", "opt_batch"),
    "openvino": ("performance_hint", "num_streams", "max_batch"),
    "onnxruntime": ("intra_op_threads",),
}
_TEMPLATE_FIELDS = ("sensor_id", "width", "height", "fps")
_SECTIONS = ("device", "model", "camera", "cameras", "streams", "engine", "events", "clips")
STREAM_DECODERS = ("software", "nvv4l2decoder", "vaapi")  # edge_runtime.stream_decoders builds each
STREAM_CODECS = ("h264", "h265")
# The largest values a device runs with; beyond them a key (or the matching edge-runtime option) is refused.
EVENT_SECONDS_MAX = {"min_duration_s": 3600.0, "cooldown_s": 86400.0, "update_interval_s": 3600.0}
MAX_WORKSPACE_MB, MAX_THREADS, MAX_STREAMS, MAX_BATCH = 65536, 256, 64, 64


def _model(data: dict[str, Any], where: str) -> ModelSettings:
    s = Section(data, "model", where)
    s.only(("backend", "target", "precision", "input_size", "device"))
    backend = s.choice("backend", BACKENDS)
    targets = _TARGETS[backend]
    target = s.choice("target", targets, targets[0])
    precision = s.choice("precision", PRECISIONS, "int8")
    if precision == "fp16" and backend != "tensorrt":
        raise s.error(f"[model] precision 'fp16' is only for backend tensorrt, not {backend}")
    pattern, shown, default_device = _DEVICE[backend]
    device = s.get("device", (str,), "a string", default_device)
    if not re.fullmatch(pattern, device):
        raise s.error(f"[model] device must be {shown} for backend {backend}, got {device!r}")
    return ModelSettings(
        backend=backend,
        target=target,
        precision=precision,
        input_size=s.integer("input_size", 1, 4096, 224),
        device=device,
    )


def _camera(data: dict[str, Any], where: str) -> CameraSettings:
    s = Section(data, "camera", where)
    s.only(("pipeline", "width", "height", "fps"))
    pipeline = s.get("pipeline", (str,), "a string", None)
    if pipeline is not None:
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(pipeline) if f is not None}
        except ValueError as exc:
            raise s.error(f"[camera] pipeline is not a valid template: {exc}") from None
        unknown = sorted(n for n in names if n not in _TEMPLATE_FIELDS)
        if unknown:
            raise s.error(
                f"[camera] pipeline has unknown placeholder(s) {unknown}; known: {', '.join(_TEMPLATE_FIELDS)}"
            )
    return CameraSettings(
        pipeline=pipeline,
        width=s.integer("width", 1, 16384, 1280),
        height=s.integer("height", 1, 16384, 720),
        fps=s.integer("fps", 1, 1000, 30),
    )


def _cameras(data: dict[str, Any], where: str) -> dict[str, CameraStreams]:
    tables = Section(data, "cameras", where).table
    cameras = {}
    for name, table in tables.items():
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
            raise ProfileError(f"{where}: [cameras.{name}]: a camera name is 1-64 letters, digits, - _ .")
        if not isinstance(table, dict):
            raise ProfileError(f"{where}: [cameras.{name}] must be a table, got {describe_toml(table)}")
        s = Section(tables, name, where)
        s.section = f"cameras.{name}"
        s.only(("detect", "record"))
        cameras[name] = CameraStreams(
            detect=s.get("detect", (str,), "a string"), record=s.get("record", (str,), "a string", None)
        )
    return cameras


def _streams(data: dict[str, Any], where: str) -> StreamSettings:
    s = Section(data, "streams", where)
    s.only(("decoder", "codec"))
    return StreamSettings(
        decoder=s.choice("decoder", STREAM_DECODERS, "software"),
        codec=s.choice("codec", STREAM_CODECS, "h264"),
    )


def _engine(data: dict[str, Any], backend: str, where: str) -> EngineSettings:
    s = Section(data, "engine", where)
    every = tuple(dict.fromkeys(k for keys in _ENGINE_KEYS.values() for k in keys))
    s.only(every)
    for key in s.table:
        owners = [b for b, keys in _ENGINE_KEYS.items() if key in keys]
        if backend not in owners:
            raise s.error(f"[engine] {key} applies to backend {' or '.join(owners)}, not {backend}")
    if backend == "tensorrt":
        cache = s.get("timing_cache", (bool, str), "true, false or an absolute path", True)
        if isinstance(cache, str) and not Path(cache).expanduser().is_absolute():
            raise s.error(f"[engine] timing_cache must be true, false or an absolute path, got {cache!r}")
        max_batch = s.integer("max_batch", 1, MAX_BATCH, 4)
        return EngineSettings(
            workspace_mb=s.integer("workspace_mb", 16, MAX_WORKSPACE_MB, 1024),
            timing_cache=cache,
            builder_optimization_level=s.integer("builder_optimization_level", 0, 5, 3),
            max_batch=max_batch,
            opt_batch=s.integer("opt_batch", 1, max_batch, 1),
        )
    if backend == "openvino":
        streams = s.get("num_streams", (int, str), 'a positive integer or "AUTO"', None)
        if streams is not None and (
            streams != "AUTO" if isinstance(streams, str) else not 1 <= streams <= MAX_STREAMS
        ):
            raise s.error(
                f'[engine] num_streams must be a positive integer <= {MAX_STREAMS} or "AUTO", got {streams!r}'
            )
        return EngineSettings(
            performance_hint=s.choice("performance_hint", ("LATENCY", "THROUGHPUT"), "LATENCY"),
            num_streams=streams,
            max_batch=s.integer("max_batch", 1, MAX_BATCH, None),  # None: the backend's default
        )
    return EngineSettings(intra_op_threads=s.integer("intra_op_threads", 0, MAX_THREADS, 0))


def _events(data: dict[str, Any], where: str) -> EventSettings:
    s = Section(data, "events", where)
    s.only(tuple(f.name for f in dataclasses.fields(EventSettings)))
    return EventSettings(
        on_threshold=s.number("on_threshold", None, low=0.0, high=1.0, open_low=True, open_high=True),
        off_ratio=s.number("off_ratio", None, low=0.0, high=1.0, open_low=True),
        min_duration_s=s.number("min_duration_s", None, low=0.0, high=EVENT_SECONDS_MAX["min_duration_s"]),
        cooldown_s=s.number("cooldown_s", 5.0, low=0.0, high=EVENT_SECONDS_MAX["cooldown_s"]),
        update_interval_s=s.number(
            "update_interval_s", 2.0, low=0.0, open_low=True, high=EVENT_SECONDS_MAX["update_interval_s"]
        ),
    )


def parse_profile(text: str, *, name: str, where: str) -> DeviceProfile:
    """Parse and validate the TOML ``text`` of a profile; ``where`` names the file in error messages."""
    if tomllib is None:
        raise ProfileError(
            f"{where}: reading device profiles needs Python 3.11+ (tomllib) or the tomli package"
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{where}: invalid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per nesting level of arrays / inline tables
        raise ProfileError(f"{where}: invalid TOML: arrays or tables nested too deeply") from None
    for section in data:
        if section not in _SECTIONS:
            raise ProfileError(f"{where}: unknown section [{section}]; known: {', '.join(_SECTIONS)}")
    if "device" not in data or "model" not in data:
        missing = "device" if "device" not in data else "model"
        raise ProfileError(f"{where}: section [{missing}] is missing")
    dev = Section(data, "device", where)
    dev.only(("name", "description"))
    model = _model(data, where)
    return DeviceProfile(
        name=name,
        source=where,
        device=DeviceInfo(
            name=dev.get("name", (str,), "a string"),
            description=dev.get("description", (str,), "a string", ""),
        ),
        model=model,
        camera=_camera(data, where),
        engine=_engine(data, model.backend, where),
        events=_events(data, where),
        cameras=_cameras(data, where),
        streams=_streams(data, where),
        clips=parse_clips(Section(data, "clips", where)) if "clips" in data else None,
    )


def list_profiles() -> list[str]:
    """Names of the profiles shipped in the ``devices`` package, sorted."""
    return sorted(
        p.name[: -len(".toml")] for p in resources.files("devices").iterdir() if p.name.endswith(".toml")
    )


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """Load a profile by shipped name (``"jetson-orin-nano"``) or by path to a ``.toml`` file."""
    as_text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in as_text or "\\" in as_text or as_text.endswith(".toml"):
        path = Path(name_or_path)
        if not path.is_file():
            raise ProfileError(f"device profile {path} does not exist or is not a file")
        data, name, where = path.read_bytes(), path.stem, str(path)
    else:
        resource = resources.files("devices") / f"{as_text}.toml"
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", as_text) or not resource.is_file():
            raise ProfileError(
                f"unknown device profile {as_text!r}; shipped: {', '.join(list_profiles())} "
                "(or give the path of a .toml file)"
            )
        data, name, where = resource.read_bytes(), as_text, f"{as_text}.toml"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    profile = parse_profile(text, name=name, where=where)
    log.debug("loaded device profile %s from %s", name, where)
    return profile
