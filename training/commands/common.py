"""Option helpers shared by the ``train``, ``features`` and ``evaluate`` commands (argparse only at import)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from edge_runtime.usage import UsageError
from training.configs import CONFIG_NAMES

__all__ = ["add_config_arguments", "add_set_argument", "parse_set", "config_from_args"]


def add_config_arguments(
    parser: argparse._ActionsContainer, default: str | None = "default", default_text: str = "%(default)s"
) -> None:
    """``--config NAME`` and ``--set KEY=VALUE`` on ``parser`` (or one of its argument groups)."""
    parser.add_argument(
        "--config",
        default=default,
        metavar="NAME",
        help=f"experiment preset: {', '.join(CONFIG_NAMES)} (default: {default_text})",
    )
    add_set_argument(
        parser,
        "override one config key, e.g. --set frame_size=112 --set augment_flip=false (repeatable; "
        "VALUE is read as JSON, else as a string)",
    )


def add_set_argument(parser: argparse._ActionsContainer, help_text: str) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.overrides``; read them with :func:`parse_set`."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help_text
    )


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``["a=1", "b=true", "name=x"]`` -> ``{"a": 1, "b": True, "name": "x"}``; UsageError for a bad item."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        out[key.strip()] = value
    return out


def config_from_args(
    args: argparse.Namespace, base: dict[str, Any] | None = None, **flags: Any
) -> dict[str, Any]:
    """The preset ``--config`` (when it is None: ``base``, else ``default``) with ``--set`` overrides, then
    the given flag values (None = not given)."""
    from training.configs import ConfigError, create_experiment_config, get_config

    overrides = parse_set(args.overrides)
    overrides.update({k: v for k, v in flags.items() if v is not None})
    try:
        start = base if args.config is None and base is not None else get_config(args.config or "default")
        return create_experiment_config(start, **overrides)
    except ConfigError as exc:
        raise UsageError(f"--config/--set: {exc}") from None
