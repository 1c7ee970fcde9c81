"""``gasp exec``: run a program file or a JSONL of tasks / jobs through the sandbox, print verdicts.

Accepted JSONL rows (one JSON object per line):

- a sandbox job: ``{"kind": "call"|"stdin"|"check"|"compare", "code": ..., "cases": [...], ...}``
- a program task (``ProgramTask``): ``{"code": ..., "io": [{"args": ..., "output": ...}], ...}``;
  ``f`` is run on every ``args`` and compared to ``output`` when it is non-empty, and checked for
  determinism (two fresh runs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gasp_rl.config import Config
from gasp_rl.core.jobs import Job, Limits, Verdict
from gasp_rl.core.tasks import ProgramTask
from gasp_rl.errors import DataError


def _job_from_row(row: dict[str, Any], where: str) -> tuple[Job, bool]:
    """(job, check determinism?) for one JSONL row."""
    if "kind" in row:
        fields = {
            k: row[k]
            for k in ("kind", "code", "cases", "expected", "entry_point", "test_code", "id")
            if k in row
        }
        if isinstance(row.get("limits"), dict):
            fields["limits"] = Limits(**row["limits"])
        try:
            return Job(**fields), False
        except TypeError as e:
            raise DataError(f"{where}: not a valid job ({e})") from None
    if "code" in row and "io" in row:
        try:
            task = ProgramTask.from_dict(row)
        except (KeyError, TypeError) as e:
            raise DataError(f"{where}: not a valid program task ({e})") from None
        outputs = [p.output for p in task.io]
        expected = outputs if all(o.strip() for o in outputs) else None
        return Job(
            "call",
            code=task.code,
            cases=[p.args for p in task.io],
            expected=expected,
            entry_point=task.entry_point,
            id=task.task_id,
        ), True
    raise DataError(
        f"{where}: a row must be a sandbox job (with 'kind') or a program task (with 'code' and 'io')"
    )


def load_jobs(path: Path) -> list[tuple[Job, bool]]:
    jobs = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{where}: expected a JSON object")
            job, det = _job_from_row(row, where)
            job.id = job.id or f"line{lineno}"
            jobs.append((job, det))
    return jobs


def exec_command(
    cfg: Config, target: Path, *, call: list[str], stdin: list[str], entry_point: str, as_json: bool
) -> int:
    """Returns the process exit code: 0 if every job passed, 1 otherwise."""
    from rich.console import Console
    from rich.table import Table

    from gasp_rl.wiring import make_executor

    if not target.exists():
        raise DataError(f"{target}: no such file")
    if target.suffix in (".jsonl", ".json"):
        pairs = load_jobs(target)
    else:
        raw = target.read_bytes()
        try:
            code = raw.decode("utf-8")
        except UnicodeDecodeError:
            code = raw  # the executor turns this into an invalid_input verdict
        if call:
            pairs = [
                (Job("call", code=code, cases=list(call), entry_point=entry_point, id=target.name), True)
            ]
        else:
            pairs = [(Job("stdin", code=code, cases=list(stdin) or [""], id=target.name), False)]  # type: ignore[arg-type]
    console = Console(stderr=True)
    ex = make_executor(cfg)
    try:
        if not as_json:
            console.print(f"[dim]{ex.isolation.describe()}[/dim]")
        det_idx = [i for i, (_, d) in enumerate(pairs) if d]
        verdicts: list[Verdict] = ex.run([j for j, _ in pairs])
        determinism = dict(
            zip(det_idx, [ok for ok, _ in ex.check_determinism([pairs[i][0] for i in det_idx])])
        )
    finally:
        ex.close()
    failures = 0
    table = Table("job", "verdict", "detail", "outputs", "deterministic", "cpu s")
    for i, ((job, _), v) in enumerate(zip(pairs, verdicts)):
        det = determinism.get(i)
        ok = v.passed and det is not False
        failures += not ok
        if as_json:
            print(json.dumps({**v.to_dict(), "deterministic": det}))
            continue
        detail = v.reason
        if v.expected is not None:
            detail += f" (expected {v.expected}, got {v.actual})"
        style = "green" if ok else "red"
        table.add_row(
            job.id,
            f"[{style}]{v.status.value}[/{style}]",
            detail,
            ", ".join(o or "" for o in v.outputs)[:80],
            "" if det is None else str(det),
            f"{v.cpu_time:.3f}",
        )
    if not as_json:
        Console().print(table)
        console.print(f"{len(pairs) - failures}/{len(pairs)} passed")
    return 1 if failures else 0
