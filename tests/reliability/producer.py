"""A stand-in for the runtime's publishing path, run as a process by the reliability tests.

A seeded synthetic fight-score stream (quiet stretches, fights of random length, noise) goes through
:class:`~edge_runtime.events.EventStateMachine` and :meth:`~edge_runtime.mqtt.MqttPublisher.publish_event`,
exactly as ``edge-runtime`` publishes, at an accelerated clock (0.1 s of stream time per score). After each
``publish_event`` returns (the row is fsync'd in the outbox) one JSONL line ``{"event_id", "seq", "type",
"row"}`` is appended to ``--log`` and flushed, so the log never claims more than the outbox holds.

``--messages N``: stop after N messages (closing an open event), drain the outbox, exit 0 if it is empty.
``--messages 0``: publish forever (a tight write loop for kill tests). ``--messages -1``: publish nothing,
only drain what an earlier (killed) process left in the outbox.

    python -m tests.reliability.producer --broker 127.0.0.1:1883 --outbox o.sqlite --log produced.jsonl
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from collections.abc import Iterator

from edge_runtime.events import EventPolicy, EventStateMachine
from edge_runtime.mqtt import MqttPublisher
from edge_runtime.mqtt_settings import MqttSettings, add_mqtt_arguments
from edge_runtime.outbox import Outbox

__all__ = ["fight_scores", "main"]

log = logging.getLogger(__name__)

STEP_S = 0.1  # stream time between two scores (10 scores per stream second)
POLICY = EventPolicy(0.6, 0.4, min_duration_s=0.2, cooldown_s=0.3, update_interval_s=0.4)


def fight_scores(seed: int) -> Iterator[float]:
    """Endless scores: quiet stretches (~0.1), fights (~0.85) with dips, each of a random length."""
    rng = random.Random(seed)
    while True:
        for _ in range(rng.randint(3, 20)):  # quiet
            yield min(1.0, max(0.0, rng.gauss(0.1, 0.08)))
        for _ in range(rng.randint(2, 40)):  # a fight (or a blip when short)
            yield min(1.0, max(0.0, rng.gauss(0.85, 0.12)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="producer", description=__doc__.splitlines()[0])
    add_mqtt_arguments(parser)
    parser.add_argument("--outbox", required=True)
    parser.add_argument("--log", required=True, help="JSONL log of every message put in the outbox")
    parser.add_argument("--device", required=True)
    parser.add_argument("--camera", default="cam-1")
    parser.add_argument(
        "--messages", type=int, default=100, help="N > 0: stop after N; 0: forever; -1: drain"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--interval", type=float, default=0.0, help="real seconds to sleep between scores")
    parser.add_argument("--flush-timeout", type=float, default=60.0)
    parser.add_argument("-v", "--verbose", action="store_true", help="DEBUG logs (paho's included)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    outbox = Outbox(args.outbox)
    publisher = MqttPublisher(MqttSettings.from_args(args), args.device, outbox).start()
    machine = EventStateMachine(args.device, args.camera, POLICY, {"name": "reliability"})
    produced = 0
    with open(args.log, "a", encoding="utf-8") as journal:

        def publish(messages: list[dict]) -> None:
            nonlocal produced
            for message in messages:
                row = publisher.publish_event(message)
                keys = ("event_id", "seq", "type")
                journal.write(json.dumps({**{k: message[k] for k in keys}, "row": row}) + "\n")
                journal.flush()  # in the kernel: survives a SIGKILL of this process
                produced += 1

        t = time.time()
        scores = fight_scores(args.seed)
        while args.messages == 0 or 0 <= produced < args.messages:
            publish(machine.observe(next(scores), t))
            t += STEP_S
            if args.interval:
                time.sleep(args.interval)
        publish(machine.close(t))
    publisher.stop(flush_timeout=args.flush_timeout)
    left = outbox.backlog
    ok = outbox.integrity_ok()
    outbox.close()
    summary = {"produced": produced, "reconnects": publisher.reconnects, "backlog": left, "integrity_ok": ok}
    print(json.dumps(summary), flush=True)
    return 0 if left == 0 and ok else 3


if __name__ == "__main__":
    sys.exit(main())
