"""The sandbox zygote: a lean, warm, trusted process that forks one child per job.

Started by :mod:`gasp_rl.sandbox.pool` as ``python -I -S _zygote.py`` (stdlib only, no site
packages), optionally inside a bubblewrap namespace.  It reads one JSON job per line on stdin and
writes one JSON verdict per line on stdout.  It never runs model code itself: each job runs in a
forked child that first drops into its limits (rlimits, its own seccomp filter on top of the
zygote's, audit hook, private working directory, no inherited descriptors) and then executes the
code.  The zygote runs under a seccomp filter too (no execve, sockets, ptrace, mounts, ...).

Trust boundary: the child only ever *returns values* (as tagged JSON of plain builtins); expected
values never enter the child; this process parses and compares them.  So a hostile program cannot
forge a passing verdict on value-compared jobs (call / stdin / compare).  Assert-based ``check``
jobs necessarily run the tests beside the candidate; they pass only if the child reports success
together with a per-job random token it received on a pipe and dropped before the candidate ran.
"""

import ast
import base64

# Modules solutions commonly import: loading them once here makes every fork cheaper.
import bisect  # noqa: F401
import collections  # noqa: F401
import errno
import functools  # noqa: F401
import gc
import heapq  # noqa: F401
import itertools  # noqa: F401
import json
import math
import operator  # noqa: F401
import os
import re  # noqa: F401
import resource
import select
import shutil
import signal
import string  # noqa: F401
import sys
import time
import typing  # noqa: F401
from types import ModuleType

PROTECTED_FDS = 3  # stdin, stdout, stderr of the zygote are the protocol channel

# Status strings (mirrors gasp_rl.core.jobs.Status)
PASSED, WRONG, RUNTIME, TIMEOUT, MEMORY, OUTPUT, FORBIDDEN, INVALID, SANDBOX = (
    "passed",
    "wrong_answer",
    "runtime_error",
    "timeout",
    "memory_limit",
    "output_limit",
    "forbidden",
    "invalid_input",
    "sandbox_error",
)

DISPLAY_LIMIT = 300
CONF = {}


# --------------------------------------------------------------------------- literal values


class LiteralError(ValueError):
    pass


class OutputTooLarge(LiteralError):
    """The encoded result would exceed the job's output limit (raised while encoding, in the child,
    before any large JSON text is built)."""


_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf}


