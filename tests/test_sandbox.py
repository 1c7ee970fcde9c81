"""Verdicts, comparison semantics, bad input and determinism of the local sandbox pool.

``VERDICT_CASES`` is reused by the Ray executor's tests (same cases, other pool).
"""

from __future__ import annotations

import pytest

from gasp_rl.config import SandboxConfig
from gasp_rl.core.jobs import Job, Limits, Status
from gasp_rl.sandbox import LocalExecutor

S = Status
ADD = "def f(a, b):\n    return a + b\n"

# (id, job, expected status, expected outputs or None)
VERDICT_CASES: list[tuple[str, Job, Status, list[str] | None]] = [
    (
        "call_outputs",
        Job("call", code=ADD, cases=["1, 2", "'a', 'b'", "[1], [2]"]),
        S.PASSED,
        ["3", "'ab'", "[1, 2]"],
    ),
    ("call_expected_ok", Job("call", code=ADD, cases=["1, 2"], expected=["3"]), S.PASSED, ["3"]),
    ("call_wrong", Job("call", code=ADD, cases=["1, 2", "2, 2"], expected=["3", "5"]), S.WRONG_ANSWER, None),
    ("float_tolerance", Job("call", code=ADD, cases=["0.1, 0.2"], expected=["0.3"]), S.PASSED, None),
    ("float_far", Job("call", code=ADD, cases=["0.1, 0.2"], expected=["0.31"]), S.WRONG_ANSWER, None),
    (
        "tuple_equals_list",
        Job("call", code="def f():\n    return (1, [2, 3])", cases=[""], expected=["[1, (2, 3)]"]),
        S.PASSED,
        None,
    ),
    (
        "nan_equals_nan",
        Job("call", code="def f():\n    return float('nan')", cases=[""], expected=["float('nan')"]),
        S.PASSED,
        ["float('nan')"],
    ),
    (
        "set_dict",
        Job(
            "call",
            code="def f():\n    return {3, 1}, {'a': 1}",
            cases=[""],
            expected=["({1, 3}, {'a': 1.0})"],
        ),
        S.PASSED,
        None,
    ),
    (
        "bool_vs_str",
        Job("call", code="def f():\n    return True", cases=[""], expected=["'True'"]),
        S.WRONG_ANSWER,
        None,
    ),
    (
        "big_int",
        Job("call", code="def f():\n    return 2**100", cases=[""], expected=[str(2**100)]),
        S.PASSED,
        [str(2**100)],
    ),
    ("runtime_error", Job("call", code="def f(x):\n    return 1 // x", cases=["0"]), S.RUNTIME_ERROR, None),
    ("syntax_error", Job("call", code="def f(:\n    pass", cases=[""]), S.RUNTIME_ERROR, None),
    ("no_f", Job("call", code="def g():\n    return 1", cases=[""]), S.RUNTIME_ERROR, None),
    (
        "stdin_ok",
        Job(
            "stdin",
            code="a, b = map(int, input().split())\nprint(a + b)",
            cases=["1 2\n", "5 5\n"],
            expected=["3\n", "10"],
        ),
        S.PASSED,
        None,
    ),
    (
        "stdin_wrong",
        Job("stdin", code="print(int(input()) * 2)", cases=["2\n", "3\n"], expected=["4", "7"]),
        S.WRONG_ANSWER,
        None,
    ),
    (
        "stdin_float_lines",
        Job("stdin", code="print(1/3)", cases=[""], expected=["0.333333333"]),
        S.PASSED,
        None,
    ),
    (
        "check_ok",
        Job("check", code=ADD, test_code="def check(c):\n    assert c(2, 3) == 5", entry_point="f"),
        S.PASSED,
        None,
    ),
    (
        "check_fail",
        Job("check", code=ADD, test_code="def check(c):\n    assert c(2, 3) == 6", entry_point="f"),
        S.RUNTIME_ERROR,
        None,
    ),
    ("compare_ok", Job("compare", cases=["[1, 2,  3]"], expected=["[1, 2, 3]"]), S.PASSED, None),
    ("compare_wrong", Job("compare", cases=["4"], expected=["5"]), S.WRONG_ANSWER, None),
    (
        "compare_not_literal",
        Job("compare", cases=["__import__('os').system('x')"], expected=["0"]),
        S.WRONG_ANSWER,
        None,
    ),
    (
        "timeout",
        Job("call", code="def f():\n    while 1:\n        pass", cases=[""], limits=Limits(cpu_time=0.5)),
        S.TIMEOUT,
        None,
    ),
    ("memory", Job("call", code="def f():\n    return [0] * 10**9", cases=[""]), S.MEMORY_LIMIT, None),
    ("forbidden", Job("call", code="import socket\ndef f():\n    return 1", cases=[""]), S.FORBIDDEN, None),
]

