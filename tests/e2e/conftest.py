"""One run of ``i3dmtn demo --feedback`` shared by the demo's end-to-end tests: the plain demo's stages are its
first six, so the chain tests and the feedback loop's tests read the same run (one ~6 minute run, not two)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# the demo with its feedback loop takes ~6 minutes on 2 idle cores, longer on shared ones: its own limit is
# the subprocess's, not the suite's 600 s per test
DEMO_TIMEOUT_S = 1500


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> tuple[Path, str]:
    """``(out folder, stdout)`` of ``i3dmtn demo --feedback``, which must have exited 0. Its temporary files
    (the broker's config among them) are in the out folder's sibling ``tmp/``, so that the processes it leaves
    can be told from other test sessions' on the same machine."""
    out = tmp_path_factory.mktemp("chain") / "demo"
    (out.parent / "tmp").mkdir()
    exe = Path(sys.executable).parent / "i3dmtn"
    result = subprocess.run(
        [str(exe), "demo", "--feedback", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        env={**os.environ, "TMPDIR": str(out.parent / "tmp")},
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return out, result.stdout