def parse_literal(text):
    """Parse literal text of plain values.  Like ``ast.literal_eval`` plus ``float('nan')``,
    ``float('inf')``, ``set()`` and ``frozenset([...])``.  Never calls user code."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        raise LiteralError(f"not a Python literal: {type(e).__name__}: {e}") from None
    return _lit(node)


def _lit(node):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Tuple):
        return tuple(_lit(e) for e in node.elts)
    if isinstance(node, ast.List):
        return [_lit(e) for e in node.elts]
    if isinstance(node, ast.Set):
        return {_lit(e) for e in node.elts}
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise LiteralError("dict unpacking is not a literal")
        return {_lit(k): _lit(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _lit(node.operand)
        if type(v) not in (int, float, complex):
            raise LiteralError("unary sign on a non-number")
        return -v if isinstance(node.op, ast.USub) else +v
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        left, right = _lit(node.left), _lit(node.right)
        if type(left) in (int, float) and type(right) is complex:
            return left + right if isinstance(node.op, ast.Add) else left - right
        raise LiteralError("only complex literals may use + or -")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        name, args = node.func.id, node.args
        if name == "float" and len(args) == 1 and isinstance(args[0], ast.Constant):
            key = str(args[0].value).strip().lower().lstrip("+")
            if key in ("nan", "inf", "infinity", "-inf", "-infinity", "-nan"):
                v = _SPECIAL_FLOATS["nan" if "nan" in key else "inf"]
                return -v if key.startswith("-") else v
        if name in ("set", "frozenset") and len(args) <= 1:
            items = _lit(args[0]) if args else ()
            if type(items) not in (list, tuple, set, frozenset):
                raise LiteralError(f"{name}() of a non-sequence")
            return set(items) if name == "set" else frozenset(items)
    raise LiteralError(f"not a plain literal: {type(node).__name__}")


def encode(value, budget):
    """Tagged JSON of a plain value.  Uses exact ``type(x) is`` checks so that no user-defined
    ``__eq__`` / ``__repr__`` / ``__hash__`` ever runs.  ``budget`` is ``[nodes, bytes]``, both
    counting down: nodes bound the work; bytes charge a LOWER bound of each value's JSON text
    (1 per node, the length of a string, bytes or big int) before that text is built, so a result
    over the output limit (a 400 MB string) is refused here, in the child, after one length check:
    ``output_limit``, never a 400 MB ``json.dumps``.  The exact size is checked once the (now
    bounded) text exists, see :func:`result_bytes`."""
    budget[0] -= 1
    budget[1] -= 1
    if budget[0] < 0:
        raise LiteralError("value too large")
    t = type(value)
    if t is str:
        budget[1] -= len(value) + 1
        if budget[1] < 0:
            raise OutputTooLarge(f"returned value exceeds the output limit ({len(value)} characters)")
        return value
    if budget[1] < 0:
        raise OutputTooLarge("returned value exceeds the output limit")
    if value is None or t is bool:
        return value
    if t is int:
        if -(2**53) < value < 2**53:
            return value
        budget[1] -= int.bit_length(value) // 4
        if budget[1] < 0:
            raise OutputTooLarge("returned value exceeds the output limit")
        return {"i": format(value, "x")}
    if t is float:
        return {"f": value.hex()}
    if t is list:
        return [encode(v, budget) for v in value]
    if t is tuple:
        return {"t": [encode(v, budget) for v in value]}
    if t is dict:
        return {"d": [[encode(k, budget), encode(v, budget)] for k, v in dict.items(value)]}
    if t is set or t is frozenset:
        return {"s" if t is set else "fs": [encode(v, budget) for v in value]}
    if t is bytes:
        budget[1] -= 2 * len(value)
        if budget[1] < 0:
            raise OutputTooLarge("returned value exceeds the output limit")
        return {"b": bytes.hex(value)}
    if t is complex:
        return {"c": [value.real.hex(), value.imag.hex()]}
    raise LiteralError(f"unserialisable result of type {t.__name__}")


def decode(obj):
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    if isinstance(obj, dict) and len(obj) == 1:
        ((tag, v),) = obj.items()
        if tag == "i":
            return int(v, 16)
        if tag == "f":
            return float.fromhex(v)
        if tag == "t":
            return tuple(decode(x) for x in v)
        if tag == "d":
            return {decode(k): decode(x) for k, x in v}
        if tag == "s":
            return {decode(x) for x in v}
        if tag == "fs":
            return frozenset(decode(x) for x in v)
        if tag == "b":
            return bytes.fromhex(v)
        if tag == "c":
            return complex(float.fromhex(v[0]), float.fromhex(v[1]))
    raise LiteralError("bad encoding")


def literal_text(value):
    """Literal text for a decoded plain value (``repr``, with special floats spelled parseably)."""
    t = type(value)
    if t is float:
        if math.isnan(value):
            return "float('nan')"
        if math.isinf(value):
            return "float('inf')" if value > 0 else "-float('inf')"
        return repr(value)
    if t is list:
        return "[" + ", ".join(literal_text(v) for v in value) + "]"
    if t is tuple:
        inner = ", ".join(literal_text(v) for v in value)
        return "(" + inner + ("," if len(value) == 1 else "") + ")"
    if t is dict:
        return "{" + ", ".join(literal_text(k) + ": " + literal_text(v) for k, v in value.items()) + "}"
    if t is set or t is frozenset:
        if not value:
            return "set()" if t is set else "frozenset()"
        inner = "{" + ", ".join(sorted(literal_text(v) for v in value)) + "}"
        return inner if t is set else "frozenset(" + inner + ")"
    if t is complex:
        return repr(value)
    return repr(value)


def values_equal(a, b):
    """The documented comparison semantics (see gasp_rl.core.jobs)."""
    ta, tb = type(a), type(b)
    if ta is float or tb is float:
        if ta in (int, float) and tb in (int, float) and ta is not bool and tb is not bool:
            if math.isnan(a) or math.isnan(b):
                return math.isnan(a) and math.isnan(b)
            return math.isclose(a, b, rel_tol=CONF.get("rel_tol", 1e-6), abs_tol=CONF.get("abs_tol", 1e-9))
        return False
    seq = (list, tuple)
    if ta in seq and tb in seq:
        if ta is not tb and not CONF.get("tuple_equals_list", True):
            return False
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
    if ta is dict and tb is dict:
        if a.keys() != b.keys():
            return False
        return all(values_equal(a[k], b[k]) for k in a)
    if ta in (set, frozenset) and tb in (set, frozenset):
        return a == b
    if ta in seq or tb in seq or ta is dict or tb is dict:
        return False
    return a == b


def shorten(text, limit=DISPLAY_LIMIT):
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more chars]"


def stdout_equal(actual, expected):
    """Line-by-line comparison ignoring trailing whitespace; numeric lines compared as floats."""
    a = [line.rstrip() for line in actual.rstrip().splitlines()]
    e = [line.rstrip() for line in expected.rstrip().splitlines()]
    if len(a) != len(e):
        return False
    for x, y in zip(a, e):
        if x == y:
            continue
        xs, ys = x.split(), y.split()
        if len(xs) != len(ys):
            return False
        for u, v in zip(xs, ys):
            if u == v:
                continue
            try:
                fu, fv = float(u), float(v)
            except ValueError:
                return False
            if not math.isclose(fu, fv, rel_tol=CONF.get("rel_tol", 1e-6), abs_tol=CONF.get("abs_tol", 1e-9)):
                return False
    return True


# --------------------------------------------------------------------------- the child


class Forbidden(Exception):
    pass


# Audit events a job may never raise (the whole call is refused).
_DENY_EVENTS = {
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.killpg",
    "subprocess.Popen",
    "pty.spawn",
    "signal.pthread_kill",
    "sys.addaudithook",
    "socket.__new__",
    "socket.connect",
    "socket.bind",
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyaddr",
    "socket.sendto",
    "socket.sethostname",
    "_thread.start_new_thread",
    "gc.get_objects",
    "gc.get_referrers",
    "gc.get_referents",
    "resource.setrlimit",
    "resource.prlimit",
    "os.setuid",
    "os.setgid",
    "os.chroot",
    "sqlite3.connect",
    "os.startfile",
    "os.add_dll_directory",
    "mmap.__new__",
    "syslog.openlog",
    "webbrowser.open",
    "urllib.Request",
    "http.client.connect",
    "ftplib.connect",
    "smtplib.connect",
    "poplib.connect",
    "imaplib.open",
    "telnetlib.Telnet.open",
    "shutil.rmtree",
    "shutil.copyfile",
    "shutil.move",
    "shutil.chown",
    "shutil.make_archive",
    "shutil.unpack_archive",
    "os.getxattr",
    "os.setxattr",
    "os.removexattr",
    "os.listxattr",
}
_DENY_PREFIXES = ("ctypes.", "winreg.", "msvcrt.", "_winapi.")
_DENY_IMPORTS = {
    "ctypes",
    "_ctypes",
    "subprocess",
    "_posixsubprocess",
    "socket",
    "_socket",
    "ssl",
    "_ssl",
    "multiprocessing",
    "_multiprocessing",
    "concurrent",
    "asyncio",
    "pty",
    "signal",
    "_signal",
    "resource",
    "mmap",
    "fcntl",
    "termios",
    "_posixshmem",
    "sqlite3",
    "_sqlite3",
    "urllib",
    "http",
    "ftplib",
    "smtplib",
    "webbrowser",
    "shutil",
    "tempfile",
    "pickle",
    "_pickle",
    "marshal",
    "gc",
    "zipimport",
    "runpy",
    "pdb",
    "code",
    "codeop",
    "faulthandler",
    "tracemalloc",
}
_PATH_EVENTS = {
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.symlink",
    "os.link",
    "os.chmod",
    "os.chown",
    "os.truncate",
    "os.utime",
    "os.chdir",
    "os.chflags",
    "os.lchflags",
    "os.mkfifo",
    "os.mknod",
}
_LIST_EVENTS = {"os.listdir", "os.scandir", "glob.glob", "os.walk"}


def _inside(path, root):
    try:
        p = os.path.realpath(os.fsdecode(path) if not isinstance(path, int) else "")
    except Exception:
        return False
    return p == root or p.startswith(root + os.sep)


def install_audit_hook(workdir, attempts):
    """Installed in each child, not once in the zygote: an audit hook can never be removed, so one
    in the zygote would have to let the zygote's own fork/open/import through and be switched on
    in the child by a flag that job code could then reach and switch off again; per child it costs
    one ``sys.addaudithook`` call."""
    read_roots = CONF["_read_roots_real"]  # resolved once in the zygote

    def readable(path):
        p = os.path.realpath(os.fsdecode(path))
        return (
            p == workdir
            or p.startswith(workdir + os.sep)
            or any(p == r or p.startswith(r + os.sep) for r in read_roots)
            or p in ("/dev/null", "/dev/urandom")
        )

    def hook(event, args):
        if event == "open":
            path, mode = args[0], args[1]
            if isinstance(path, int) or path is None:
                return
            writing = mode is not None and any(c in str(mode) for c in "wax+")
            if isinstance(mode, int) or mode is None:
                flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
                writing = writing or bool(
                    flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
                )
            if writing and not _inside(path, workdir):
                attempts.append(f"write {os.fsdecode(path)!s}"[:200])
                raise Forbidden(f"writing {path!r} outside the job directory")
            if not writing and not readable(path):
                attempts.append(f"read {os.fsdecode(path)!s}"[:200])
                raise Forbidden(f"reading {path!r}")
            return
        if event == "import":
            top = str(args[0]).split(".")[0]
            if top in _DENY_IMPORTS:
                attempts.append(f"import {args[0]}")
                raise Forbidden(f"import of {args[0]!r}")
            return
        if event in _DENY_EVENTS or event.startswith(_DENY_PREFIXES):
            attempts.append(event)
            raise Forbidden(event)
        if event in _LIST_EVENTS:
            if args and isinstance(args[0], (str, bytes)) and not readable(args[0]):
                attempts.append(f"{event} {args[0]!r}"[:200])
                raise Forbidden(f"{event} outside the job directory")
            return
        if event in _PATH_EVENTS:
            for a in args:
                if isinstance(a, (str, bytes)) and not _inside(a, workdir):
                    attempts.append(f"{event} {a!r}"[:200])
                    raise Forbidden(f"{event} outside the job directory")

    sys.addaudithook(hook)


def apply_limits(limits):
    cpu = float(limits["cpu_time"])
    hard_cpu = math.ceil(cpu) + 1  # backstop one second after the exact SIGPROF below
    mem = int(limits["memory_mb"]) * 1024 * 1024
    out = int(limits["output_bytes"])
    nofile = int(limits["open_files"])
    for res, val in (
        (resource.RLIMIT_CPU, (hard_cpu, hard_cpu)),  # soft == hard: SIGKILL even if SIGPROF is ignored
        (resource.RLIMIT_AS, (mem, mem)),
        (resource.RLIMIT_FSIZE, (out, out)),
        (resource.RLIMIT_NOFILE, (nofile, nofile)),
        (resource.RLIMIT_CORE, (0, 0)),
        (resource.RLIMIT_NPROC, (0, 0)),
    ):
        try:
            resource.setrlimit(res, val)
        except (ValueError, OSError):
            pass
    # Fractional CPU budget: SIGPROF after exactly `cpu` seconds of CPU (RLIMIT_CPU is the backstop).
    signal.setitimer(signal.ITIMER_PROF, cpu)


PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2


def install_seccomp():
    """Add the per-job filter in this (child) process: one prctl through a function pointer the
    zygote resolved already.  It denies what the zygote's own filter (loaded once in
    :func:`main`, inherited here) has to let through for the zygote: process creation, ``kill``,
    rlimit changes.  Those cannot be denied in the zygote: it forks, kills a job's process group,
    and sets each child's rlimits.  ``no_new_privs``, which seccomp requires, is set once in the
    zygote; it is inherited by every child and can never be unset."""
    prog = CONF.get("_seccomp_prog")
    if prog is None:
        return
    prctl, fprog = prog
    if prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, fprog, 0, 0) != 0:
        raise OSError("prctl(SECCOMP) failed")


def scrub_modules():
    """Hide the zygote's own machinery from the job (ctypes, used to load seccomp; signal; our
    module): removed from ``sys.modules``, a later import of them raises the audit event."""
    for name in CONF["_scrub"]:
        sys.modules.pop(name, None)
    main = ModuleType("__main__")
    sys.modules["__main__"] = main
    return main


def classify_exception(e, attempts):
    if attempts or isinstance(e, Forbidden):
        return FORBIDDEN, f"forbidden operation: {attempts[0] if attempts else e}"
    if isinstance(e, MemoryError):
        return MEMORY, "MemoryError (memory limit)"
    if isinstance(e, OSError) and e.errno == errno.EFBIG:
        return OUTPUT, "output limit exceeded"
    if isinstance(e, OSError) and e.errno == errno.EPERM:
        return FORBIDDEN, f"forbidden operation: {type(e).__name__}: {e}"
    if isinstance(e, RuntimeError) and "can't start new thread" in str(e):
        return FORBIDDEN, "forbidden operation: starting a thread"
    return RUNTIME, f"{type(e).__name__}: {shorten(_safe_str(e), 200)}"


def _safe_str(e):
    try:
        return str(e)
    except BaseException:
        return "<unprintable exception>"


def _parse_args(text):
    text = text.strip()
    if not text:
        return ()
    value = parse_literal("(" + text + ",)")
    return value


def _budget(job):
    """[nodes, bytes] for :func:`encode`."""
    return [CONF["max_nodes"], _max_result_bytes(job["limits"])]


def _max_result_bytes(limits):
    """Largest result message (JSON) a child may send: the output limit plus the envelope."""
    return int(limits["output_bytes"]) + 4096


def result_bytes(res, limits):
    """The child's result as JSON bytes; ``output_limit`` when the text is over the limit."""
    data = json.dumps(res).encode()
    if len(data) > _max_result_bytes(limits):
        return json.dumps({"status": OUTPUT, "reason": "returned value exceeds the output limit"}).encode()
    return data


