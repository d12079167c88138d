"""The runtime's event policy: the bundle's (chosen at export) by default; profile keys and options win over it.

The tiny bundle's score is brightness (see runtime_helpers): a short bright spell is a short fight.
"""

from __future__ import annotations

import sys

import pytest

from devices.profiles import load_profile
from edge_runtime.broker import LocalBroker
from edge_runtime.bundle import load_bundle
from edge_runtime.bundle_event_policy import BundleEventPolicy
from edge_runtime.cli_options import build_parser
from edge_runtime.cli_settings import event_policy
from tests.edge_runtime.runtime_helpers import (
    BRIGHT,
    DARK,
    Subscriber,
    finish,
    make_bundle,
    make_video,
    start_runtime,
)

CHOSEN = BundleEventPolicy(on_threshold=0.7, off_threshold=0.35, min_duration_s=0.25)


@pytest.fixture(scope="module")
def chosen(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("chosen"), event_policy=CHOSEN.to_dict())


@pytest.fixture(scope="module")
def older(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("older"))  # no event_policy: exported before it existed


def _policy(bundle, *options: str, profile_events: str | None = None, tmp_path=None):
    args = build_parser().parse_args(
        ["--bundle", str(bundle), "--device-id", "d", "--source", "x.mp4", *options]
    )
    profile = None
    if profile_events is not None:
        path = tmp_path / "box.toml"
        path.write_text(
            f'[device]\nname = "box"\n[model]\nbackend = "onnxruntime"\n[events]\n{profile_events}\n'
        )
        profile = load_profile(path)
    return event_policy(args, profile, load_bundle(bundle))


def _numbers(policy):
    return policy.on_threshold, policy.off_threshold, policy.min_duration_s, policy.cooldown_s


def test_the_bundles_event_policy_is_the_default(chosen):
    assert _numbers(_policy(chosen)) == pytest.approx((0.7, 0.35, 0.25, 5.0))


def test_a_bundle_without_one_keeps_the_old_defaults(older):
    assert _numbers(_policy(older)) == pytest.approx((0.5, 0.4, 1.0, 5.0))  # threshold, 0.8 x on, 1 s


def test_profile_keys_win_over_the_bundle(chosen, tmp_path):
    policy = _policy(chosen, profile_events="off_ratio = 0.5\nmin_duration_s = 2.0", tmp_path=tmp_path)
    assert _numbers(policy) == pytest.approx((0.7, 0.35, 2.0, 5.0))
    pinned = _policy(chosen, profile_events="on_threshold = 0.6", tmp_path=tmp_path)
    # the off threshold follows a new on threshold at the bundle's off/on ratio (0.5 here)
    assert _numbers(pinned) == pytest.approx((0.6, 0.3, 0.25, 5.0))


def test_options_win_over_the_profile_and_the_bundle(chosen, tmp_path):
    policy = _policy(chosen, "--min-duration", "1.5", "--off-threshold", "0.2", "--cooldown", "1",
                     profile_events="off_ratio = 0.5\nmin_duration_s = 2.0", tmp_path=tmp_path)  # fmt: skip
    assert _numbers(policy) == pytest.approx((0.7, 0.2, 1.5, 1.0))
    assert _numbers(_policy(chosen, "--on-threshold", "0.9")) == pytest.approx((0.9, 0.45, 0.25, 5.0))


def test_the_runtime_raises_events_by_the_bundles_policy(chosen, older, tmp_path):
    # 0.6 s of brightness: ~0.4 s of snippet scores above the threshold, long enough for the bundle's 0.25 s
    # minimum duration, too short for the runtime's default 1 s (the older bundle raises nothing)
    video = make_video(tmp_path / "short_fight.mp4", [(1, DARK), (0.6, BRIGHT), (1, DARK)])
    starts = {}
    with LocalBroker() as broker:
        for name, bundle in (("chosen", chosen), ("older", older)):
            sub = Subscriber(broker.port)
            argv = ["--bundle", str(bundle), "--broker", f"127.0.0.1:{broker.port}", "--device-id", name,
                    "--outbox", str(tmp_path / f"{name}.sqlite"), "--source", f"cam={video}"]  # fmt: skip
            code, err = finish(start_runtime([sys.executable, "-m", "edge_runtime.cli", *argv]))
            assert code == 0, err[-2000:]
            sub.wait_for(lambda s: any(e["type"] == "end" for e in s.events()), timeout=3)
            sub.close()
            starts[name] = [e for e in sub.events() if e["type"] == "start"]
            if name == "chosen":
                assert "event policy: on 0.700 (bundle event policy)" in err
    assert len(starts["chosen"]) == 1 and starts["chosen"][0]["threshold"] == pytest.approx(0.7)
    assert starts["older"] == []
