"""Test code generated for the sandbox (never executed in the trainer).

:func:`evalplus_check_code` turns an EvalPlus row into assert-style ``test_code`` for a ``check``
job: the stdlib-only differential test in ``_evalplus_harness.py`` plus one line of parameters.
Keeping the harness in a real ``.py`` file lets ruff and the tests see it as code.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

_HARNESS_FILE = Path(__file__).with_name("_evalplus_harness.py")


@lru_cache(maxsize=1)
def _harness_source() -> str:
    return _HARNESS_FILE.read_text(encoding="utf-8")


def evalplus_check_code(
    reference: str, entry_point: str, inputs: list[list[Any]], atol: float, oracle: str = ""
) -> str:
    """``test_code`` comparing a candidate with ``reference`` on ``inputs`` the EvalPlus way.

    The parameters travel as one JSON string literal so no value is ever pasted into code.
    """
    spec = {
        "reference": reference,
        "entry_point": entry_point,
        "inputs": inputs,
        "atol": atol,
        "oracle": oracle,
    }
    return f"_GASP_SPEC_JSON = {json.dumps(json.dumps(spec))}\n" + _harness_source()