def child_main(job, token, rfd_token, wfd, workdir):
    """Runs in the forked child.  Returns a result dict (never raises)."""
    attempts = []
    kind = job["kind"]
    result = {"kind": kind}
    try:
        # Read the check token, then close the token pipe before any user code runs.
        if rfd_token is not None:
            token = os.read(rfd_token, 64).decode()
            os.close(rfd_token)
        # Parse untrusted inputs before the user code can interfere.
        if kind == "call":
            try:
                args_list = [_parse_args(c) for c in job["cases"]]
            except (LiteralError, RecursionError, MemoryError) as e:
                return {"status": INVALID, "reason": f"inputs are not Python literals: {_safe_str(e)[:200]}"}
        if kind == "compare":
            try:
                value = parse_literal(job["cases"][0])
                return {"status": "ok", "outputs": [encode(value, _budget(job))]}
            except OutputTooLarge as e:
                return {"status": OUTPUT, "reason": str(e)}
            except (LiteralError, RecursionError, MemoryError) as e:
                return {"status": WRONG, "reason": f"answer is not a Python literal: {_safe_str(e)[:200]}"}
        code = job["code"]
        try:
            compiled = compile(code, "<solution>", "exec")
            test_compiled = (
                compile(job.get("test_code") or "", "<tests>", "exec") if kind == "check" else None
            )
        except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
            return {
                "status": RUNTIME,
                "reason": f"SyntaxError: {shorten(_safe_str(e), 200)}",
                "error_type": "SyntaxError",
            }
        main = scrub_modules()
        install_audit_hook(workdir, attempts)
        g = main.__dict__
        g["__builtins__"] = __builtins__
        result = {"status": "ok"}
        exec(compiled, g)
        if kind == "call":
            fn = g.get(job["entry_point"])
            if not callable(fn):
                return {
                    "status": RUNTIME,
                    "reason": f"code does not define {job['entry_point']}()",
                    "error_type": "NameError",
                }
            outputs = []
            budget = _budget(job)
            for args in args_list:
                value = fn(*args)
                try:
                    outputs.append(encode(value, budget))
                except OutputTooLarge as e:
                    return {"status": OUTPUT, "reason": str(e), "case": len(outputs)}
                except LiteralError as e:
                    return {"status": WRONG, "reason": str(e), "case": len(outputs), "outputs": outputs}
            result = {"status": "ok", "outputs": outputs}
        elif kind == "check":
            exec(test_compiled, g)
            ep = job.get("entry_point")
            if ep:
                check = g.get("check")
                cand = g.get(ep)
                if not callable(check) or not callable(cand):
                    return {
                        "status": RUNTIME,
                        "reason": f"missing check() or {ep}()",
                        "error_type": "NameError",
                    }
                check(cand)
            result = {"status": "ok", "token": token}
        else:  # stdin: the script already ran at exec
            result = {"status": "ok"}
        if attempts:
            return {"status": FORBIDDEN, "reason": f"forbidden operation: {attempts[0]}"}
        return result
    except SystemExit as e:
        return {
            "status": RUNTIME,
            "reason": f"SystemExit({_safe_str(e.code)[:50]}) called",
            "error_type": "SystemExit",
        }
    except KeyboardInterrupt:
        return {"status": RUNTIME, "reason": "KeyboardInterrupt", "error_type": "KeyboardInterrupt"}
    except RecursionError:
        return {
            "status": RUNTIME,
            "reason": "RecursionError: maximum recursion depth exceeded",
            "error_type": "RecursionError",
        }
    except BaseException as e:  # noqa: BLE001 - anything the job raised is its verdict
        status, reason = classify_exception(e, attempts)
        return {"status": status, "reason": reason, "error_type": type(e).__name__}


