"""Reading a run directory back for the report, tolerantly.

A report is most useful exactly when a run is in a strange state (crashed, still running, never
evaluated), so nothing here raises on missing or damaged files: every problem becomes a *note*
that the report shows next to the section it affects.  Only a path that is not a run directory at
all is a user error (:class:`~gasp_rl.errors.GaspError`).

Record schemas are those of ``runs.py`` (see ``notes/records.md``).  Goalpost progress
(``goalposts/progress.json``, written by :mod:`gasp_rl.eval.progress`) is read in this shape,
with a few tolerated variants::

    {"n_goalposts": 20,
     "checkpoints": [{"checkpoint": "iter_000002", "iteration": 2, "solved": ["HumanEval/12"]}],
     "first_solve": {"HumanEval/12": 2}}

or wrapped as ``{"runs": [{"run": RUN_DIR, ...that shape...}], "union": ...}``.  ``checkpoints``
may also be a mapping ``name -> {...}``, ``solved`` a mapping ``id -> pass@k`` (solved when
> 0), and either ``checkpoints`` or ``first_solve`` (or ``first_solved``) suffices.  Without the
file, progress is derived from ``eval/*__goalposts.json`` like ``gasp eval`` does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gasp_rl.errors import GaspError
from gasp_rl.loggers import mean_of_records
from gasp_rl.runs import scan_records

_ITER_RE = re.compile(r"(\d+)\s*$")


def as_float(value: Any) -> float | None:
    """A finite float, or None for anything else (strings, NaN, nested values, booleans)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    f = float(value)
    return f if f == f and abs(f) != float("inf") else None


def as_int(value: Any) -> int | None:
    f = as_float(value)
    return int(f) if f is not None and f == int(f) else None


def dig(record: Any, *keys: str) -> Any:
    """``record[k1][k2]...`` or None when any level is missing or not a mapping."""
    node = record
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], int]:
    """All JSON-object lines of ``path`` and how many lines were skipped as malformed: the run
    store's reader (:func:`gasp_rl.runs.scan_records`), so the report sees what resume sees."""
    return scan_records(path)


def iteration_of_checkpoint(name: str) -> int | None:
    """``iter_000012`` -> 12, ``base`` -> 0 (the untrained model sits at the origin)."""
    stem = Path(str(name)).name
    if stem in ("base", "initial", "init"):
        return 0
    m = _ITER_RE.search(stem)
    return int(m.group(1)) if m else None


@dataclass
class EvalResult:
    """One ``eval/<checkpoint>__<benchmark>.json``."""

    benchmark: str
    checkpoint: str
    iteration: int
    pass_at_k: dict[int, float]
    greedy_pass_at_1: float | None
    n_problems: int | None


@dataclass
class GoalpostProgress:
    """When each goalpost was first solved in one run (one seed)."""

    first_solved: dict[str, int]
    evaluated_iterations: list[int]
    n_goalposts: int | None

    def solved_curve(self) -> list[tuple[int, int]]:
        """(iteration, goalposts solved at or before it) at every evaluated iteration."""
        its = sorted(set(self.evaluated_iterations) | set(self.first_solved.values()))
        return [(it, sum(1 for v in self.first_solved.values() if v <= it)) for it in its]


@dataclass
class RunData:
    """Everything the report needs from one run directory."""

    path: Path
    meta: dict[str, Any]
    config: dict[str, Any]
    proposals: list[dict[str, Any]] = field(default_factory=list)
    students: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    goalposts: list[dict[str, Any]] = field(default_factory=list)  # dynamic-goalpost refreshes
    evals: list[EvalResult] = field(default_factory=list)
    progress: GoalpostProgress | None = None
    notes: list[str] = field(default_factory=list)
    label: str = ""

    @property
    def mode(self) -> str:
        mode = self.meta.get("mode") or dig(self.config, "gasp", "mode")
        return str(mode) if mode else "unknown"

    @property
    def seed(self) -> int | None:
        seed = as_int(self.meta.get("seed"))
        return seed if seed is not None else as_int(dig(self.config, "run", "seed"))


