"""Settings every test file shares."""

from __future__ import annotations

import pytest

from gasp_rl import _quiet


def pytest_configure(config: pytest.Config) -> None:
    # The dependency warnings the CLI filters (gasp_rl._quiet.IGNORED_WARNINGS: nothing a user of
    # gasp-rl can act on), filtered in the tests too, from the same list.
    for category, message in _quiet.IGNORED_WARNINGS:
        assert ":" not in message, message  # pytest's filter syntax separates fields by ':'
        config.addinivalue_line("filterwarnings", f"ignore:{message}:{category.__name__}")