def write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def run_child(job, limits, stdin_text, workdir, want_token):
    """Fork, run one job in the child, collect its result.  Returns (result, cpu, wall, stdout_text)."""
    rfd, wfd = os.pipe()
    token = None
    trfd = twfd = None
    if want_token:
        token = base64.b32encode(os.urandom(20)).decode()
        trfd, twfd = os.pipe()
    out_path = os.path.join(workdir, ".stdout")
    in_path = "/dev/null"
    if stdin_text:
        in_path = os.path.join(workdir, ".stdin")
        with open(in_path, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write(stdin_text)
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:  # ---------------- child
        try:
            os.setpgid(0, 0)
            os.close(rfd)
            os.chdir(workdir)
            fin = os.open(in_path, os.O_RDONLY)
            try:
                fout = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            except OSError:  # an earlier job made it unwritable (chmod): start from a new file
                os.unlink(out_path)
                fout = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            os.dup2(fin, 0)
            os.dup2(fout, 1)
            os.dup2(fout, 2)
            keep = sorted({wfd} | ({trfd} if trfd is not None else set()))
            lo = 3
            for fd in keep:
                os.closerange(lo, fd)
                lo = fd + 1
            os.closerange(lo, 1024)
            # stdio objects, environment and the other signal dispositions were prepared once in
            # the zygote (prepare_child_state): the child starts with exactly that state
            sys.stdin, sys.stdout = CHILD_STDIO
            sys.stderr = sys.stdout
            for sig in (signal.SIGINT, signal.SIGPIPE):  # the two the zygote itself must ignore
                signal.signal(sig, signal.SIG_DFL)
            apply_limits(limits)
            install_seccomp()
            res = child_main(job, None, trfd, wfd, workdir)
            try:
                sys.stdout.flush()
            except BaseException:
                pass
            data = result_bytes(res, limits)
        except BaseException as e:  # noqa: BLE001
            try:
                data = json.dumps(
                    {"status": SANDBOX, "reason": f"child setup failed: {type(e).__name__}: {e}"}
                ).encode()
            except BaseException:
                data = b'{"status": "sandbox_error", "reason": "child setup failed"}'
        try:
            write_all(wfd, data)
        finally:
            os._exit(0)
    # ---------------- zygote side
    os.close(wfd)
    if trfd is not None:
        os.close(trfd)
        try:
            write_all(twfd, token.encode())
        finally:
            os.close(twfd)
    wall_limit = float(limits["wall_time"])
    max_bytes = _max_result_bytes(limits)
    chunks, size, over, wall_hit = [], 0, False, False
    deadline = t0 + wall_limit
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            wall_hit = True
            break
        r, _, _ = select.select([rfd], [], [], remaining)
        if not r:
            continue
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        size += len(chunk)
        if size > max_bytes:
            over = True
            break
        chunks.append(chunk)
    if wall_hit or over:
        _kill_group(pid)
    os.close(rfd)
    _, status, ru = os.wait4(pid, 0)
    _kill_group(pid)  # anything the job left behind in its process group
    wall = time.monotonic() - t0
    cpu = ru.ru_utime + ru.ru_stime
    stdout_text = ""
    if job["kind"] == "stdin" and not wall_hit:
        try:
            with open(out_path, "rb") as fh:
                stdout_text = fh.read(int(limits["output_bytes"]) + 1).decode("utf-8", errors="replace")
        except OSError:
            stdout_text = ""
    if over:
        return {"status": OUTPUT, "reason": "returned value exceeds the output limit"}, cpu, wall, ""
    if wall_hit:
        return {"status": TIMEOUT, "reason": f"wall time limit {wall_limit:.1f}s exceeded"}, cpu, wall, ""
    raw = b"".join(chunks)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig in (signal.SIGXCPU, signal.SIGPROF) or (
            sig == signal.SIGKILL and cpu >= float(limits["cpu_time"]) * 0.5  # the RLIMIT_CPU backstop
        ):
            return (
                {"status": TIMEOUT, "reason": f"CPU time limit {float(limits['cpu_time']):.2f}s exceeded"},
                cpu,
                wall,
                "",
            )
        if sig == signal.SIGXFSZ:
            return {"status": OUTPUT, "reason": "output limit exceeded (stdout/stderr)"}, cpu, wall, ""
        if sig == signal.SIGSYS:
            return {"status": FORBIDDEN, "reason": "forbidden system call"}, cpu, wall, ""
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return (
            {"status": RUNTIME, "reason": f"process crashed with {name}", "error_type": name},
            cpu,
            wall,
            "",
        )
    if not raw:
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
        return (
            {
                "status": RUNTIME,
                "reason": f"process exited (status {code}) before reporting a result",
                "error_type": "Exit",
            },
            cpu,
            wall,
            "",
        )
    try:
        res = json.loads(raw)
        if not isinstance(res, dict):
            raise ValueError
    except ValueError:
        return {"status": SANDBOX, "reason": "unreadable result from the job process"}, cpu, wall, ""
    if want_token and res.get("status") == "ok" and res.get("token") != token:
        return {"status": FORBIDDEN, "reason": "result channel tampered with"}, cpu, wall, ""
    return res, cpu, wall, stdout_text


def _kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# --------------------------------------------------------------------------- job logic (zygote)


def _display(value_text):
    return shorten(value_text)


def handle(job):
    limits = job["limits"]
    kind = job["kind"]
    cases = job.get("cases") or []
    expected = job.get("expected")
    workdir = CONF["workdir"]
    try:
        return _handle(job, kind, cases, expected, limits, workdir)
    finally:
        _clean(workdir)


def _clean(workdir):
    """Empty the job directory (cheap when the job wrote nothing but its captured output).  The
    captured-output file ``.stdout`` is kept when it is still a plain file: the next child
    truncates it when it opens it (before any job code runs), so nothing of one job's output is
    visible to the next, and a job that replaced it by anything else (directory, FIFO, symlink)
    has that removed here."""
    with os.scandir(workdir) as it:
        for entry in it:
            if entry.name == ".stdout" and entry.is_file(follow_symlinks=False):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                try:
                    os.unlink(entry.path)
                except OSError:
                    pass


def _parse_expected(text, index):
    try:
        return parse_literal(text), None
    except (LiteralError, RecursionError, MemoryError) as e:
        return None, {"status": INVALID, "reason": f"expected value #{index} is not a Python literal: {e}"}


def _handle(job, kind, cases, expected, limits, workdir):
    cpu_total = wall_total = 0.0
    if kind == "stdin":
        for i, stdin_text in enumerate(cases):
            res, cpu, wall, out = run_child(job, limits, stdin_text, workdir, False)
            cpu_total += cpu
            wall_total += wall
            if res.get("status") != "ok":
                res.update(case=i, cpu_time=cpu_total, wall_time=wall_total)
                return res
            if expected is not None and not stdout_equal(out, expected[i]):
                return {
                    "status": WRONG,
                    "reason": f"wrong output on test {i}",
                    "case": i,
                    "expected": shorten(expected[i]),
                    "actual": shorten(out),
                    "cpu_time": cpu_total,
                    "wall_time": wall_total,
                }
        return {"status": PASSED, "cpu_time": cpu_total, "wall_time": wall_total}
    res, cpu, wall, _ = run_child(job, limits, "", workdir, kind == "check")
    res["cpu_time"], res["wall_time"] = cpu, wall
    if res.get("status") != "ok":
        return res
    if kind == "check":
        return {"status": PASSED, "cpu_time": cpu, "wall_time": wall}
    try:
        values = [decode(o) for o in res.get("outputs", [])]
    except (LiteralError, ValueError, TypeError, KeyError):
        return {"status": SANDBOX, "reason": "undecodable outputs", "cpu_time": cpu, "wall_time": wall}
    texts = [literal_text(v) for v in values]
    out = {"status": PASSED, "outputs": texts, "cpu_time": cpu, "wall_time": wall}
    if expected is None:
        return out
    for i, (v, exp_text) in enumerate(zip(values, expected)):
        exp, err = _parse_expected(exp_text, i)
        if err:
            err.update(cpu_time=cpu, wall_time=wall)
            return err
        if not values_equal(v, exp):
            out.update(
                status=WRONG,
                reason=f"wrong answer on case {i}",
                case=i,
                expected=_display(literal_text(exp)),
                actual=_display(texts[i]),
            )
            return out
    return out


# --------------------------------------------------------------------------- main loop


CHILD_STDIO = ()


def prepare_child_state(workdir):
    """Per-process state every child needs, set up once here instead of once per fork (each
    child inherits it; after a fork each object a child writes costs a page copy):

    * the environment a job sees: only HOME/TMPDIR (its directory), LANG, PATH; the zygote never
      reads its environment, so it can live with the job's;
    * SIGTERM, SIGXFSZ (a write over RLIMIT_FSIZE kills with it) and SIGPROF (the fractional CPU
      budget) at their defaults; the zygote never sets an rlimit or a timer on itself.  SIGINT and
      SIGPIPE stay ignored here (a dying child must not take the zygote down) and are reset in
      each child;
    * the job's ``sys.stdin`` / ``sys.stdout`` text wrappers over fds 0 and 1.  They are created
      while fds 0 and 1 are a regular file, as they are in the child (so seekable / tell behave as
      if the child had opened them), and then fds 0 and 1 go back to the protocol pipes.  The
      zygote never uses these objects; each child gets them fresh (empty buffers) at fork.
    """
    global CHILD_STDIO
    os.environ.clear()
    os.environ.update({"HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"})
    for sig in (signal.SIGTERM, signal.SIGXFSZ, signal.SIGPROF):
        signal.signal(sig, signal.SIG_DFL)
    saved = os.dup(0), os.dup(1)
    probe = os.path.join(workdir, ".stdout")
    fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.dup2(fd, 0)
        os.dup2(fd, 1)
        CHILD_STDIO = (
            open(0, closefd=False, encoding="utf-8", errors="replace"),  # noqa: SIM115
            open(1, "w", closefd=False, encoding="utf-8", errors="replace"),  # noqa: SIM115
        )
    finally:
        os.dup2(saved[0], 0)
        os.dup2(saved[1], 1)
        for f in (fd, *saved):
            os.close(f)
        os.unlink(probe)


def setup_seccomp(bpf_hex, child_bpf_hex):
    """Set ``no_new_privs``, load the zygote's own filter on this process, and prepare the child
    filter (returned, loaded per job by :func:`install_seccomp`)."""
    if not bpf_hex or not child_bpf_hex:
        return None
    import ctypes

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    def program(hex_text):
        bpf = bytes.fromhex(hex_text)
        buf = ctypes.create_string_buffer(bpf, len(bpf))
        return buf, SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))

    own_buf, own = program(bpf_hex)
    child_buf, child = program(child_bpf_hex)
    libc = ctypes.CDLL(None, use_errno=True)
    CONF["_seccomp_buf"] = (own_buf, child_buf)  # keep alive
    prctl = libc.prctl  # resolved here, not in each child
    if prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:  # inherited by every child, irreversible
        raise OSError("prctl(NO_NEW_PRIVS) failed")
    if prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(own), 0, 0) != 0:
        raise OSError("prctl(SECCOMP) failed for the zygote's own filter")
    return prctl, ctypes.byref(child), child


