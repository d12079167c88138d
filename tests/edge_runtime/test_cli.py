"""``edge-runtime`` options: help, one-line errors with exit 2 (usage) or 1 (runtime), secrets kept out of argv/logs."""

from __future__ import annotations

import getpass
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_runtime.broker import LocalBroker, find_mosquitto
from edge_runtime.cli_options import build_parser
from edge_runtime.cli_settings import default_outbox, engine_options
from tests.edge_runtime.runtime_helpers import (
    CROP,
    DARK,
    ROOT,
    Subscriber,
    finish,
    make_bundle,
    make_video,
    runtime_argv,
    start_runtime,
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("cli_bundle"))


@pytest.fixture(scope="module")
def calm(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("cli_video") / "calm.mp4", [(3, DARK)])


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_runtime.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env)  # fmt: skip


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    """The error is one line, the last; log lines of the work done before it may precede it; no traceback."""
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("edge-runtime: error: ")]
    assert errors == lines[-1:] and "Traceback" not in result.stderr, result.stderr
    return errors[0]


def test_help_explains_every_option_and_the_password_variables():
    result = _cli("--help")
    assert result.returncode == 0
    text = re.sub(r"\s+", " ", result.stdout)
    for action in build_parser()._actions:
        long = [o for o in action.option_strings if o.startswith("--")]
        if long:
            assert long[0] in text and action.help, long[0]
    assert (
        "I3DMTN_MQTT_PASSWORD " in text and "I3DMTN_MQTT_PASSWORD_FILE" in text and "STATE_DIRECTORY" in text
    )


def test_unknown_option_exits_2_with_one_line():
    result = _cli("--bundle", "b", "--device-id", "d", "--camera", "0", "--frobnicate")
    assert result.returncode == 2
    assert "--frobnicate" in _one_error_line(result)


def test_device_id_with_a_wildcard_is_refused(bundle, calm):
    result = _cli("--bundle", str(bundle), "--source", str(calm), "--device-id", "dev#1")
    assert result.returncode == 2
    assert "--device-id 'dev#1'" in _one_error_line(result)


def test_no_camera_is_a_usage_error(bundle):
    result = _cli("--bundle", str(bundle), "--device-id", "dev1")
    assert result.returncode == 2
    assert "--camera" in _one_error_line(result)


def test_two_sources_with_one_name_is_a_usage_error(bundle, calm):
    result = _cli(
        "--bundle", str(bundle), "--device-id", "dev1", "--source", f"a={calm}", "--source", f"a={calm}"
    )
    assert result.returncode == 2
    assert "'a'" in _one_error_line(result)


def test_bad_threshold_value_is_a_usage_error(bundle, calm):
    result = _cli("--bundle", str(bundle), "--device-id", "d", "--source", str(calm), "--on-threshold", "1.5")
    assert result.returncode == 2
    assert "--on-threshold" in _one_error_line(result)


def test_missing_bundle_exits_1_naming_it(tmp_path, calm):
    result = _cli("--bundle", str(tmp_path / "nope"), "--device-id", "dev1", "--source", str(calm))
    assert result.returncode == 1
    assert str(tmp_path / "nope") in _one_error_line(result)


def test_unreachable_camera_exits_1_naming_it(bundle, tmp_path):
    result = _cli("--bundle", str(bundle), "--device-id", "dev1", "--camera", "97",
                  "--outbox", str(tmp_path / "o.sqlite"), "--broker", "127.0.0.1:9")  # fmt: skip
    assert result.returncode == 1
    assert "camera 97" in _one_error_line(result)


def test_missing_backend_library_exits_1_saying_what_to_install(bundle, calm, tmp_path):
    if shutil.which("trtexec") or _importable("tensorrt"):
        pytest.skip("TensorRT is installed here")
    result = _cli("--bundle", str(bundle), "--device-id", "dev1", "--source", str(calm), "--backend", "tensorrt",
                  "--outbox", str(tmp_path / "o.sqlite"))  # fmt: skip
    assert result.returncode == 1
    assert "pip install i3d-mtn-edge[jetson]" in _one_error_line(result)


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_default_outbox_is_in_the_state_directory_or_home():
    assert default_outbox("dev1", {"STATE_DIRECTORY": "/var/lib/i3dmtn"}) == Path(
        "/var/lib/i3dmtn/outbox-dev1.sqlite"
    )
    assert default_outbox("dev1", {}) == Path.home() / ".local/state/i3dmtn/outbox-dev1.sqlite"