BAD_INPUT: list[tuple[str, Job, str]] = [
    ("empty_code", Job("call", code="   ", cases=[""]), "empty code"),
    ("bytes_code", Job("call", code=b"\xff\xfe def f(): pass", cases=[""]), "UTF-8"),  # type: ignore[arg-type]
    ("surrogate", Job("call", code="def f():\n    return '\udcff'", cases=[""]), "UTF-8"),
    ("nul", Job("call", code="def f():\x00 pass", cases=[""]), "NUL"),
    ("not_literal_input", Job("call", code=ADD, cases=["open('x'), 1"]), "not Python literals"),
    ("gigantic_input", Job("call", code=ADD, cases=["1, " + "1" * 2_000_000]), "input limit"),
    ("mismatched_expected", Job("call", code=ADD, cases=["1, 2"], expected=["3", "4"]), "expected"),
    ("unknown_kind", Job("shell", code="ls"), "unknown job kind"),  # type: ignore[arg-type]
    ("check_without_tests", Job("check", code=ADD), "test_code"),
    ("expected_not_literal", Job("call", code=ADD, cases=["1, 2"], expected=["three"]), "expected value"),
]


@pytest.fixture(scope="module")
def ex():
    with LocalExecutor(SandboxConfig(workers=2, cpu_time=2.0)) as e:
        yield e


def test_verdicts_in_one_batch(ex):
    verdicts = ex.run([c[1] for c in VERDICT_CASES])
    for (name, _, status, outputs), v in zip(VERDICT_CASES, verdicts):
        assert v.status == status, f"{name}: {v.status.value} {v.reason}"
        if outputs is not None:
            assert v.outputs == outputs, name


def test_wrong_answer_reports_expected_and_actual(ex):
    [v] = ex.run([Job("call", code=ADD, cases=["1, 2", "2, 2"], expected=["3", "5"])])
    assert (v.case, v.expected, v.actual) == (1, "5", "4")
    [v] = ex.run([Job("call", code="def f():\n    return 'x' * 5000", cases=[""], expected=["'y'"])])
    assert len(v.actual) < 400 and "more chars" in v.actual