def main():
    # Python 3.10 has no -P: drop the script's own directory from the import path here
    here = os.path.dirname(os.path.realpath(__file__))
    sys.path[:] = [p for p in sys.path if p and os.path.realpath(p) != here]
    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    conf = json.loads(stdin.readline())
    CONF.update(conf)
    CONF.setdefault("max_nodes", 1_000_000)
    os.makedirs(CONF["tmp_root"], exist_ok=True)
    CONF["workdir"] = os.path.realpath(os.path.join(CONF["tmp_root"], f"w{os.getpid()}"))
    os.makedirs(CONF["workdir"], mode=0o700, exist_ok=True)
    CONF["_read_roots_real"] = tuple(os.path.realpath(p) for p in CONF["read_roots"])
    seccomp = setup_seccomp(CONF.get("seccomp_bpf"), CONF.get("seccomp_child_bpf"))
    if seccomp is not None:
        prctl, ref, prog = seccomp
        CONF["_seccomp_prog"] = (prctl, ref)
        CONF["_seccomp_keep"] = prog
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    prepare_child_state(CONF["workdir"])
    CONF["_scrub"] = [n for n in sys.modules if n.split(".")[0] in _DENY_IMPORTS or n == "__main__"]
    # Children must not copy the zygote's pages: no GC passes over inherited objects.
    gc.collect()
    gc.freeze()
    stdout.write(
        json.dumps({"ready": True, "pid": os.getpid(), "python": sys.version.split()[0]}).encode() + b"\n"
    )
    stdout.flush()
    jobs_since_gc = 0
    for line in stdin:
        try:
            job = json.loads(line)
            # Everything the zygote allocated so far goes to the permanent generation before the
            # fork: a child's garbage collections then never walk (and so never copy the pages
            # of) the zygote's objects.  A real collection now and then reclaims zygote cycles.
            jobs_since_gc += 1
            if jobs_since_gc >= 1000:
                jobs_since_gc = 0
                gc.unfreeze()
                gc.collect()
            gc.freeze()
            res = handle(job)
        except Exception as e:  # noqa: BLE001 - the zygote must survive anything
            res = {"status": SANDBOX, "reason": f"zygote error: {type(e).__name__}: {e}"}
        stdout.write(json.dumps(res).encode() + b"\n")
        stdout.flush()


if __name__ == "__main__":
    main()
