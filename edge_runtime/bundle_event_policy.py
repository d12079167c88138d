"""The manifest's optional ``event_policy`` object: when the device's scores become events, chosen at export.

``i3dmtn export`` replays the validation videos' streaming scores through the runtime's own event state
machine and records the policy that alerted the most validation fights without a false alarm::

    "event_policy": {"schema": "i3dmtn.event_policy/1", "on_threshold": 0.45, "off_threshold": 0.27,
                     "min_duration_s": 0.5}

The runtime uses it as its default event policy; a device profile's ``[events]`` keys and the command-line
options still win over it. A bundle without it (exported before it existed, or without validation videos)
keeps the old defaults: on = the bundle's ``threshold``, off = 0.8 x on, 1 s minimum duration. The object is
versioned by its own ``schema``: a version this runtime does not know is refused, never half-read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge_runtime.bundle_manifest import Field

__all__ = ["EVENT_POLICY_SCHEMA", "BundleEventPolicy", "parse_event_policy"]

EVENT_POLICY_SCHEMA = "i3dmtn.event_policy/1"
_MAX_DURATION_S = 3600.0  # an hour above the threshold before an alert is no event policy but a typo


@dataclass(frozen=True)
class BundleEventPolicy:
    """The event thresholds and minimum duration a bundle recommends (see the module docstring)."""

    on_threshold: float  # an event begins at a score at or above it
    off_threshold: float  # and ends below it (<= on_threshold)
    min_duration_s: float  # seconds at or above off_threshold before ``start`` is sent

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": EVENT_POLICY_SCHEMA,
            "on_threshold": self.on_threshold,
            "off_threshold": self.off_threshold,
            "min_duration_s": self.min_duration_s,
        }


def parse_event_policy(obj: Any, where: str) -> BundleEventPolicy:
    """Validate the ``event_policy`` object; one-line :class:`~edge_runtime.bundle_manifest.BundleError`."""
    f = Field(obj, "event_policy", where)
    schema = f.get("schema", str)
    if schema != EVENT_POLICY_SCHEMA:
        raise f.error(
            f"event_policy.schema {schema!r} is not supported: this runtime reads {EVENT_POLICY_SCHEMA!r} "
            "(update edge-runtime or export again)"
        )
    f.only(("schema", "on_threshold", "off_threshold", "min_duration_s"))
    on = f.number("on_threshold", 0.0, 1.0, low_open=True)
    off = f.number("off_threshold", 0.0, 1.0)
    if off > on:
        raise f.error(f"event_policy.off_threshold ({off}) must be <= event_policy.on_threshold ({on})")
    return BundleEventPolicy(
        on_threshold=on, off_threshold=off, min_duration_s=f.number("min_duration_s", 0.0, _MAX_DURATION_S)
    )
