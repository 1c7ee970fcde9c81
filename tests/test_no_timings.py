"""Tests assert load-independent facts; wall-clock bounds belong in benchmarks/ (issue 14 item 5).

A shared 2-core machine makes any ``elapsed < N`` assertion flaky, so test code may not measure
elapsed time at all: no ``time.perf_counter`` / ``time.monotonic`` (``time.time`` is allowed only
as a polling deadline that ends a wait loop, never inside an ``assert``).
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
CLOCKS = {"perf_counter", "monotonic", "perf_counter_ns", "monotonic_ns", "process_time"}


def _clock_calls(node: ast.AST) -> list[ast.Call]:
    out = []
    for n in ast.walk(node):
        f = n.func if isinstance(n, ast.Call) else None
        is_time = isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "time"
        if is_time and f.attr in CLOCKS | {"time"}:  # type: ignore[union-attr]
            out.append(n)
    return out


def test_no_test_measures_wall_time() -> None:
    offenders = []
    for path in sorted(TESTS.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for call in _clock_calls(tree):
            if call.func.attr in CLOCKS:  # type: ignore[attr-defined]
                offenders.append(f"{path.name}:{call.lineno} time.{call.func.attr}()")  # type: ignore[attr-defined]
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert) and _clock_calls(node):
                offenders.append(f"{path.name}:{node.lineno} assert on time.time()")
    assert not offenders, "wall-clock measurements in tests (move the bound to benchmarks/): " + ", ".join(
        offenders
    )
