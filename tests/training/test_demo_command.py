"""``i3dmtn demo``'s options: each bad value is one line naming the option, before anything runs."""

from __future__ import annotations

import pytest

from training.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gym", "8"], "--gym sets the scenes of --feedback; add --feedback or leave out --gym"),
        (["--feedback", "--gym", "0"], "--gym must be >= 1, got 0"),
        (["--torch-threads", "-1"], "--torch-threads must be >= 0 (0: torch's default), got -1"),
    ],
)
def test_a_bad_option_is_refused_by_name_and_nothing_is_written(tmp_path, capsys, argv, message):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *argv]) == 2
    assert capsys.readouterr().err.strip() == f"i3dmtn demo: error: {message}"
    assert not out.exists()
