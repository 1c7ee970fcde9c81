"""The local sandbox pool: N warm zygote workers (one per core), each forking one child per job.

The caller's process never runs model code and never unpickles anything: jobs go out and
verdicts come back as JSON lines over pipes.  One thread per worker feeds it jobs from a shared
queue, several at a time when the queue is long (one write, then one result line per job as the
zygote finishes it: the zygote goes straight from one job to the next without waiting for a round
trip through this process).  A worker that dies or stops answering is killed and restarted and its
job gets a ``sandbox_error`` verdict (the jobs behind it in its batch go back to the queue), so one
bad job never stalls the pool or loses other results.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import select
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from typing import Any

from gasp_rl.config import SandboxConfig
from gasp_rl.core.jobs import Job, Status, Verdict, limits_from_config
from gasp_rl.sandbox.isolation import ZYGOTE, Isolation, bwrap_argv, detect, python_roots

log = logging.getLogger("gasp_rl.sandbox")

# Interpreter flags of a zygote.  Not -I: it implies -E, which ignores PYTHONHASHSEED, and every
# worker would get its own random hash seed (a set of strings would iterate in a different order on
# each worker, so reference outputs could not be reproduced when students are graded).  What -I
# gives otherwise is kept: -s (no user site), -S (no site), -P (3.11+: no script directory on
# sys.path; on 3.10 the zygote removes it itself), and the environment is built from scratch.
ZYGOTE_FLAGS = ("-s", "-S", "-P") if sys.version_info >= (3, 11) else ("-s", "-S")

_GRACE = 5.0  # seconds beyond a job's wall limit before the worker itself is presumed stuck
_MAX_BATCH = 4  # jobs sent to one worker in one write (more only unbalances the tail)
# A batch's bytes stay well under a pipe's 64 KiB buffer, so its write never blocks while the zygote
# is busy writing a result this thread has not read yet (the first job of a batch may be larger:
# alone, it is read whole before it runs, as before).
_MAX_BATCH_BYTES = 48 * 1024


class _Worker:
    """One zygote process and the pipe protocol to it."""

    def __init__(self, conf: dict[str, Any], iso: Isolation, hash_seed: int = 0) -> None:
        self.conf = conf
        self.iso = iso
        self.hash_seed = hash_seed
        self.proc: subprocess.Popen[bytes] | None = None
        self._buf = b""
        self.start()

    def start(self) -> None:
        argv = [sys.executable, *ZYGOTE_FLAGS, str(ZYGOTE)]
        if self.iso.bwrap:
            argv = bwrap_argv(self.iso.bwrap) + argv
        # The environment is exactly this (nothing of ours leaks in), so PYTHONHASHSEED is the only
        # PYTHON* variable the interpreter sees: it fixes the hash seed of the zygote and of every
        # child it forks (a fork cannot change the seed of a running interpreter).
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONHASHSEED": str(self.hash_seed),
            "HOME": "/tmp",
        }
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
            start_new_session=True,
        )
        self._buf = b""
        self._send(self.conf)
        hello = self._recv(30.0)
        if not hello or not hello.get("ready"):
            self.kill()
            raise RuntimeError("sandbox worker failed to start")

    def _send(self, obj: dict[str, Any]) -> None:
        self._send_lines([json.dumps(obj).encode() + b"\n"])

    def _send_lines(self, lines: list[bytes]) -> None:
        assert self.proc and self.proc.stdin
        self.proc.stdin.write(b"".join(lines))
        self.proc.stdin.flush()

    def _recv(self, timeout: float) -> dict[str, Any] | None:
        assert self.proc and self.proc.stdout
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            r, _, _ = select.select([fd], [], [], remaining)
            if not r:
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            obj = json.loads(line)
        except ValueError:
            return None
        return obj if isinstance(obj, dict) else None

    def run(self, job: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """The raw result, or None if the worker died or hung (it is then restarted)."""
        return self.run_batch([json.dumps(job).encode() + b"\n"], [timeout])[0]

    def run_batch(self, lines: list[bytes], timeouts: list[float]) -> list[dict[str, Any] | None]:
        """Send several encoded jobs at once; their raw results in order, each waited for at most
        its own timeout after the previous one arrived.  Stops at the first job whose result did
        not come (it is then ``None``, the worker is restarted, and the list is shorter than
        ``lines``: those jobs never ran)."""
        out: list[dict[str, Any] | None] = []
        try:
            self._send_lines(lines)
            for timeout in timeouts:
                res = self._recv(timeout)
                out.append(res)
                if res is None:
                    break
        except (OSError, ValueError, AssertionError):  # AssertionError: no process (restart failed)
            out.append(None)
        if out[-1] is None:
            self.kill()
            try:
                self.start()
            except Exception as e:  # noqa: BLE001
                log.error("could not restart sandbox worker: %s", e)
        return out

    def kill(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except Exception:  # noqa: BLE001
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream:
                    stream.close()
            except Exception:  # noqa: BLE001
                pass
        self.proc = None


# A queued job: (index in its run() call, its JSON line, its timeout, its id, that call's results,
# (the call's done event, its count of results still missing)).
_Item = tuple[int, bytes, float, str, list[Verdict | None], tuple[threading.Event, list[int]]]


class LocalExecutor:
    """A pool of sandbox workers on this machine (implements :class:`gasp_rl.seams.Executor`)."""

    def __init__(
        self, cfg: SandboxConfig | None = None, *, workers: int | None = None, quiet: bool = False
    ) -> None:
        self.cfg = cfg or SandboxConfig()
        self.limits = limits_from_config(self.cfg)
        self.isolation = detect(self.cfg.isolation, self.cfg.seccomp)
        # Two workers per core: while one zygote waits on its pipe, the other keeps the core busy.
        n = workers or self.cfg.workers or 2 * (os.cpu_count() or 1)
        conf = {
            "tmp_root": "/tmp/gasp-jobs" if self.isolation.bwrap else _private_tmp(),
            "read_roots": python_roots(),
            "seccomp_bpf": self.isolation.seccomp_bpf.hex() if self.isolation.seccomp_bpf else None,
            "seccomp_child_bpf": (
                self.isolation.seccomp_child_bpf.hex() if self.isolation.seccomp_child_bpf else None
            ),
            "rel_tol": self.cfg.float_rel_tol,
            "abs_tol": self.cfg.float_abs_tol,
            "tuple_equals_list": self.cfg.tuple_equals_list,
        }
        self._tmp_root = None if self.isolation.bwrap else conf["tmp_root"]
        if not quiet:
            log.info("%s; %d workers", self.isolation.describe(), n)
        self._conf = conf
        self._workers, self._queue, self._threads = self._start_pool(n, self.cfg.hash_seed)
        # workers with the second hash seed, for the determinism check (started when first needed)
        self._alt: tuple[list[_Worker], queue.Queue[_Item | None], list[threading.Thread]] | None = None
        self._alt_lock = threading.Lock()
        self._closed = False

    def _start_pool(
        self, n: int, hash_seed: int
    ) -> tuple[list[_Worker], queue.Queue[_Item | None], list[threading.Thread]]:
        workers = [_Worker(self._conf, self.isolation, hash_seed) for _ in range(n)]
        q: queue.Queue[_Item | None] = queue.Queue()
        threads = [threading.Thread(target=self._serve, args=(w, q, n), daemon=True) for w in workers]
        for t in threads:
            t.start()
        return workers, q, threads

    def _alt_queue(self) -> queue.Queue[_Item | None]:
        with self._alt_lock:
            if self._alt is None:
                self._alt = self._start_pool(len(self._workers), self.cfg.determinism_hash_seed)
            return self._alt[1]

    # ------------------------------------------------------------------ public API

    @property
    def n_workers(self) -> int:
        return len(self._workers)

    def run(self, jobs: list[Job]) -> list[Verdict]:
        """Verdicts in the order of ``jobs``; never raises for a bad job.  Every job runs with the
        hash seed ``sandbox.hash_seed``."""
        return self._dispatch(jobs, [self._queue] * len(jobs))

    def _dispatch(self, jobs: list[Job], queues: list[queue.Queue[_Item | None]]) -> list[Verdict]:
        if self._closed:
            raise RuntimeError("executor is closed")
        results: list[Verdict | None] = [None] * len(jobs)
        for i, job in enumerate(jobs):
            results[i] = self._validate(job)
        counter = [sum(r is None for r in results)]
        if counter[0] == 0:
            return [r for r in results if r is not None]
        done = threading.Event()
        for i, job in enumerate(jobs):
            if results[i] is None:
                wire = self._wire(job)
                line = json.dumps(wire).encode() + b"\n"  # encoded here, in the caller's thread
                timeout = (
                    wire["limits"]["wall_time"] * max(1, len(wire["cases"]) if wire["kind"] == "stdin" else 1)
                    + _GRACE
                )
                queues[i].put((i, line, timeout, job.id, results, (done, counter)))
        done.wait()
        return [r if r is not None else Verdict(Status.SANDBOX_ERROR, "lost") for r in results]

    def check_determinism(self, jobs: list[Job]) -> list[tuple[bool, Verdict]]:
        """Run each job twice, in separate fresh processes with different, fixed hash seeds
        (``sandbox.hash_seed``, then ``sandbox.determinism_hash_seed``); deterministic when both
        verdicts agree on status and outputs.  The verdict returned is the first run's, made with
        the seed :meth:`run` uses, so reference outputs taken from it are what grading reproduces.
        A program whose output depends on the iteration order of a set or dict of strings is
        therefore rejected (or, if the two orders happen to agree, accepted) the same way every
        time, whichever workers the runs land on."""
        alt = self._alt_queue() if jobs else self._queue
        verdicts = self._dispatch([j for job in jobs for j in (job, job)], [self._queue, alt] * len(jobs))
        out = []
        for k in range(len(jobs)):
            a, b = verdicts[2 * k], verdicts[2 * k + 1]
            same = a.status == b.status and a.outputs == b.outputs and a.actual == b.actual
            out.append((same, a))
        return out

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        pools = [(self._workers, self._queue, self._threads)] + ([self._alt] if self._alt else [])
        for _workers, q, threads in pools:
            for _ in threads:
                q.put(None)
        for workers, _q, threads in pools:
            for t in threads:
                t.join(timeout=5)
            for w in workers:
                w.kill()
        if self._tmp_root:
            import shutil

            shutil.rmtree(self._tmp_root, ignore_errors=True)

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    # ------------------------------------------------------------------ internals

    def _validate(self, job: Job) -> Verdict | None:
        """Bad input gets a verdict with a clear reason, before any process is involved."""

        def invalid(reason: str) -> Verdict:
            return Verdict(Status.INVALID_INPUT, reason, job_id=job.id)

        if job.kind not in ("call", "stdin", "check", "compare"):
            return invalid(f"unknown job kind {job.kind!r}")
        texts = [("code", job.code), ("test_code", job.test_code)]
        texts += [(f"case {i}", c) for i, c in enumerate(job.cases)]
        texts += [(f"expected {i}", e) for i, e in enumerate(job.expected or [])]
        total = 0
        for name, text in texts:
            if isinstance(text, bytes):
                try:
                    text.decode("utf-8")
                except UnicodeDecodeError:
                    return invalid(f"{name} is not valid UTF-8")
                return invalid(f"{name} must be text, got bytes")
            if not isinstance(text, str):
                return invalid(f"{name} must be text, got {type(text).__name__}")
            if "\x00" in text:
                return invalid(f"{name} contains a NUL byte")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return invalid(f"{name} is not valid UTF-8 (lone surrogates)")
            total += len(text)
        limit = (job.limits.max_input_bytes if job.limits else 0) or self.cfg.max_input_bytes
        if total > limit:
            return invalid(f"job is {total} characters, over the {limit} input limit")
        if job.kind != "compare" and not job.code.strip():
            return invalid("empty code")
        if job.kind == "compare" and (len(job.cases) != 1 or not job.expected or len(job.expected) != 1):
            return invalid("a compare job needs exactly one case and one expected value")
        if job.expected is not None and job.kind in ("call", "stdin") and len(job.expected) != len(job.cases):
            return invalid(f"{len(job.cases)} cases but {len(job.expected)} expected values")
        if job.kind == "check" and not job.test_code.strip():
            return invalid("a check job needs test_code")
        return None

    def _wire(self, job: Job) -> dict[str, Any]:
        limits = job.limits or self.limits
        d = job.to_dict()
        lim = asdict(limits)
        lim["wall_time"] = limits.effective_wall
        d["limits"] = lim
        return d

    def _serve(self, worker: _Worker, q: queue.Queue[_Item | None], n_workers: int) -> None:
        while True:
            item = q.get()
            if item is None:
                return
            batch, stop = [item], False
            size = len(item[1])
            # more than one job only when the queue holds enough for every worker
            for _ in range(min(_MAX_BATCH - 1, q.qsize() // n_workers)):
                try:
                    nxt = q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:  # close(): finish this batch, then stop
                    stop = True
                    break
                if size + len(nxt[1]) > _MAX_BATCH_BYTES:
                    q.put(nxt)
                    break
                batch.append(nxt)
                size += len(nxt[1])
            self._run_batch(worker, batch, q)
            if stop:
                return

    def _run_batch(self, worker: _Worker, batch: list[_Item], q: queue.Queue[_Item | None]) -> None:
        t0 = time.monotonic()
        raws = worker.run_batch([line for _, line, _, _, _, _ in batch], [b[2] for b in batch])
        for k, (i, _line, _timeout, job_id, results, (done, counter)) in enumerate(batch):
            if k >= len(raws):  # never ran: the worker was restarted under an earlier job
                q.put(batch[k])
                continue
            raw = raws[k]
            if raw is None:
                v = Verdict(
                    Status.SANDBOX_ERROR,
                    "sandbox worker died or stopped answering; it was restarted",
                    wall_time=time.monotonic() - t0,
                )
            else:
                v = _to_verdict(raw)
            v.job_id = job_id
            results[i] = v
            with _counter_lock:
                counter[0] -= 1
                if counter[0] == 0:
                    done.set()


_counter_lock = threading.Lock()


def _to_verdict(raw: dict[str, Any]) -> Verdict:
    try:
        status = Status(raw.get("status"))
    except ValueError:
        return Verdict(Status.SANDBOX_ERROR, f"unknown status {raw.get('status')!r}")
    return Verdict(
        status=status,
        reason=str(raw.get("reason", "")),
        outputs=list(raw.get("outputs") or []),
        case=raw.get("case"),
        expected=raw.get("expected"),
        actual=raw.get("actual"),
        error_type=raw.get("error_type"),
        cpu_time=float(raw.get("cpu_time", 0.0)),
        wall_time=float(raw.get("wall_time", 0.0)),
    )


def _private_tmp() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="gasp-jobs-")
