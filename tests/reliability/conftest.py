"""Reliability tests: the ``--long`` option (or ``I3DMTN_LONG=1``) turns on the long soak and crash variants.

The default runs keep CI fast (the whole reliability + security suite in a few minutes); the long variants
inject many more faults and are meant for a nightly job or a release check::

    I3DMTN_LONG=1 .venv/bin/pytest tests/reliability -s
    .venv/bin/pytest tests/reliability --long -s      # when tests/reliability is on the command line
"""

from __future__ import annotations

import os

import pytest

LONG_ENV = "I3DMTN_LONG"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help=f"run the long reliability variants (more events, restarts and kills); same as {LONG_ENV}=1",
    )


@pytest.fixture
def long_run(request: pytest.FixtureRequest) -> bool:
    """True for the long variants: ``--long`` or ``I3DMTN_LONG=1``."""
    try:
        option = bool(request.config.getoption("--long"))
    except ValueError:  # the option was not registered (this conftest was loaded after the command line)
        option = False
    return option or os.environ.get(LONG_ENV, "") not in ("", "0")
