"""The hostile-program suite: model-written code that tries to escape, stall or poison the sandbox.

Every program must end in a classified verdict within its budget, leave no file, process or
socket behind, and the next ordinary job must still pass.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gasp_rl.config import SandboxConfig
from gasp_rl.core.jobs import Job, Limits, Status
from gasp_rl.sandbox import LocalExecutor

REPO = Path(__file__).resolve().parents[1]
HOME = Path.home()
MARK = "gasp_hostile_marker"
S = Status

# (name, code, acceptable statuses).  Each program defines f() and is called once.
HOSTILE: list[tuple[str, str, set[Status]]] = [
    ("fork_bomb", "import os\ndef f():\n    while True:\n        os.fork()", {S.FORBIDDEN}),
    ("fork_bomb_via_posix", "import posix\ndef f():\n    while True:\n        posix.fork()", {S.FORBIDDEN}),
    (
        "memory_bomb",
        "def f():\n    x = []\n    while True:\n        x.append(bytearray(10**7))",
        # zero-filling 1 GB takes about a CPU second: which limit trips first depends on the
        # machine's page-fault speed (seen both ways here); either one contains it
        {S.MEMORY_LIMIT, S.TIMEOUT},
    ),
    ("memory_bomb_single", "def f():\n    return bytearray(10**11)", {S.MEMORY_LIMIT}),
    ("infinite_loop", "def f():\n    while True:\n        pass", {S.TIMEOUT}),
    ("sleep_forever", "import time\ndef f():\n    time.sleep(10**6)", {S.TIMEOUT}),
    ("deep_recursion", "def f(n=0):\n    return f(n + 1)", {S.RUNTIME_ERROR}),
    (
        "c_stack_overflow",
        "import sys\nsys.setrecursionlimit(10**8)\ndef f(n=0):\n    return f(n + 1)",
        {S.RUNTIME_ERROR, S.MEMORY_LIMIT, S.TIMEOUT},
    ),
    ("kill_parent", "import os\ndef f():\n    os.kill(os.getppid(), 9)", {S.FORBIDDEN}),
    ("kill_group", "import os\ndef f():\n    os.killpg(0, 9)", {S.FORBIDDEN}),
    ("os_exit", "import os\ndef f():\n    os._exit(0)", {S.RUNTIME_ERROR}),
    ("sys_exit", "import sys\ndef f():\n    sys.exit(0)", {S.RUNTIME_ERROR}),
    ("exit_at_import", "raise SystemExit(0)\ndef f():\n    return 1", {S.RUNTIME_ERROR}),
    ("write_home", f"def f():\n    open({str(HOME / MARK)!r}, 'w').write('x')", {S.FORBIDDEN}),
    ("write_repo", f"def f():\n    open({str(REPO / MARK)!r}, 'w').write('x')", {S.FORBIDDEN}),
    (
        "delete_repo_file",
        f"import os\ndef f():\n    os.remove({str(REPO / 'pyproject.toml')!r})",
        {S.FORBIDDEN},
    ),
    ("rmtree_home", f"import shutil\ndef f():\n    shutil.rmtree({str(HOME)!r})", {S.FORBIDDEN}),
    ("read_secret", "def f():\n    return open('/etc/shadow').read()", {S.FORBIDDEN}),
    ("read_repo", f"def f():\n    return open({str(REPO / 'pyproject.toml')!r}).read()", {S.FORBIDDEN}),
    ("list_home", f"import os\ndef f():\n    return os.listdir({str(HOME)!r})", {S.FORBIDDEN}),
    (
        "env_vars",
        "import os\ndef f():\n    return sorted(k for k in os.environ if 'KEY' in k or 'TOKEN' in k)",
        {S.PASSED},
    ),
    (
        "socket_localhost",
        "import socket\ndef f():\n    s = socket.socket()\n    s.connect(('127.0.0.1', 22))",
        {S.FORBIDDEN},
    ),
    ("socket_via_import", "def f():\n    m = __import__('_socket')\n    return m.socket()", {S.FORBIDDEN}),
    (
        "urllib",
        "import urllib.request\ndef f():\n    return urllib.request.urlopen('http://127.0.0.1:1').read()",
        {S.FORBIDDEN},
    ),
    ("subprocess", "import subprocess\ndef f():\n    return subprocess.run(['ls'])", {S.FORBIDDEN}),
    ("os_system", "import os\ndef f():\n    return os.system('touch /tmp/x')", {S.FORBIDDEN}),
    ("os_exec", "import os\ndef f():\n    os.execv('/bin/sh', ['sh'])", {S.FORBIDDEN}),
    (
        "threads_keep_running",
        "import threading\ndef f():\n    threading.Thread(target=lambda: __import__('time').sleep(100)).start()\n    return 1",
        {S.FORBIDDEN},
    ),
    ("raw_thread", "import _thread\ndef f():\n    _thread.start_new_thread(lambda: None, ())", {S.FORBIDDEN}),
    (
        "replace_builtins",
        "import builtins\nbuiltins.len = lambda x: 42\nbuiltins.print = None\ndef f():\n    return len([1])",
        {S.WRONG_ANSWER},
    ),
    ("ctypes_segfault", "import ctypes\ndef f():\n    ctypes.string_at(0)", {S.FORBIDDEN}),
    (
        "ctypes_via_importlib",
        "import importlib\ndef f():\n    importlib.import_module('ctypes').string_at(0)",
        {S.FORBIDDEN},
    ),
    ("segfault_faulthandler", "import faulthandler\ndef f():\n    faulthandler._sigsegv()", {S.FORBIDDEN}),
    ("output_flood", "def f():\n    while True:\n        print('x' * 10000)", {S.OUTPUT_LIMIT}),
    (
        "stderr_flood",
        "import sys\ndef f():\n    while True:\n        sys.stderr.write('y' * 10000)",
        {S.OUTPUT_LIMIT},
    ),
    ("huge_return", "def f():\n    return 'x' * (50 * 10**6)", {S.OUTPUT_LIMIT, S.MEMORY_LIMIT}),
    (
        "huge_nested_return",
        "def f():\n    return [[i] * 1000 for i in range(20000)]",
        {S.OUTPUT_LIMIT, S.WRONG_ANSWER},
    ),
    (
        "self_referential_return",
        "def f():\n    x = []\n    x.append(x)\n    return x",
        {S.WRONG_ANSWER, S.RUNTIME_ERROR},
    ),
    (
        "bad_eq",
        "class E:\n    def __eq__(self, o):\n        return True\ndef f():\n    return E()",
        {S.WRONG_ANSWER},
    ),
    (
        "bad_repr",
        "class R:\n    def __repr__(self):\n        raise RuntimeError('no')\ndef f():\n    return R()",
        {S.WRONG_ANSWER},
    ),
    (
        "int_subclass_eq",
        "class I(int):\n    def __eq__(self, o):\n        return True\ndef f():\n    return I(5)",
        {S.WRONG_ANSWER},
    ),
    (
        "reduce_payload",
        "import os\nclass P:\n    def __reduce__(self):\n        return (os.system, ('touch /tmp/pwned',))\ndef f():\n    return P()",
        {S.WRONG_ANSWER},
    ),
    ("pickle_import", "import pickle\ndef f():\n    return pickle.dumps(1)", {S.FORBIDDEN}),
    (
        "signal_override",
        "import signal\nsignal.signal(signal.SIGPROF, signal.SIG_IGN)\ndef f():\n    while True:\n        pass",
        {S.FORBIDDEN},
    ),
    (
        "signal_via_underscore",
        "import _signal\n_signal.signal(27, _signal.SIG_IGN)\ndef f():\n    while True:\n        pass",
        {S.FORBIDDEN},
    ),
    ("gc_tamper", "import gc\ndef f():\n    return len(gc.get_objects())", {S.FORBIDDEN}),
    (
        "sys_modules_tamper",
        "import sys\nsys.modules['json'] = None\nsys.modules.clear()\ndef f():\n    return 1",
        {S.PASSED},
    ),
    (
        "audit_hook_escape",
        "import sys\nsys.addaudithook(lambda *a: None)\ndef f():\n    return 1",
        {S.FORBIDDEN},
    ),
    (
        "setrlimit",
        "import resource\ndef f():\n    resource.setrlimit(resource.RLIMIT_CPU, (100, 100))",
        {S.FORBIDDEN},
    ),
    ("raise_base_exception", "def f():\n    raise BaseException('boom')", {S.RUNTIME_ERROR}),
    ("keyboard_interrupt", "def f():\n    raise KeyboardInterrupt", {S.RUNTIME_ERROR}),
    (
        "close_all_fds",
        "import os\ndef f():\n    os.closerange(0, 1024)\n    return 1",
        {S.PASSED, S.RUNTIME_ERROR, S.SANDBOX_ERROR},
    ),
    (
        "write_result_fds",
        'import os\ndef f():\n    for fd in range(3, 64):\n        try:\n            os.write(fd, b\'{"status": "passed"}\\n\')\n        except OSError:\n            pass\n    return 1',
        {S.WRONG_ANSWER, S.SANDBOX_ERROR},
    ),
]


@pytest.fixture(scope="module")
def ex():
    with LocalExecutor(SandboxConfig(workers=2, cpu_time=1.0, memory_mb=512, output_bytes=200_000)) as e:
        yield e


def _my_children() -> set[int]:
    """PIDs of every descendant of this test process (via /proc)."""
    parents: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    parents[int(d)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    me, out, frontier = os.getpid(), set(), [os.getpid()]
    while frontier:
        p = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == p and pid not in out and pid != me:
                out.add(pid)
                frontier.append(pid)
    return out


def test_suite_is_large_enough():
    assert len(HOSTILE) >= 30


@pytest.mark.parametrize("name,code,allowed", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_program(ex, name, code, allowed):
    before = _my_children()
    # every job is compared with 1, so a program that survives must also be right
    [v] = ex.run([Job("call", code=code, cases=[""], expected=None if name == "env_vars" else ["1"])])
    if name == "env_vars":
        assert v.outputs == ["[]"], v  # no secrets reach the job
    assert v.status in allowed, f"{name}: {v.status.value} ({v.reason})"
    # (no wall-clock bound here: that depends on the machine's load; the budget itself is shown by
    # benchmarks/executor_throughput.py, and pytest-timeout catches a job that never ends)
    # nothing left behind
    assert not (HOME / MARK).exists() and not (REPO / MARK).exists()
    assert (REPO / "pyproject.toml").exists()
    assert not Path("/tmp/pwned").exists()
    assert _my_children() == before, "the job left a process behind (or killed a worker)"
    # the next ordinary job still passes
    [ok] = ex.run([Job("call", code="def f(x):\n    return len(x) + 1", cases=["[1, 2]"], expected=["3"])])
    assert ok.status == S.PASSED, ok


def test_hostile_batch_does_not_lose_results(ex):
    """All of them at once: every job gets its own verdict, in order."""
    jobs = [Job("call", code=c, cases=[""], id=n) for n, c, _ in HOSTILE]
    good = [
        Job("call", code="def f():\n    return 7", cases=[""], expected=["7"], id=f"ok{i}") for i in range(5)
    ]
    mixed = [j for pair in zip(jobs, good * 20) for j in pair][: 2 * len(good)] + jobs[len(good) :]
    verdicts = ex.run(mixed)
    assert [v.job_id for v in verdicts] == [j.id for j in mixed]
    for j, v in zip(mixed, verdicts):
        if j.id.startswith("ok"):
            assert v.status == S.PASSED


def test_check_job_cannot_forge_pass_by_writing_result(ex):
    code = (
        "import os, json\n"
        "def add(a, b):\n"
        "    for fd in range(3, 64):\n"
        "        try:\n"
        "            os.write(fd, json.dumps({'status': 'ok'}).encode())\n"
        "        except OSError:\n"
        "            pass\n"
        "    os._exit(0)\n"
    )
    [v] = ex.run(
        [Job("check", code=code, test_code="def check(c):\n    assert c(1, 2) == 3", entry_point="add")]
    )
    assert v.status != S.PASSED


def test_timeouts_do_not_starve_a_slow_correct_program():
    """Load-independent facts only: every loop times out, the slow program passes with its value.
    The wall-clock budget (20 x 1 s on 2 workers + the 2 s program) is a benchmark figure
    (benchmarks/executor_throughput.py prints it against its bound), not a test assertion."""
    with LocalExecutor(SandboxConfig(workers=2)) as ex2:
        loops = [
            Job(
                "call",
                code="def f():\n    while True:\n        pass",
                cases=[""],
                limits=Limits(cpu_time=1.0),
            )
        ] * 20
        slow = Job(
            "call",
            code="def f():\n    s = 0\n    for i in range(10**7):\n        s += i\n    return s",
            cases=[""],
            limits=Limits(cpu_time=2.0),
        )
        vs = ex2.run(loops[:10] + [slow] + loops[10:])
    assert all(v.status == S.TIMEOUT for i, v in enumerate(vs) if i != 10)
    assert vs[10].status == S.PASSED and vs[10].outputs == [str(sum(range(10**7)))]


def test_huge_returned_string_is_output_limit_every_time():
    """h10: a 400 MB result is refused while it is encoded, inside the child (one length check), so
    it comes back ``output_limit`` every time, never ``sandbox_error`` (a 400 MB json.dumps
    running out of memory) or ``timeout`` (writing it through the pipe)."""
    big = Job("call", code="def f():\n    return 'x' * (400 * 10**6)", cases=[""], expected=["1"])
    nested = Job("call", code="def f():\n    return [['y' * (100 * 10**6)] * 4]", cases=[""], expected=["1"])
    with LocalExecutor(SandboxConfig(workers=2)) as ex2:  # the defaults: 1 GB, 1 MB output
        vs = ex2.run([big, nested] * 3)
        [small] = ex2.run([Job("call", code="def f():\n    return 'x' * 900_000", cases=[""])])
    assert [v.status for v in vs] == [S.OUTPUT_LIMIT] * 6, [(v.status, v.reason) for v in vs]
    assert small.status == S.PASSED and len(small.outputs[0]) == 900_002  # under the limit: unchanged
