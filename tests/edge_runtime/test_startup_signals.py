"""SIGTERM / SIGINT during ``edge-runtime``'s start-up (while the bundle and the models load): exit 0 at once,
and what the outbox holds from a previous run is left for the next start."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from edge_runtime.outbox import Outbox, OutboxMessage
from tests.edge_runtime.runtime_helpers import (
    DARK,
    finish,
    make_bundle,
    make_video,
    runtime_argv,
    start_runtime,
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("signals_bundle"))


@pytest.fixture(scope="module")
def calm(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("signals_video") / "calm.mp4", [(1, DARK)])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_the_models_load_exits_zero_and_keeps_the_outbox(bundle, calm, tmp_path, sig):
    outbox = tmp_path / "outbox.sqlite"
    with Outbox(outbox) as box:  # a previous run's events, not sent yet
        box.put_many(
            [OutboxMessage("i3dmtn/dev1/events", b'{"pending": %d}' % i, kind="start") for i in range(3)]
        )
    proc = start_runtime(runtime_argv(bundle, 9, outbox, [f"hall={calm}"]))
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    seen = []
    while time.monotonic() < deadline:  # the bundle is read; the models (ONNX Runtime) load next
        line = proc.stderr.readline()
        seen.append(line)
        if "loaded bundle" in line or not line:
            break
    code, err = finish(proc, sig=sig)
    log = "".join(seen) + err
    assert code == 0, log[-3000:]
    assert "running:" not in log and "Traceback" not in log, log[-3000:]
    assert "during start-up" in log
    with Outbox(outbox) as box:
        assert box.backlog == 3


# ``edge-runtime``'s own arguments (no interpreter, no module); nothing is opened: ``_run`` is replaced
_IN_PROCESS_ARGV = runtime_argv(Path("bundle"), 9, Path("outbox.sqlite"), ["hall=calm.mp4"])[3:]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_that_resurfaces_as_an_import_error_still_exits_zero(monkeypatch, capsys, sig):
    """A signal inside a C extension's import comes back as that import's error (CI saw ONNX Runtime's
    "initialization failed" once): start-up stopped, exit 0, no error line."""
    from edge_runtime import cli
    from edge_runtime.backends.base import BackendUnavailable

    def run_interrupted_in_an_import(args, signals):
        try:
            signals(sig, None)  # the handler, as Python calls it inside the extension's initialisation
        except BaseException as exc:  # what the extension's init turns any exception into
            raise BackendUnavailable(f"cannot be imported (initialization failed): {exc}") from exc
        raise AssertionError("the handler did not raise")

    monkeypatch.setattr(cli, "_run", run_interrupted_in_an_import)
    before = signal.getsignal(sig)
    assert cli.main(_IN_PROCESS_ARGV) == 0
    assert "error" not in capsys.readouterr().err
    assert signal.getsignal(sig) is before  # the handlers were restored


def test_a_real_backend_error_without_a_signal_still_exits_one(monkeypatch, capsys):
    from edge_runtime import cli
    from edge_runtime.backends.base import BackendUnavailable

    def run_failing(args, signals):
        raise BackendUnavailable("the onnxruntime backend needs the Python package 'onnxruntime'")

    monkeypatch.setattr(cli, "_run", run_failing)
    assert cli.main(_IN_PROCESS_ARGV) == 1
    assert "edge-runtime: error: the onnxruntime backend needs" in capsys.readouterr().err
