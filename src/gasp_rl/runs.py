"""The run directory: everything a run learns, as records that the report, evaluation and resume
read back.

Layout::

    RUN/
      config.yaml            the resolved config
      run.json               {command, mode, seed, created, status, last_iteration, ...}
      proposals.jsonl        one record per teacher proposal (accepted or rejected, with reason)
      students.jsonl         one record per student question (task type, rewards)
      metrics.jsonl          one record per iteration (or RLVR update)
      checkpoints/last/      resume state: weights + optimizer + loop state (overwritten atomically)
      checkpoints/iter_NNNNNN/  weights kept for evaluation every ``gasp.checkpoint_every``
      eval/                  evaluation results (gasp eval)

Crash safety: every record carries the ``iteration`` it belongs to and is appended as one
``write`` of a complete line, flushed and fsynced.  ``run.json`` is replaced atomically after the
iteration's checkpoint is on disk.  On resume, records of iterations after the last committed one
(and a torn last line) are dropped, so a ``kill -9`` loses at most the iteration in flight and no
record is duplicated.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gasp_rl.config import Config, ConfigError, dump_config, load_config
from gasp_rl.errors import GaspError

STREAMS = ("proposals", "students", "metrics")


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    """``obj`` as indented JSON at ``path`` (parents made), replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def replace_dir(tmp: Path, final: Path) -> None:
    """Atomically put directory ``tmp`` at ``final`` (the old one is moved aside, removed after)."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}-{time.monotonic_ns()}")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def scan_records(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The records of one JSONL stream and how many lines were skipped.

    Skipped: a torn final line (a crash mid-write leaves no newline), a line that is not JSON or
    not an object.  Damage in the middle does not stop the read: resume and the report both get
    every record that survived.
    """
    records: list[dict[str, Any]] = []
    bad = 0
    if not path.is_file():
        return records, bad
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            if not line.endswith("\n"):
                bad += 1
                break
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            if isinstance(rec, dict):
                records.append(rec)
            else:
                bad += 1
    return records, bad


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Records of one JSONL stream (:func:`scan_records` without the count)."""
    yield from scan_records(path)[0]


#: Settings a resumed run may change: how long it runs, how it logs, how many sandbox workers.
#: Everything else (model, method, data, seeds) defines the run and is fixed when it is created.
RESUMABLE_KEYS = (
    "gasp.iterations",
    "rlvr.updates",
    "solver_verifier.iterations",
    "run.max_minutes",
    "run.tensorboard",
    "run.wandb",
    "sandbox.workers",
)


class RunStore:
    """Append-only records plus checkpoints of one run."""

    def __init__(self, path: Path, cfg: Config, meta: dict[str, Any]) -> None:
        self.path = Path(path)
        self.cfg = cfg
        self.meta = meta
        self._fhs: dict[str, Any] = {}

    # ---------------------------------------------------------------- create / open

    @classmethod
    def create(cls, cfg: Config, command: str) -> RunStore:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        mode = cfg.gasp.mode if command == "train" else command
        path = Path(cfg.run.dir.format(mode=mode, time=stamp, seed=cfg.run.seed, command=command))
        if path.exists() and any(path.iterdir()):
            raise GaspError(f"run directory {path} already exists; pass --resume {path} to continue it")
        (path / "checkpoints").mkdir(parents=True, exist_ok=True)
        atomic_write_text(path / "config.yaml", dump_config(cfg))
        meta = {
            "command": command,
            "mode": mode,
            "seed": cfg.run.seed,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "status": "running",
            "last_iteration": -1,
        }
        store = cls(path, cfg, meta)
        store.save_meta()
        return store

    @classmethod
    def open(cls, path: Path, overrides: Sequence[str] = ()) -> RunStore:
        """Reopen a run to resume it, with its own ``config.yaml``.  ``overrides`` may change only
        :data:`RESUMABLE_KEYS` (e.g. ``gasp.iterations=10`` to run longer); the new config is saved."""
        path = Path(path)
        if not (path / "run.json").exists() or not (path / "config.yaml").exists():
            raise GaspError(f"{path} is not a gasp-rl run directory (no run.json / config.yaml)")
        keys = [o.split("=", 1)[0].strip() for o in overrides]
        fixed = [k for k in keys if k not in RESUMABLE_KEYS]
        if fixed:
            raise GaspError(
                f"a resumed run keeps its config ({path / 'config.yaml'}); {', '.join(fixed)} cannot change. "
                f"Resumable: {', '.join(RESUMABLE_KEYS)}; for anything else start a new run"
            )
        try:
            cfg = load_config(path / "config.yaml", list(overrides))
        except ConfigError as e:
            raise GaspError(str(e)) from None
        if overrides:
            atomic_write_text(path / "config.yaml", dump_config(cfg))
        meta = json.loads((path / "run.json").read_text(encoding="utf-8"))
        store = cls(path, cfg, meta)
        store.truncate_after(int(meta.get("last_iteration", -1)))
        return store

    # ---------------------------------------------------------------- records

    def append(self, stream: str, record: dict[str, Any]) -> None:
        fh = self._fhs.get(stream)
        if fh is None:
            fh = self._fhs[stream] = open(self.path / f"{stream}.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        fh.flush()

    def sync(self) -> None:
        for fh in self._fhs.values():
            fh.flush()
            os.fsync(fh.fileno())

    def records(self, stream: str) -> list[dict[str, Any]]:
        self.sync()
        return list(read_records(self.path / f"{stream}.jsonl"))

    def truncate_after(self, iteration: int) -> int:
        """Drop records of iterations > ``iteration`` (and torn lines).  Returns how many."""
        dropped = 0
        for stream in STREAMS:
            p = self.path / f"{stream}.jsonl"
            if not p.exists():
                continue
            keep = [r for r in read_records(p) if int(r.get("iteration", -1)) <= iteration]
            with open(p, encoding="utf-8") as fh:
                total = sum(1 for _ in fh)
            dropped += total - len(keep)
            atomic_write_text(p, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep))
        return dropped

    # ---------------------------------------------------------------- meta / checkpoints

    def save_meta(self, **updates: Any) -> None:
        self.meta.update(updates)
        atomic_write_text(self.path / "run.json", json.dumps(self.meta, indent=2))

    def commit_iteration(self, iteration: int, **extra: Any) -> None:
        """Mark ``iteration`` complete (after its checkpoint is written)."""
        self.sync()
        self.save_meta(last_iteration=iteration, **extra)

    @property
    def last_checkpoint(self) -> Path:
        return self.path / "checkpoints" / "last"

    def iteration_checkpoint(self, iteration: int) -> Path:
        return self.path / "checkpoints" / f"iter_{iteration:06d}"

    def checkpoints(self) -> list[tuple[int, Path]]:
        out = []
        for p in sorted((self.path / "checkpoints").glob("iter_*")):
            try:
                out.append((int(p.name.split("_")[1]), p))
            except (IndexError, ValueError):
                continue
        return out

    def close(self, status: str | None = None) -> None:
        self.sync()
        for fh in self._fhs.values():
            fh.close()
        self._fhs.clear()
        if status:
            self.save_meta(status=status)


def load_run_config(path: Path) -> Config:
    return load_config(Path(path) / "config.yaml")


#: Checkpoint files only a resume needs (evaluation needs the weights only).
RESUME_ONLY_PREFIXES = ("optimizer", "state.json", "loop_state", "buffers")


def keep_weights(src: Path, dest: Path, also_resume_only: tuple[str, ...] = ()) -> None:
    """Hard-link (or copy, across file systems) the files of checkpoint ``src`` into ``dest``,
    leaving out resume-only state: no extra disk until ``src`` is replaced.  ``dest`` appears
    whole or not at all."""
    skip = RESUME_ONLY_PREFIXES + also_resume_only
    tmp = dest.with_name(f".{dest.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file() and not f.name.startswith(skip):
            try:
                os.link(f, tmp / f.name)
            except OSError:
                shutil.copy2(f, tmp / f.name)
    replace_dir(tmp, dest)


def budget_spent(cfg: Config, t_start: float) -> bool:
    """Whether the run's wall-clock budget (``run.max_minutes``, 0 = none) is used up."""
    return cfg.run.max_minutes > 0 and time.perf_counter() - t_start >= 60 * cfg.run.max_minutes
