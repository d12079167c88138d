"""What a loaded device profile holds: one frozen dataclass per section (:mod:`devices.profiles` parses the
TOML file into them and documents every key).

stdlib only: the device installs this without the workstation packages.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .clip_settings import ClipSettings

__all__ = [
    "DeviceInfo",
    "ModelSettings",
    "CameraSettings",
    "CameraStreams",
    "StreamSettings",
    "EngineSettings",
    "EventSettings",
    "DeviceProfile",
]


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    description: str = ""


@dataclass(frozen=True)
class ModelSettings:
    backend: str
    target: str
    precision: str = "int8"
    input_size: int = 224
    device: str = "CPU"


@dataclass(frozen=True)
class CameraSettings:
    pipeline: str | None = None  # GStreamer template; None: USB / V4L2 camera
    width: int = 1280
    height: int = 720
    fps: int = 30


@dataclass(frozen=True)
class CameraStreams:
    """An IP camera of ``[cameras.NAME]``: the stream scored and, optionally, its full-resolution one."""

    detect: str
    record: str | None = None


@dataclass(frozen=True)
class StreamSettings:
    """``[streams]``: how RTSP cameras are decoded (see ``edge_runtime.stream_decoders``)."""

    decoder: str = "software"  # works with any OpenCV on any device
    codec: str = "h264"  # what most IP cameras send by default


@dataclass(frozen=True)
class EngineSettings:
    """Backend options; those of other backends stay None."""

    workspace_mb: int | None = None
    timing_cache: bool | str | None = None  # tensorrt: True, False or an absolute path
    builder_optimization_level: int | None = None
    max_batch: int | None = None
    opt_batch: int | None = None
    performance_hint: str | None = None
    num_streams: int | str | None = None
    intra_op_threads: int | None = None


@dataclass(frozen=True)
class EventSettings:
    # None: not set here, so the bundle's event policy decides (edge_runtime.cli_settings.event_policy)
    on_threshold: float | None = None
    off_ratio: float | None = None  # hysteresis: a score must fall well below "on" to end an event
    min_duration_s: float | None = None  # one noisy snippet does not start an event
    cooldown_s: float = 5.0  # one fight is one event, not a burst of them
    update_interval_s: float = 2.0  # keeps MQTT traffic bounded during a long event


@dataclass(frozen=True)
class DeviceProfile:
    """A loaded device profile; ``name`` is the file's stem, ``source`` where it was read from."""

    name: str
    source: str
    device: DeviceInfo
    model: ModelSettings
    camera: CameraSettings
    engine: EngineSettings
    events: EventSettings
    cameras: dict[str, CameraStreams] = dataclasses.field(default_factory=dict)
    streams: StreamSettings = StreamSettings()
    clips: ClipSettings | None = None  # None: no [clips] section, no clips unless edge-runtime --clips-dir

    def camera_pipeline(self, sensor_id: int = 0) -> str | None:
        """The camera's GStreamer pipeline with its placeholders filled, or None for a USB / V4L2 camera."""
        if self.camera.pipeline is None:
            return None
        c = self.camera
        return c.pipeline.format(sensor_id=int(sensor_id), width=c.width, height=c.height, fps=c.fps)

    def describe(self) -> str:
        """One line for the start-up log: ``[device] name``, its description, and where the profile came from."""
        about = f" - {self.device.description}" if self.device.description else ""
        return f"{self.device.name}{about} (device profile {self.source})"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