def test_show_without_a_display_warns_and_runs(bundle, calm, tmp_path, broker):
    argv = runtime_argv(
        bundle, broker.port, tmp_path / "o.sqlite", [str(calm)], "--show", "--log-format", "text"
    )
    proc = start_runtime(argv, env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    code, err = finish(proc)
    assert code == 0, err[-2000:]
    assert re.search(r"WARNING .*--show: cannot open a window", err)


def test_password_from_the_environment_is_never_in_argv_or_the_debug_log(bundle, calm, tmp_path):
    if find_mosquitto() is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("needs Mosquitto with mosquitto_passwd for a broker that checks passwords")
    secret = "s3cret-Pa55-word"
    passwd = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwd), "edge", secret], check=True, capture_output=True
    )
    lines = ["allow_anonymous false", f"password_file {passwd}", f"user {getpass.getuser()}"]
    with LocalBroker(config_lines=lines) as broker:
        sub = Subscriber(broker.port, username="edge", password=secret)
        argv = runtime_argv(bundle, broker.port, tmp_path / "o.sqlite", [str(calm)], "--realtime",
                            "--username", "edge", "--log-level", "DEBUG")  # fmt: skip
        proc = start_runtime(argv, env={"I3DMTN_MQTT_PASSWORD": secret})
        assert sub.wait_for(lambda s: b"online" in s.payloads("/status"), timeout=60), (
            "the runtime never connected"
        )
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        code, err = finish(proc)
        sub.close()
    assert secret.encode() not in cmdline and b"--username" in cmdline
    assert code == 0, err[-2000:]
    assert '"level": "DEBUG"' in err and secret not in err


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--max-queue", "100000000", "--max-queue must be in [1, 300]"),
        ("--flush-timeout", "inf", "expected seconds in [0, 600]"),
        ("--stats-interval", "1e12", "expected seconds in [0, 3600]"),
        ("--min-duration", "1e9", "expected seconds in [0, 3600]"),
        ("--cooldown", "1e300", "expected seconds in [0, 86400]"),
        ("--update-interval", "1e9", "expected seconds in [0, 3600]"),
    ],
)
def test_numbers_beyond_what_a_device_runs_are_usage_errors(bundle, calm, tmp_path, option, value, says):
    result = _cli("--bundle", str(bundle), "--device-id", "dev1", "--source", str(calm),
                  "--outbox", str(tmp_path / "o.sqlite"), option, value)  # fmt: skip
    assert result.returncode == 2
    line = _one_error_line(result)
    assert option in line and says in line, line


def test_the_device_profile_s_name_and_description_are_logged_at_start(bundle, calm, tmp_path):
    profile = tmp_path / "porch.toml"
    profile.write_text(
        '[device]\nname = "Porch NUC"\ndescription = "the camera over the door"\n[model]\n'
        f'backend = "onnxruntime"\ntarget = "onnx"\nprecision = "fp32"\ninput_size = {CROP}\n'
    )
    (tmp_path / "o.sqlite").mkdir()  # the start stops at the outbox, after the profile is read
    result = _cli("--bundle", str(bundle), "--device-id", "dev1", "--source", str(calm), "--device-profile",
                  str(profile), "--outbox", str(tmp_path / "o.sqlite"), "--broker", "127.0.0.1:9")  # fmt: skip
    assert result.returncode == 1 and "is a folder" in _one_error_line(result)
    assert f"device: Porch NUC - the camera over the door (device profile {profile})" in result.stderr


def test_a_backend_other_than_the_profile_s_gets_none_of_its_engine_settings_and_says_so(caplog):
    from devices.profiles import load_profile

    profile = load_profile("intel-nuc")  # openvino, with [engine] performance_hint etc.
    assert engine_options(profile, "openvino")
    with caplog.at_level("WARNING", logger="edge_runtime.cli_settings"):
        assert engine_options(profile, "onnxruntime") == {}
    assert "[engine] settings are for openvino and are not used" in caplog.text