def _parse_eval(data: Any, name: str) -> EvalResult | None:
    if not isinstance(data, dict):
        return None
    raw_pak = data.get("pass_at_k")
    pak: dict[int, float] = {}
    if isinstance(raw_pak, dict):
        for k, v in raw_pak.items():
            kk, vv = (int(k) if str(k).strip().isdigit() else None), as_float(v)
            if kk is not None and vv is not None:
                pak[kk] = vv
    greedy = as_float(data.get("greedy_pass_at_1"))
    if not pak and greedy is None:
        return None
    checkpoint = str(data.get("checkpoint") or name.split("__")[0])
    iteration = as_int(data.get("iteration"))
    if iteration is None:
        iteration = iteration_of_checkpoint(checkpoint)
    if iteration is None:
        return None
    benchmark = str(data.get("benchmark") or (name.split("__")[1] if "__" in name else "benchmark"))
    return EvalResult(benchmark, checkpoint, iteration, pak, greedy, as_int(data.get("n_problems")))


def _load_json(path: Path, notes: list[str], what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, json.JSONDecodeError) as e:
        notes.append(f"{what} {path.name} could not be read ({type(e).__name__}); skipped")
        return None


def _solved_ids(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {str(k) for k, v in value.items() if (as_float(v) or 0) > 0 or v is True}
    if isinstance(value, list):
        return {str(v) for v in value if isinstance(v, (str, int))}
    return set()


def _checkpoint_entries(raw: Any) -> Iterable[tuple[str, dict[str, Any]]]:
    if isinstance(raw, dict):
        return ((str(k), v) for k, v in raw.items() if isinstance(v, dict))
    if isinstance(raw, list):
        return ((str(e.get("checkpoint", "")), e) for e in raw if isinstance(e, dict))
    return ()


def _entry_for_run(data: dict[str, Any], run_dir: Path | None) -> Any:
    """The per-run entry of a several-runs progress file (``{"runs": [{"run": path, ...}]}``)."""
    entries = [e for e in data.get("runs", []) if isinstance(e, dict)]
    if len(entries) == 1:
        return entries[0]
    if run_dir is not None:
        for e in entries:
            path = Path(str(e.get("run", "")))
            if path == run_dir or path.name == run_dir.name:
                return e
    return None


def parse_progress(data: Any, run_dir: Path | None = None) -> GoalpostProgress | None:
    """Goalpost progress from the JSON of ``goalposts/progress.json`` (see module docstring).

    A file written for several runs (a ``runs`` list, as ``gasp eval`` writes) is narrowed to the
    entry of ``run_dir``.
    """
    if isinstance(data, dict) and isinstance(data.get("runs"), list):
        data = _entry_for_run(data, run_dir)
    if not isinstance(data, dict):
        return None
    first: dict[str, int] = {}
    evaluated: list[int] = []
    for name, entry in _checkpoint_entries(data.get("checkpoints", data.get("per_checkpoint"))):
        it = as_int(entry.get("iteration"))
        if it is None:
            it = iteration_of_checkpoint(name)
        if it is None:
            continue
        evaluated.append(it)
        if entry.get("counted") is False:  # evaluated with fewer than k samples (eval/progress.py)
            continue
        for gid in _solved_ids(entry.get("solved", entry.get("pass_at_k"))):
            first[gid] = min(it, first.get(gid, it))
    raw_first = data.get("first_solved", data.get("first_solve"))
    if isinstance(raw_first, dict):
        for gid, v in raw_first.items():
            it = as_int(v.get("iteration")) if isinstance(v, dict) else as_int(v)
            if it is None and isinstance(v, str):
                it = iteration_of_checkpoint(v)
            if it is not None:
                first[str(gid)] = min(it, first.get(str(gid), it))
    if not evaluated and not first:
        return None
    n = as_int(data.get("n_goalposts", data.get("total")))
    return GoalpostProgress(first, sorted(set(evaluated)), n)


def _looks_like_run(path: Path) -> bool:
    names = ("run.json", "config.yaml", "metrics.jsonl", "proposals.jsonl", "students.jsonl")
    return any((path / n).exists() for n in names)


def load_run(path: Path) -> RunData:
    """Read one run directory; damage becomes notes, a non-run path a :class:`GaspError`."""
    path = Path(path)
    if not path.is_dir():
        raise GaspError(f"{path}: no such run directory")
    if not _looks_like_run(path):
        raise GaspError(f"{path} is not a gasp-rl run directory (no run.json, config.yaml or *.jsonl)")
    notes: list[str] = []
    meta = _load_json(path / "run.json", notes, "run file") if (path / "run.json").exists() else None
    if not isinstance(meta, dict):
        meta = {}
    config: Any = {}
    if (path / "config.yaml").exists():
        try:
            config = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8", errors="replace"))
        except yaml.YAMLError:
            notes.append("config.yaml is not valid YAML; mode and seed taken from run.json only")
    run = RunData(path=path, meta=meta, config=config if isinstance(config, dict) else {}, notes=notes)
    for stream in ("proposals", "students", "metrics", "goalposts"):
        records, bad = read_jsonl(path / f"{stream}.jsonl")
        setattr(run, stream, records)
        if bad:
            notes.append(f"{stream}.jsonl: {bad} malformed line(s) skipped")
    run.metrics.sort(key=lambda r: as_float(r.get("iteration")) or 0.0)
    for rec in run.metrics:  # GASP + RL: several RL updates per iteration -> their means
        if isinstance(rec.get("rl"), list):
            rec["rl"] = mean_of_records([u for u in rec["rl"] if isinstance(u, dict)])
    for p in sorted((path / "eval").glob("*__*.json")):  # not selection.json
        data = _load_json(p, notes, "evaluation file")
        if data is None:
            continue
        res = _parse_eval(data, p.stem)
        if res is None:
            notes.append(f"evaluation file {p.name} has no pass@k; skipped")
        else:
            run.evals.append(res)
    run.progress = _load_progress(path, notes)
    return run


def _load_progress(path: Path, notes: list[str]) -> GoalpostProgress | None:
    """``goalposts/progress.json``, else progress derived from ``eval/*__goalposts.json`` results
    with the evaluation's own code (one definition of "solved")."""
    progress_file = path / "goalposts" / "progress.json"
    if progress_file.exists():
        data = _load_json(progress_file, notes, "goalpost progress")
        progress = parse_progress(data, path)
        if data is not None and progress is None:
            notes.append("goalposts/progress.json has no entry for this run with checkpoints or first solves")
        return progress
    if not any((path / "eval").glob("*__goalposts.json")):
        return None
    from gasp_rl.eval.progress import run_progress

    try:
        return parse_progress(run_progress(path, path / "eval", k=_goalpost_k(path)), path)
    except (GaspError, OSError, KeyError, TypeError, ValueError) as e:
        notes.append(f"goalpost progress could not be derived from eval/*__goalposts.json: {e}")
        return None


def _goalpost_k(path: Path) -> int:
    """``goalposts.k`` of the run's own config (the default when it cannot be read)."""
    from gasp_rl.config import Config, load_config

    try:
        return load_config(path / "config.yaml", []).goalposts.k
    except Exception:  # noqa: BLE001 - a damaged config: fall back to the default
        return Config().goalposts.k


def assign_labels(runs: list[RunData]) -> None:
    """Short legend labels ("gasp s0"); the directory name is added only to break ties."""
    base = [f"{r.mode} s{r.seed}" if r.seed is not None else r.mode for r in runs]
    for r, b in zip(runs, base):
        r.label = b if base.count(b) == 1 else f"{b} ({r.path.name})"
    seen: dict[str, int] = {}
    for r in runs:  # identical directory names in different parents
        n = seen.get(r.label, 0)
        seen[r.label] = n + 1
        if n:
            r.label = f"{r.label} #{n + 1}"


def load_runs(paths: list[Path]) -> list[RunData]:
    if not paths:
        raise GaspError("gasp report needs at least one run directory")
    runs = [load_run(Path(p)) for p in paths]
    assign_labels(runs)
    return runs
