"""The static capability check of proposed programs (method.md §5)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from gasp_rl.core.safety import ALLOWED_MODULES, check_code

ROOT = Path(__file__).resolve().parent.parent

SAFE = [
    "def f(x):\n    return x * 2",
    "import math\ndef f(x):\n    return math.floor(x)",
    "from collections import Counter\ndef f(s):\n    return Counter(s).most_common(1)[0][0]",
    "from typing import List\ndef f(xs: List[int]) -> int:\n    return sum(xs)",
    "import itertools, functools, re, heapq, string\ndef f(x):\n    return x",
    "class P:\n    def __init__(self, a):\n        self.a = a\n    def __eq__(self, o):\n        return self.a == o.a\ndef f(x):\n    return P(x) == P(x)",
    "def f(x):\n    return getattr(x, 'real')",
    "def f(x):\n    print(x)\n    return x\nif __name__ == '__main__':\n    f(1)",
    "f = lambda x: sorted(x, key=lambda t: -t)",
    "def f(s):\n    return s.__len__()",
]

UNSAFE = [
    ("import os\ndef f(x):\n    return x", "import of module 'os'"),
    ("import os.path\ndef f(x):\n    return x", "import of module 'os.path'"),
    ("def f(x):\n    import subprocess\n    return x", "import of module 'subprocess'"),
    ("from socket import socket\ndef f(x):\n    return x", "import of module 'socket'"),
    ("import random\ndef f(x):\n    return random.random()", "import of module 'random'"),
    ("from time import time\ndef f(x):\n    return time()", "import of module 'time'"),
    ("import threading\ndef f(x):\n    return x", "import of module 'threading'"),
    ("import ctypes\ndef f(x):\n    return x", "import of module 'ctypes'"),
    ("import sys\ndef f(x):\n    return x", "import of module 'sys'"),
    ("import datetime\ndef f(x):\n    return x", "import of module 'datetime'"),
    ("from . import x\ndef f(y):\n    return y", "relative import"),
    ("def f(x):\n    return open('/etc/passwd').read()", "use of builtin 'open'"),
    ("def f(x):\n    return eval(x)", "use of builtin 'eval'"),
    ("def f(x):\n    exec('y = 1')\n    return x", "use of builtin 'exec'"),
    ("def f(x):\n    return compile(x, 'a', 'eval')", "use of builtin 'compile'"),
    ("def f(x):\n    return __import__('os')", "use of builtin '__import__'"),
    ("def f(x):\n    return globals()", "use of builtin 'globals'"),
    ("def f(x):\n    return input()", "use of builtin 'input'"),
    ("def f(x):\n    return id(x)", "use of builtin 'id'"),
    ("def f(x):\n    g = eval\n    return g(x)", "use of builtin 'eval'"),
    ("import builtins\ndef f(x):\n    return x", "import of module 'builtins'"),
    ("def f(x):\n    return ().__class__.__bases__[0].__subclasses__()", "access to attribute '__class__'"),
    ("def f(x):\n    return f.__globals__", "access to attribute '__globals__'"),
    ("def f(x):\n    return __builtins__", "use of name '__builtins__'"),
    ("def f(x):\n    return getattr(x, '__class__')", "getattr() of private attribute '__class__'"),
    ("def f(x, n):\n    return getattr(x, n)", "getattr() with a computed attribute name"),
    ("def f(x):\n    return '{0.__class__}'.format(x)", "string literal mentioning '__class__'"),
    ("def f(x):\n    g = (i for i in x)\n    return g.gi_frame.f_globals", "access to attribute 'gi_frame'"),
]


@pytest.mark.parametrize("code", SAFE)
def test_safe_code_passes(code: str) -> None:
    assert check_code(code) is None


@pytest.mark.parametrize(("code", "reason"), UNSAFE)
def test_unsafe_code_gets_its_reason(code: str, reason: str) -> None:
    assert check_code(code) == reason


def test_first_problem_in_source_order_is_reported() -> None:
    code = "def f(x):\n    a = open('x')\n    import os\n    return a"
    assert check_code(code) == "use of builtin 'open'"


def test_syntax_error_is_a_reason_not_an_exception() -> None:
    assert check_code("def f(:\n").startswith("syntax error")
    assert check_code("(" * 500 + ")" * 500).startswith("syntax error")


def test_allow_list_has_no_capability_modules() -> None:
    assert ALLOWED_MODULES.isdisjoint(
        {"os", "sys", "subprocess", "socket", "random", "time", "threading", "ctypes", "io", "pathlib"}
    )


# ---------------------------------------------------------------- the shipped AZR seed programs


def _seed_tasks():
    from importlib import resources

    from gasp_rl.core.tasks import ProgramTask

    text = resources.files("gasp_rl.data").joinpath("azr_seed_programs.jsonl").read_text(encoding="utf-8")
    return [ProgramTask.from_dict(json.loads(line)) for line in text.splitlines() if line.strip()]


def test_seed_programs_are_safe_complete_and_well_formed() -> None:
    from gasp_rl.core.parsing import canonical_args, canonical_literal, ensure_f

    tasks = _seed_tasks()
    assert len(tasks) == 256
    assert len({t.task_id for t in tasks}) == 256 and len({t.code for t in tasks}) == 256
    for t in tasks:
        assert check_code(t.code) is None, t.code
        assert not isinstance(ensure_f(t.code), Exception) and ensure_f(t.code)[1] == ""
        assert len(t.io) == 5
        assert all(canonical_args(p.args) == p.args for p in t.io)
        assert all(p.output and canonical_literal(p.output) is not None for p in t.io)
        assert len({p.output for p in t.io}) > 1


def test_seed_file_is_what_the_script_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The script is deterministic: regenerating without the sandbox gives the same programs
    and inputs as the shipped file (outputs come from the sandbox)."""
    spec = importlib.util.spec_from_file_location("make_azr_seeds", ROOT / "scripts" / "make_azr_seeds.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_azr_seeds", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    shipped = _seed_tasks()
    stream = module.seed_candidates()
    candidates = {t.code: [p.args for p in t.io] for t in (next(stream) for _ in range(400))}
    assert all(candidates.get(t.code) == [p.args for p in t.io] for t in shipped)


@pytest.mark.slow
def test_seed_outputs_match_the_sandbox() -> None:
    from gasp_rl.config import SandboxConfig
    from gasp_rl.core.jobs import Job
    from gasp_rl.sandbox import LocalExecutor

    tasks = _seed_tasks()[::8]
    jobs = [
        Job("call", code=t.code, cases=[p.args for p in t.io], expected=[p.output for p in t.io])
        for t in tasks
    ]
    with LocalExecutor(SandboxConfig()) as ex:
        verdicts = ex.run(jobs)
    assert all(v.passed for v in verdicts), [v.reason for v in verdicts if not v.passed]
