"""Log lines for the device: readable text for a terminal, one JSON object per line for journald / a collector.

Both carry time, level, logger and message; JSON lines also carry any ``extra={...}`` fields a caller adds
(``event_id``, ``seq``, ``camera``...), so a log shipper can index them. Secrets given to :func:`setup_logging`
(the MQTT password) are masked in every line, whoever logs them: a second line of defence behind "never log it".

>>> import io, json, logging
>>> stream = io.StringIO()
>>> setup_logging("json", "INFO", stream=stream, secrets=["hunter2"])
>>> logging.getLogger("demo").info("password is %s", "hunter2", extra={"camera": "door"})
>>> line = json.loads(stream.getvalue())
>>> line["message"], line["camera"]
('password is ***', 'door')
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

__all__ = ["LOG_FORMATS", "LOG_LEVELS", "JsonFormatter", "TextFormatter", "quiet_logger", "setup_logging"]

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

# Attributes every LogRecord has: anything else on a record came from ``extra=`` and is a structured field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class _Masking:
    """Replaces each secret with ``***`` in a formatted line."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


class TextFormatter(logging.Formatter):
    """``2026-01-02T10:00:00.123Z INFO edge_runtime.runtime: message`` (one line; the message already says what
    the extra fields hold, so they are not repeated)."""

    def __init__(self, mask: _Masking | None = None) -> None:
        super().__init__()
        self.mask = mask or _Masking(())

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = f"{stamp}.{int(record.msecs):03d}Z {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += " | " + self.formatException(record.exc_info).replace("\n", " | ")
        return self.mask(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (epoch s), ``level``, ``logger``, ``message`` and the extra fields."""

    def __init__(self, mask: _Masking | None = None) -> None:
        super().__init__()
        self.mask = mask or _Masking(())

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update(_extras(record))
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return self.mask(json.dumps(doc, default=str, ensure_ascii=False))


def setup_logging(
    fmt: str = "text",
    level: str | int = "INFO",
    *,
    stream: IO[str] | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """Send every log record at ``level`` or above to ``stream`` (stderr) as ``fmt`` ("text" | "json") lines.

    Replaces the root logger's handlers, so calling it twice does not duplicate lines.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"--log-format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    mask = _Masking(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(mask) if fmt == "json" else TextFormatter(mask))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)


@contextlib.contextmanager
def quiet_logger(name: str | None, level: int) -> Iterator[None]:
    """Logger ``name`` (None: the root) at ``level`` or above for the block, then as it was."""
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(max(before, level))
    try:
        yield
    finally:
        logger.setLevel(before)