@pytest.mark.parametrize("name,job,needle", BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_gets_clear_verdict(ex, name, job, needle):
    [v] = ex.run([job])
    assert v.status == S.INVALID_INPUT, (name, v)
    assert needle in v.reason


def test_fresh_state_per_job(ex):
    poison = Job(
        "call",
        code="import builtins, math\nbuiltins.sorted = None\nmath.pi = 3\nX = 1\ndef f():\n    return 0",
        cases=[""],
    )
    probe = Job(
        "call", code="import math\ndef f():\n    return sorted([2, 1]), math.pi, 'X' in globals()", cases=[""]
    )
    verdicts = ex.run([poison, probe, poison, probe])
    assert verdicts[1].outputs == verdicts[3].outputs == ["([1, 2], 3.141592653589793, False)"]


def test_determinism_check(ex):
    det = Job("call", code="def f(x):\n    return sorted(set(x))", cases=["'hello'"])
    nondet = Job("call", code="import os\ndef f():\n    return os.urandom(8).hex()", cases=[""])
    addr = Job("call", code="def f():\n    return id(object()) % 1000", cases=[""])
    results = ex.check_determinism([det, nondet, addr])
    assert results[0][0] is True and results[0][1].status == S.PASSED
    assert results[1][0] is False
    assert results[1][1].status == S.PASSED


def test_job_ids_and_order_preserved(ex):
    jobs = [Job("call", code=f"def f():\n    return {i}", cases=[""], id=f"j{i}") for i in range(40)]
    verdicts = ex.run(jobs)
    assert [v.outputs for v in verdicts] == [[str(i)] for i in range(40)]
    assert [v.job_id for v in verdicts] == [j.id for j in jobs]


def test_isolation_is_reported(ex):
    text = ex.isolation.describe()
    assert "rlimits" in text and "audit hooks" in text


def test_zygote_confines_itself_and_each_job_adds_its_own_filter():
    """The zygote runs under its own seccomp filter (no execve, sockets, ptrace, mounts, ...), and
    the two filters stacked deny a job exactly DENIED_SYSCALLS: the child's adds what the zygote
    itself must keep (fork, kill, rlimits)."""
    from gasp_rl.sandbox.isolation import DENIED_SYSCALLS, ZYGOTE_SYSCALLS, seccomp_bpf

    programs, why = seccomp_bpf()
    assert programs is not None, why
    zygote_bpf, child_bpf = programs
    assert len(child_bpf) < len(zygote_bpf)
    assert set(ZYGOTE_SYSCALLS) <= set(DENIED_SYSCALLS)
    with LocalExecutor(SandboxConfig(workers=1, isolation="none", seccomp="on")) as ex2:
        pid = ex2._workers[0].proc.pid  # no bubblewrap: the worker process is the zygote
        with open(f"/proc/{pid}/status") as fh:
            status = dict(line.split(":", 1) for line in fh if ":" in line)
        assert status["Seccomp"].strip() == "2"  # filter mode
        assert status["Seccomp_filters"].strip() == "1"
        assert status["NoNewPrivs"].strip() == "1"
        (v,) = ex2.run([Job("call", code=ADD, cases=["1, 2"], expected=["3"])])
        assert v.status == S.PASSED


def test_no_bwrap_no_seccomp_still_classifies():
    """With OS layers off (as on a machine without them), rlimits + audit hooks still hold."""
    with LocalExecutor(SandboxConfig(workers=1, isolation="none", seccomp="off", cpu_time=1.0)) as ex2:
        assert "NO bubblewrap" in ex2.isolation.describe()
        vs = ex2.run(
            [
                Job("call", code="import os\ndef f():\n    return os.fork()", cases=[""]),
                Job("call", code="def f():\n    open('/tmp/gasp_nobwrap_marker', 'w')", cases=[""]),
                Job("call", code=ADD, cases=["1, 2"], expected=["3"]),
            ]
        )
    assert [v.status for v in vs] == [S.FORBIDDEN, S.FORBIDDEN, S.PASSED]


def test_dead_worker_is_restarted():
    with LocalExecutor(SandboxConfig(workers=1)) as ex2:
        w = ex2._workers[0]
        w.proc.kill()  # simulate a crash of the zygote itself
        w.proc.wait()
        vs = ex2.run([Job("call", code=ADD, cases=["1, 2"], expected=["3"])] * 3)
    assert vs[0].status in (S.SANDBOX_ERROR, S.PASSED)
    assert vs[-1].status == S.PASSED


# ---------------------------------------------------------------- hash seeds (issue 15 item 10)

HASH_ORDER = (
    "def f(n):\n    return list({'apple', 'banana', 'cherry', 'date', 'elderberry', 'fig', 'grape'})[:n]"
)


def test_hash_order_program_is_rejected_by_every_determinism_check():
    """The two determinism runs use two different fixed hash seeds, whatever worker they land on:
    a program whose output is the iteration order of a set of strings is rejected every time
    (before: each worker had its own random seed and two runs on one worker agreed)."""
    stable = "def f(n):\n    return sorted({'apple', 'banana', 'cherry', 'date', 'elderberry', 'fig', 'grape'})[:n]"
    with LocalExecutor(SandboxConfig(workers=4)) as ex:
        for _ in range(3):
            jobs = [Job("call", code=HASH_ORDER, cases=["7"], id=f"h{i}") for i in range(12)]
            jobs += [Job("call", code=stable, cases=["7"], id=f"s{i}") for i in range(4)]
            res = ex.check_determinism(jobs)
            assert [same for same, _ in res[:12]] == [False] * 12
            assert [same for same, _ in res[12:]] == [True] * 4
            assert all(v.status == Status.PASSED for _, v in res)


def test_grading_reproduces_the_reference_outputs_of_a_hash_order_program():
    """Reference outputs (the first determinism run) and every later run() share sandbox.hash_seed,
    so even a hash-order-dependent value is reproduced exactly when it is graded, on any worker."""
    job = Job("call", code=HASH_ORDER, cases=["7"])
    with LocalExecutor(SandboxConfig(workers=4)) as ex:
        [(_, ref)] = ex.check_determinism([job])
        vs = ex.run(
            [Job("call", code=HASH_ORDER, cases=["7"], expected=ref.outputs, id=str(i)) for i in range(16)]
        )
    assert [v.status for v in vs] == [Status.PASSED] * 16, [v.reason for v in vs]
    with LocalExecutor(SandboxConfig(workers=2)) as ex2:  # a new executor: the same seed, the same order
        [again] = ex2.run([Job("call", code=HASH_ORDER, cases=["7"], expected=ref.outputs)])
    assert again.status == Status.PASSED


def test_hash_seeds_must_differ():
    with pytest.raises(ValueError, match="determinism_hash_seed"):
        SandboxConfig(hash_seed=3, determinism_hash_seed=3)
