"""``gasp report``: one self-contained HTML page for one or several run directories.

The page has three parts: training curves, evaluation (pass@k and goalposts, several runs on one
page), and a curriculum explorer (goalpost -> lemmas -> lifts, with code, I/O, pass rates and
rewards).  It needs no network: figures are inline SVG data URIs, the explorer is the vanilla JS
of ``explorer.js`` and the styles live in ``report.html``, both inlined.

Model text is untrusted.  It reaches the page by exactly two roads, both inert: the Jinja
template autoescapes every value, and the explorer's data is one JSON document inside
``<script type="application/json">`` with ``<``, ``>`` and ``&`` written as ``\\u003c``-style
escapes (so no ``</script>`` can end the block); the explorer reads it with ``JSON.parse`` and
puts text into the DOM with ``textContent`` only.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from gasp_rl.errors import GaspError
from gasp_rl.report.beyond import BEYOND_PLOTS
from gasp_rl.report.data import RunData, as_float, as_int, dig, load_runs
from gasp_rl.report.plots import (
    EVAL_PLOTS,
    REQUIRED_TRAINING,
    TRAINING_PLOTS,
    Plot,
    union_first_solved,
)

MAX_PROPOSALS = 4000  # per run in the explorer; accepted ones are kept first
TEXT_LIMITS = {"code": 6000, "message": 2000, "detail": 1000, "raw": 2000, "io": 400}
MAX_IO = 12
PROPOSAL_FIELDS = (
    "id",
    "iteration",
    "phase",
    "step",
    "goalpost_id",
    "axis",
    "parent_id",
    "task_type",
    "valid",
    "accepted",
    "rejection_reason",
    "pass_rate",
    "n_student",
    "reward",
    "similarity_question",
    "similarity_code",
    "tokens",
)
PLOT_LABELS = {
    "teacher_reward": "teacher rewards",
    "student_reward": "student rewards",
    "acceptance_rate": "acceptance rate",
    "rejections": "rejection reasons",
    "pass_rate_hist": "pass-rate histograms",
    "buffer_dissimilarity": "buffer dissimilarity",
    "time_per_phase": "time per phase",
    "pass_at_k": "pass@k (no eval/*.json in any run yet: run `gasp eval --run RUN_DIR`)",
    "goalposts": "goalpost progress (no goalposts/progress.json in any run yet)",
}


@dataclass
class Section:
    plots: list[Plot]
    missing: list[str]


def json_for_script(data: Any) -> str:
    """JSON that is safe verbatim inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` can only occur inside JSON strings, where their ``\\uXXXX`` forms mean
    the same characters to ``JSON.parse`` but can never close the element or start a comment.
    """
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for ch, esc in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(ch, esc)
    return text


def _clip(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more chars]"


def _clean_scalar(value: Any) -> Any:
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    return as_float(value)  # NaN / inf / objects -> None (JSON must stay valid)


def explorer_proposal(p: dict[str, Any]) -> dict[str, Any]:
    """The fields the explorer shows, size-capped and JSON-clean."""
    out = {k: _clean_scalar(p.get(k)) for k in PROPOSAL_FIELDS}
    for k in ("id", "goalpost_id", "parent_id"):
        if out[k] is not None:
            out[k] = str(out[k])
    for k in ("code", "message", "detail"):
        out[k] = _clip(p.get(k), TEXT_LIMITS[k])
    for k in ("inputs", "outputs"):
        vals = p.get(k) if isinstance(p.get(k), list) else []
        out[k] = [_clip(v, TEXT_LIMITS["io"]) for v in vals[:MAX_IO]]
    # beyond the paper: the lemma's goalpost alignment and axis adherence (algorithms/beyond.py)
    out["alignment_margin"] = as_float(dig(p, "alignment", "margin"))
    out["alignment_judge"] = as_float(dig(p, "alignment", "judge"))
    out["adherence"] = as_float(dig(p, "adherence", "score"))
    if not p.get("code"):  # why did it not parse? the raw text is the evidence
        out["raw"] = _clip(p.get("raw"), TEXT_LIMITS["raw"])
    return out


def _solver_results(run: RunData) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for s in run.students:
        sid = s.get("source_id")
        if s.get("phase") != "solver" or sid is None:
            continue
        out.setdefault(str(sid), []).append(
            {
                "task_type": _clean_scalar(s.get("task_type")),
                "n": as_int(s.get("n")),
                "mean_reward": as_float(s.get("mean_reward")),
            }
        )
    return out


def explorer_data(run: RunData) -> dict[str, Any]:
    props = run.proposals
    truncated = 0
    if len(props) > MAX_PROPOSALS:
        keep = sorted(props, key=lambda p: (not p.get("accepted"), -(as_float(p.get("iteration")) or 0)))
        truncated = len(props) - MAX_PROPOSALS
        props = sorted(keep[:MAX_PROPOSALS], key=lambda p: as_float(p.get("iteration")) or 0)
    goalposts: dict[str, str] = {}
    for p in props:
        gid, title = p.get("goalpost_id"), p.get("goalpost_title")
        if gid is not None and str(gid) not in goalposts:
            goalposts[str(gid)] = _clip(title, 300) or str(gid)
    return {
        "label": run.label,
        "mode": run.mode,
        "goalposts": goalposts,
        "proposals": [explorer_proposal(p) for p in props if isinstance(p, dict)],
        "solver": _solver_results(run),
        "truncated": truncated,
    }


def _section(runs: list[RunData], makers: Any, required: tuple[str, ...]) -> Section:
    plots = [p for p in (make(runs) for make in makers) if p is not None]
    have = {p.key for p in plots}
    missing = [PLOT_LABELS.get(k, k) for k in required if k not in have]
    return Section(plots, missing)


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def eval_rows(runs: list[RunData]) -> list[dict[str, str]]:
    """Per run and benchmark: latest checkpoint's scores and the best pass@1."""
    rows = []
    for run in runs:
        for bench in sorted({e.benchmark for e in run.evals}):
            res = sorted((e for e in run.evals if e.benchmark == bench), key=lambda e: e.iteration)
            last = res[-1]
            scored = [(e.pass_at_k.get(1, e.greedy_pass_at_1), e) for e in res]
            scored = [(s, e) for s, e in scored if s is not None]
            best = max(scored, key=lambda t: t[0]) if scored else None
            rows.append(
                {
                    "run": run.label,
                    "benchmark": bench,
                    "checkpoints": str(len(res)),
                    "last": f"{last.checkpoint} (it {last.iteration})",
                    "scores": ", ".join(f"pass@{k} {_fmt(v)}" for k, v in sorted(last.pass_at_k.items()))
                    + (
                        f", greedy {_fmt(last.greedy_pass_at_1)}" if last.greedy_pass_at_1 is not None else ""
                    ),
                    "best": f"{_fmt(best[0])} at it {best[1].iteration}" if best else "–",
                }
            )
    return rows


def goalpost_rows(runs: list[RunData]) -> list[dict[str, str]]:
    """Per mode: solved per seed, the union across seeds, and first solves (method.md §7)."""
    modes: dict[str, list[RunData]] = {}
    for r in runs:
        if r.progress:
            modes.setdefault(r.mode, []).append(r)
    rows = []
    for mode, group in modes.items():
        union = union_first_solved(group)
        totals = {r.progress.n_goalposts for r in group if r.progress and r.progress.n_goalposts}
        of = f" of {totals.pop()}" if len(totals) == 1 else ""
        firsts = sorted(union.items(), key=lambda t: (t[1], t[0]))
        rows.append(
            {
                "mode": mode,
                "per_seed": ", ".join(
                    f"{r.label}: {len(r.progress.first_solved)}" for r in group if r.progress
                ),
                "union": f"{len(union)}{of}",
                "first": ", ".join(f"{g} (it {it})" for g, it in firsts[:20])
                + (" …" if len(firsts) > 20 else ""),
            }
        )
    return rows


def run_notes(run: RunData) -> list[str]:
    """What the reader should know about a run's data before trusting its plots."""
    notes = list(run.notes)
    if not run.metrics:
        notes.append("no metrics.jsonl records yet: training curves of this run are empty")
    if not run.proposals:
        notes.append("no proposals.jsonl records yet: nothing to explore for this run")
    return notes


def run_rows(runs: list[RunData]) -> list[dict[str, Any]]:
    rows = []
    for r in runs:
        accepted = sum(1 for p in r.proposals if p.get("accepted"))
        rows.append(
            {
                "label": r.label,
                "path": str(r.path),
                "mode": r.mode,
                "seed": "–" if r.seed is None else str(r.seed),
                "status": str(r.meta.get("status", "unknown")),
                "created": str(r.meta.get("created", "–")),
                "last_iteration": str(r.meta.get("last_iteration", "–")),
                "metrics": str(len(r.metrics)),
                "proposals": f"{accepted} / {len(r.proposals)}",
                "evals": str(len(r.evals)),
                "notes": run_notes(r),
            }
        )
    return rows


def _package_text(name: str) -> str:
    return resources.files("gasp_rl.report").joinpath(name).read_text(encoding="utf-8")


def _eval_notes(runs: list[RunData]) -> list[str]:
    notes = []
    for r in runs:
        if not r.evals:
            notes.append(f"{r.label}: no evaluation yet (run `gasp eval --run {r.path}`).")
        if not r.progress:
            notes.append(f"{r.label}: no goalpost progress yet (goalposts/progress.json).")
    return notes


def render_report(runs: list[RunData]) -> str:
    """The whole page as a string."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(_package_text("report.html"))
    return template.render(
        title="gasp-rl report: " + ", ".join(r.label for r in runs),
        generated=time.strftime("%Y-%m-%d %H:%M:%S"),
        runs=run_rows(runs),
        training=_section(runs, (*TRAINING_PLOTS, *BEYOND_PLOTS), REQUIRED_TRAINING),
        evaluation=_section(runs, EVAL_PLOTS, ("pass_at_k", "goalposts")),
        eval_rows=eval_rows(runs),
        goalpost_rows=goalpost_rows(runs),
        eval_notes=_eval_notes(runs),
        data_json=Markup(json_for_script({"runs": [explorer_data(r) for r in runs]})),
        explorer_js=Markup(_package_text("explorer.js")),
    )


def write_report(run_dirs: list[Path], out: Path) -> Path:
    """Render the report of ``run_dirs`` into the HTML file ``out`` (parents created)."""
    runs = load_runs([Path(p) for p in run_dirs])
    html = render_report(runs)
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
    except OSError as e:
        raise GaspError(f"cannot write report to {out}: {e.strerror or e}") from None
    return out
