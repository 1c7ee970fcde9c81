"""Quiet logs, in one place (issue 14, item 6), called once from the CLI entry.

- Library progress bars (transformers ``Loading weights`` / ``Writing model shards``, huggingface_hub
  downloads, datasets ``Map``, TRL's tqdm bars) are drawn only when stderr is a terminal.  Off a
  terminal (a log file, CI, a pipe) they are carriage-return noise, so they are switched off through
  the libraries' own switches (environment variables for libraries not imported yet, their API for
  those already imported).
- Warnings from dependencies that a user of gasp-rl cannot act on are filtered here, once, by
  message; everything else still shows.  gasp-rl's own warnings are never filtered.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any, TextIO

#: (category, message regex) of dependency warnings we cannot act on.
IGNORED_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    # transformers 5.x renamed the cache argument; remote-code models and TRL still pass the old name
    (FutureWarning, r"`past_key_values` is deprecated"),
    # peft asks transformers' old checkpointing property on save / merge
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated"),
    # TRL / transformers deprecations of arguments we do not pass ourselves
    (FutureWarning, r".*`tokenizer` is deprecated.*processing_class"),
    (UserWarning, r"To copy construct from a tensor, it is recommended"),
    # torch on CPU-only machines: autocast / pin-memory notes about CUDA
    (UserWarning, r".*pin_memory.*no accelerator is found"),
    (UserWarning, r"In CPU autocast, but the target dtype is not supported"),
)

_PROGRESS_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # huggingface_hub and, through it, transformers' tqdm
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",  # any other tqdm (TRL's module-level bars)
}

_configured = False


def progress_bars_wanted(stream: TextIO | None = None) -> bool:
    """Progress bars only when ``stream`` (stderr by default) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def configure(stream: TextIO | None = None) -> None:
    """Apply the filters (idempotent).  Bars are switched off when ``stream`` is not a terminal."""
    global _configured
    for category, message in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    if not progress_bars_wanted(stream):
        for key, value in _PROGRESS_ENV.items():
            os.environ.setdefault(key, value)
        _disable_imported_bars()
    _configured = True


def _disable_imported_bars() -> None:
    """The environment variables are read at import; libraries already imported get their API call."""
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()
    if "tqdm" in sys.modules:
        _tqdm_off_by_default()


def _tqdm_off_by_default() -> None:
    """What ``TQDM_DISABLE=1`` does, for a tqdm imported before it was set.

    tqdm reads ``TQDM_*`` once, when it is imported, into the default arguments of
    ``tqdm.__init__`` (transformers' GGUF de-quantizing bar is a plain ``tqdm.auto`` bar, outside
    ``hf_logging``'s switch).  Re-apply that default; a caller passing ``disable=`` still wins.
    """
    import functools

    from tqdm import std

    init = std.tqdm.__dict__["__init__"]  # the raw attribute (class access unwraps a partialmethod)
    if getattr(init, "_gasp_quiet", False):
        return
    quiet = functools.partialmethod(init, disable=True)
    quiet._gasp_quiet = True  # type: ignore[attr-defined]
    std.tqdm.__init__ = quiet  # type: ignore[method-assign]


def tqdm_init_original() -> Any:
    """tqdm's ``__init__`` as it was before :func:`_tqdm_off_by_default` (for tests)."""
    from tqdm import std

    init = std.tqdm.__dict__["__init__"]
    while getattr(init, "_gasp_quiet", False):
        init = init.func
    return init
