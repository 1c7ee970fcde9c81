"""Quiet logs (issue 14, item 6): no library progress bars off a terminal, dependency warnings filtered once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")

# Loads the embedded model and saves it: transformers draws `Loading weights` and `Writing model
# shards` bars for exactly this.  With `--via-cli` the script first goes through the gasp CLI entry.
SCRIPT = r"""
import sys, tempfile
if sys.argv[1] == "--via-cli":
    from gasp_rl.cli import app
    app(["config"], standalone_mode=False)
from gasp_rl.backends.hf import HFPolicy
from gasp_rl.config import Config
from gasp_rl.seams import SamplingParams
policy = HFPolicy.from_config(Config())
policy.generate([[{"role": "user", "content": "hi"}]], SamplingParams(n=1, max_new_tokens=2, temperature=0))
with tempfile.TemporaryDirectory() as d:
    policy.save(d)
"""

BARS = ("Loading weights", "Writing model shards", "it/s]")


def _stderr(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_DISABLE_PROGRESS_BARS", "TQDM_DISABLE")}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=True,
    )
    return done.stderr


@pytest.mark.slow
def test_a_non_terminal_gasp_run_draws_no_library_progress_bars() -> None:
    raw = _stderr("--direct")
    assert any(b in raw for b in BARS), raw[-500:]  # the libraries do draw them without the CLI entry
    quiet = _stderr("--via-cli")
    assert not any(b in quiet for b in BARS), quiet[-2000:]
    assert "FutureWarning" not in quiet


def test_configure_filters_once_and_keeps_bars_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import warnings

    from gasp_rl import _quiet

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    with warnings.catch_warnings():
        _quiet.configure(Tty())
        assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ  # a terminal keeps its bars
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            _quiet.configure(Tty())  # re-applied after "always": filters go in front
            warnings.warn("`past_key_values` is deprecated and will be removed", FutureWarning, stacklevel=1)
            warnings.warn("ours: something the user can act on", UserWarning, stacklevel=1)
        assert [str(w.message) for w in seen] == ["ours: something the user can act on"]
    assert not _quiet.progress_bars_wanted(io.StringIO())


def test_a_tqdm_imported_before_configure_draws_nothing_off_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """transformers' GGUF de-quantizing bar is a plain tqdm.auto bar, created after tqdm read its env."""
    import io

    from tqdm import std
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    from gasp_rl import _quiet

    for key in _quiet._PROGRESS_ENV:
        monkeypatch.delenv(key, raising=False)  # configure sets them; restored after the test
    saved = std.tqdm.__dict__["__init__"]  # the raw attribute, put back as it was
    # tqdm's own __init__ without any defaults (an earlier configure, or TQDM_* variables set
    # before tqdm was imported, may have switched bars off already)
    original = _quiet.tqdm_init_original()
    std.tqdm.__init__ = getattr(original, "func", original)
    try:
        drawn = io.StringIO()
        list(gguf_utils.tqdm(range(3), desc="before", file=drawn))
        assert "before" in drawn.getvalue()  # without configure, the bar draws
        _quiet.configure(io.StringIO())
        wrapped = std.tqdm.__dict__["__init__"]
        _quiet.configure(io.StringIO())
        assert std.tqdm.__dict__["__init__"] is wrapped  # idempotent: wrapped once
        quiet = io.StringIO()
        assert list(gguf_utils.tqdm(range(3), desc="after", file=quiet)) == [0, 1, 2]
        assert quiet.getvalue() == ""
        shown = io.StringIO()
        list(gguf_utils.tqdm(range(3), desc="asked", file=shown, disable=False))
        assert "asked" in shown.getvalue()  # a caller passing disable= still wins
    finally:
        std.tqdm.__init__ = saved
