"""The report's figures, drawn with matplotlib into self-contained SVG data URIs.

Each ``plot_*`` function takes the loaded runs and returns a :class:`Plot`, or ``None`` when no
run has the data (the page then shows a note instead).  Figures are built on a bare
:class:`~matplotlib.figure.Figure` (no pyplot global state, no GUI backend), and embedded as
``<img src="data:image/svg+xml;base64,...">``: an SVG loaded through ``<img>`` can run no script
and its element ids cannot clash with the page's, so nothing in a figure can reach the page.

Styling rule for line plots: with one run, colours tell the series apart; with several runs,
the colour is the run and the line style the series, so runs can be compared at a glance.
"""

from __future__ import annotations

import base64
import io
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import cycle

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from gasp_rl.report.data import RunData, as_float, dig

ACCEPTED_COLOR = "#2ca02c"
REASON_COLORS = (
    "#d62728",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#1f77b4",
)
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 3)))
PHASE_ORDER = ("lemma", "lift", "one_step", "azr", "solver", "rlvr")
TOP_REASONS = 7
BINS = 10


@dataclass
class Plot:
    """One embedded figure: ``key`` names it for the page (and its tests)."""

    key: str
    title: str
    uri: str
    caption: str = ""
    wide: bool = False  # several subplots side by side: give it the page's full width


@dataclass
class Series:
    run: int
    name: str
    xs: list[float]
    ys: list[float]


def figure_uri(fig: Figure) -> str:
    """The figure as a base64 SVG data URI (text kept as text: smaller and sharper)."""
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "gasp-report"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def safe_label(text: str) -> str:
    """Legend text with matplotlib's mathtext switched off (a ``$`` in a run name would parse)."""
    return str(text).replace("$", r"\$")


def _ordered(names: Iterable[str]) -> list[str]:
    """Known phases in pipeline order first, then anything else alphabetically."""
    names = set(names)
    return [p for p in PHASE_ORDER if p in names] + sorted(n for n in names if n not in PHASE_ORDER)


def _color(i: int) -> str:
    return f"C{i % 10}"


def finish_axes(
    ax: Axes, xlabel: str, ylabel: str, integer_y: bool = False, legend_outside: bool = False
) -> None:
    """Labels, light grid, whole-number iteration ticks, and a legend that moves outside the axes
    once it would cover the curves (always, for stacked bars)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    lo, hi = ax.get_xlim()
    if hi - lo < 1:  # one iteration so far: a readable window around it, not +-0.04
        mid = round((lo + hi) / 2)
        ax.set_xlim(mid - 1, mid + 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if integer_y:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    n_entries = len(ax.get_legend_handles_labels()[1])
    if n_entries > 6 or (legend_outside and n_entries):
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    elif n_entries:
        ax.legend(fontsize=7, loc="best")


def metric_series(run: RunData, path: tuple[str, ...]) -> tuple[list[float], list[float]]:
    """(iterations, values) of one numeric field of metrics.jsonl; missing values are skipped."""
    xs, ys = [], []
    for rec in run.metrics:
        x, y = as_float(rec.get("iteration")), as_float(dig(rec, *path))
        if x is not None and y is not None:
            xs.append(x)
            ys.append(y)
    return xs, ys


def dict_series(runs: list[RunData], path: tuple[str, ...], skip: tuple[str, ...] = ()) -> list[Series]:
    """One series per (run, sub-key) of a metrics field that holds a ``{name: number}`` mapping."""
    out = []
    for i, run in enumerate(runs):
        names = {k for rec in run.metrics if isinstance(dig(rec, *path), dict) for k in dig(rec, *path)}
        for name in _ordered(n for n in names if n not in skip):
            xs, ys = metric_series(run, (*path, name))
            if xs:
                out.append(Series(i, str(name), xs, ys))
    return out


def draw_lines(ax: Axes, runs: list[RunData], series: list[Series]) -> None:
    multi = len({s.run for s in series}) > 1
    names = list(dict.fromkeys(s.name for s in series))
    for s in series:
        j = names.index(s.name)
        if multi:
            color, style = _color(s.run), LINESTYLES[j % len(LINESTYLES)]
            label = f"{runs[s.run].label} · {s.name}" if len(names) > 1 else runs[s.run].label
        else:
            color, style, label = _color(j), "-", s.name
        ax.plot(s.xs, s.ys, linestyle=style, color=color, marker="o", markersize=3, label=safe_label(label))


def _line_figure(
    runs: list[RunData], series: list[Series], key: str, title: str, ylabel: str, caption: str = ""
) -> Plot | None:
    if not series:
        return None
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    draw_lines(ax, runs, series)
    finish_axes(ax, "iteration", ylabel)
    ax.set_title(title, fontsize=10)
    return Plot(key, title, figure_uri(fig), caption)


def _per_run_figure(
    runs: list[RunData], key: str, title: str, draw: Callable[[Axes, RunData], bool], caption: str = ""
) -> Plot | None:
    """One subplot per run; ``draw`` returns False when that run has nothing to show."""
    n = len(runs)
    ncols = min(n, 3)
    nrows = -(-n // ncols)
    width = 6.4 if n <= 2 else 4.6  # same text scale as the half-width single-axes figures
    fig = Figure(figsize=(width * ncols, 3.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    drawn = 0
    for ax, run in zip(axes, runs):
        ax.set_title(safe_label(run.label), fontsize=9)
        if draw(ax, run):
            drawn += 1
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray")
            ax.set_xticks([])
            ax.set_yticks([])
    for ax in axes[n:]:
        ax.set_visible(False)
    if not drawn:
        return None
    fig.suptitle(title, fontsize=10)
    return Plot(key, title, figure_uri(fig), caption, wide=n > 1)


# ---------------------------------------------------------------- training curves


def plot_teacher_reward(runs: list[RunData]) -> Plot | None:
    return _line_figure(
        runs,
        dict_series(runs, ("teacher_reward",)),
        "teacher_reward",
        "Teacher reward (mean per phase)",
        "reward",
        "Learnability reward of the teacher's proposals; format/validity failures get the penalty.",
    )


def plot_student_reward(runs: list[RunData]) -> Plot | None:
    series = dict_series(runs, ("student_reward",))
    if len(runs) > 2:  # many runs: compare their overall reward, the per-type lines would swamp it
        with_all = {s.run for s in series if s.name == "all"}
        series = [s for s in series if s.name == "all" or s.run not in with_all]
    return _line_figure(
        runs,
        series,
        "student_reward",
        "Student reward (mean per task type)",
        "reward",
        "Fraction of correct student answers in the solver phase.",
    )


def plot_acceptance_rate(runs: list[RunData]) -> Plot | None:
    series = []
    for i, run in enumerate(runs):
        xs, ys = metric_series(run, ("acceptance_rate",))
        if not xs:
            xs, ys = _acceptance_from_proposals(run)
        if xs:
            series.append(Series(i, "acceptance rate", xs, ys))
    return _line_figure(
        runs,
        series,
        "acceptance_rate",
        "Acceptance rate",
        "accepted / attempted",
        "Share of teacher proposals that passed every check and landed in their pass-rate band.",
    )


def _acceptance_from_proposals(run: RunData) -> tuple[list[float], list[float]]:
    tot: Counter[float] = Counter()
    acc: Counter[float] = Counter()
    for p in run.proposals:
        it = as_float(p.get("iteration"))
        if it is not None:
            tot[it] += 1
            acc[it] += bool(p.get("accepted"))
    xs = sorted(tot)
    return xs, [acc[x] / tot[x] for x in xs]


def outcome_counts(run: RunData) -> dict[float, Counter[str]]:
    """Per iteration: proposals accepted and rejected by reason (from proposals.jsonl, else metrics)."""
    per_it: dict[float, Counter[str]] = defaultdict(Counter)
    for p in run.proposals:
        it = as_float(p.get("iteration"))
        if it is None:
            continue
        outcome = "accepted" if p.get("accepted") else str(p.get("rejection_reason") or "rejected")
        per_it[it][outcome] += 1
    if per_it:
        return per_it
    for rec in run.metrics:
        it = as_float(rec.get("iteration"))
        by_reason = dig(rec, "proposals", "by_reason")
        if it is None or not isinstance(by_reason, dict):
            continue
        for reason, count in by_reason.items():
            c = as_float(count)
            if c:
                per_it[it][str(reason)] += int(c)
        acc = as_float(dig(rec, "proposals", "accepted"))
        if acc and "accepted" not in by_reason:
            per_it[it]["accepted"] += int(acc)
    return per_it


def _draw_outcomes(ax: Axes, run: RunData) -> bool:
    per_it = outcome_counts(run)
    if not per_it:
        return False
    totals: Counter[str] = Counter()
    for c in per_it.values():
        totals.update(c)
    reasons = [r for r, _ in totals.most_common() if r != "accepted"]
    shown, rest = reasons[:TOP_REASONS], reasons[TOP_REASONS:]
    layers = (["accepted"] if "accepted" in totals else []) + shown + (["other"] if rest else [])
    xs = sorted(per_it)
    bottom = [0.0] * len(xs)
    width = _bar_width(xs)
    for j, layer in enumerate(layers):
        if layer == "other":
            ys = [sum(per_it[x][r] for r in rest) for x in xs]
        else:
            ys = [per_it[x][layer] for x in xs]
        color = ACCEPTED_COLOR if layer == "accepted" else REASON_COLORS[j % len(REASON_COLORS)]
        ax.bar(xs, ys, width, bottom=bottom, label=safe_label(layer), color=color)
        bottom = [b + y for b, y in zip(bottom, ys)]
    ax.set_ylim(0, headroom(bottom))
    finish_axes(ax, "iteration", "proposals", integer_y=True, legend_outside=True)
    return True


def plot_rejections(runs: list[RunData]) -> Plot | None:
    return _per_run_figure(
        runs,
        "rejections",
        "Proposals by outcome (accepted, or rejection reason)",
        _draw_outcomes,
        "Where the teacher's proposals fail: parsing, validity, determinism, novelty or pass-rate band.",
    )


def pass_rate_histograms(run: RunData) -> dict[str, list[int]]:
    """Counts of estimated pass rates in ``BINS`` equal bins over [0, 1], per proposal phase."""
    hist: dict[str, list[int]] = {}
    for p in run.proposals:
        rate, phase = as_float(p.get("pass_rate")), p.get("phase")
        if rate is None or not isinstance(phase, str):
            continue
        b = min(int(max(rate, 0.0) * BINS), BINS - 1)
        hist.setdefault(phase, [0] * BINS)[b] += 1
    if hist:
        return hist
    for rec in run.metrics:
        for phase, counts in (dig(rec, "pass_rate_hist") or {}).items():
            if isinstance(counts, list) and len(counts) == BINS:
                acc = hist.setdefault(str(phase), [0] * BINS)
                for b, c in enumerate(counts):
                    acc[b] += int(as_float(c) or 0)
    return hist


def _draw_pass_rates(ax: Axes, run: RunData) -> bool:
    hist = pass_rate_histograms(run)
    phases = _ordered(p for p, counts in hist.items() if sum(counts))
    if not phases:
        return False
    step = 1.0 / BINS
    width = step * 0.85 / len(phases)
    for j, phase in enumerate(phases):
        xs = [b * step + j * width + step * 0.075 for b in range(BINS)]
        ax.bar(xs, hist[phase], width, align="edge", color=_color(j), label=safe_label(phase))
        band = dig(run.config, "gasp", f"{phase}_band")
        if isinstance(band, list) and len(band) == 2 and all(as_float(v) is not None for v in band):
            for edge in band:
                ax.axvline(edge, color=_color(j), linestyle="--", linewidth=1, alpha=0.8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("estimated student pass rate p")
    ax.set_ylabel("proposals")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7, loc="best")
    return True


def plot_pass_rate_hist(runs: list[RunData]) -> Plot | None:
    return _per_run_figure(
        runs,
        "pass_rate_hist",
        "Pass-rate histograms: lemmas vs lifts",
        _draw_pass_rates,
        "All iterations; dashed lines mark each phase's acceptance band from the run's config.",
    )


def plot_buffer_dissimilarity(runs: list[RunData]) -> Plot | None:
    return _line_figure(
        runs,
        dict_series(runs, ("buffer_dissimilarity",)),
        "buffer_dissimilarity",
        "Buffer dissimilarity (novelty of each batch vs earlier accepted ones)",
        "1 - mean max cosine",
    )


def headroom(values: list[float]) -> float:
    """Upper y limit that leaves the tallest stacked bar visibly inside the axes."""
    return max([*values, 0.0]) * 1.08 or 1.0


def _bar_width(xs: list[float]) -> float:
    gaps = [b - a for a, b in zip(xs, xs[1:]) if b > a]
    return 0.8 * (min(gaps) if gaps else 1.0)


def _draw_times(ax: Axes, run: RunData) -> bool:
    # timed inside the phases (the phases add up to the iteration's total), so drawn as lines
    overlays = ("sample", "exec", "novelty", "update")
    recs = [
        r for r in run.metrics if isinstance(r.get("time"), dict) and as_float(r.get("iteration")) is not None
    ]
    if not recs:
        return False
    xs = [float(r["iteration"]) for r in recs]
    stacked = _ordered({k for r in recs for k in r["time"] if k not in (*overlays, "total")})
    width = _bar_width(xs)
    bottom = [0.0] * len(xs)
    for j, name in enumerate(stacked):
        ys = [as_float(r["time"].get(name)) or 0.0 for r in recs]
        ax.bar(xs, ys, width, bottom=bottom, color=_color(j), label=safe_label(name))
        bottom = [b + y for b, y in zip(bottom, ys)]
    top = list(bottom)
    for j, name in enumerate(overlays):
        pts = [(x, as_float(r["time"].get(name))) for x, r in zip(xs, recs)]
        pts = [(x, y) for x, y in pts if y is not None]
        top += [y for _, y in pts]
        if pts:
            ax.plot(
                *zip(*pts), color="black", linestyle=LINESTYLES[j + 1], marker=".", label=f"of which {name}"
            )
    ax.set_ylim(0, headroom(top))
    finish_axes(ax, "iteration", "seconds", legend_outside=True)
    return True


def plot_time_per_phase(runs: list[RunData]) -> Plot | None:
    return _per_run_figure(
        runs,
        "time_per_phase",
        "Wall time per phase",
        _draw_times,
        "Stacked: seconds spent in each phase per iteration; lines: sampling, sandbox execution, "
        "novelty embedding and policy-update time inside those phases.",
    )


LEARNER_KEYS = ("loss", "grad_norm", "kl", "clip_frac", "entropy")


def plot_learner(runs: list[RunData]) -> Plot | None:
    """One axes per learner statistic: loss and gradient norm live on different scales."""
    series = [s for s in dict_series(runs, ("learner",)) if s.name in LEARNER_KEYS]
    names = [k for k in LEARNER_KEYS if any(s.name == k for s in series)]
    if not names:
        return None
    fig = Figure(figsize=(4.6 * len(names) if len(names) > 1 else 6.4, 3.4), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False).ravel()
    for ax, name in zip(axes, names):
        mine = [s for s in series if s.name == name]
        for s in mine:
            ax.plot(
                s.xs, s.ys, color=_color(s.run), marker="o", markersize=3, label=safe_label(runs[s.run].label)
            )
        ax.set_title(name, fontsize=9)
        finish_axes(ax, "iteration", name)
    title = "Learner (last update of each iteration)"
    fig.suptitle(title, fontsize=10)
    return Plot("learner", title, figure_uri(fig), wide=len(names) > 1)


def plot_rl_reward(runs: list[RunData]) -> Plot | None:
    series = [s for s in dict_series(runs, ("rl",)) if "reward" in s.name]
    return _line_figure(runs, series, "rl_reward", "Real-data RL reward", "reward")


# ---------------------------------------------------------------- evaluation


def _draw_benchmark(ax: Axes, runs: list[RunData], bench: str) -> None:
    multi = len(runs) > 1
    for i, run in enumerate(runs):
        res = sorted((e for e in run.evals if e.benchmark == bench), key=lambda e: e.iteration)
        if not res:
            continue
        ks = sorted({k for e in res for k in e.pass_at_k})
        curves = [(f"pass@{k}", [(e.iteration, e.pass_at_k.get(k)) for e in res]) for k in ks]
        curves.append(("greedy pass@1", [(e.iteration, e.greedy_pass_at_1) for e in res]))
        for j, (name, pts) in enumerate(curves):
            pts = [(x, y) for x, y in pts if y is not None]
            if not pts:
                continue
            color = _color(i) if multi else _color(j)
            style = LINESTYLES[j % len(LINESTYLES)] if multi else "-"
            label = f"{run.label} · {name}" if multi else name
            ax.plot(
                *zip(*pts), color=color, linestyle=style, marker="o", markersize=3, label=safe_label(label)
            )
    ax.set_title(safe_label(bench), fontsize=9)
    ax.set_ylim(bottom=0)
    finish_axes(ax, "checkpoint iteration", "pass rate")


def plot_pass_at_k(runs: list[RunData]) -> Plot | None:
    benches = sorted({e.benchmark for r in runs for e in r.evals})
    if not benches:
        return None
    ncols = min(len(benches), 2)
    nrows = -(-len(benches) // ncols)
    fig = Figure(figsize=(5.6 * ncols, 3.6 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, bench in zip(axes, benches):
        _draw_benchmark(ax, runs, bench)
    for ax in axes[len(benches) :]:
        ax.set_visible(False)
    title = "pass@k over checkpoints, per benchmark"
    fig.suptitle(title, fontsize=10)
    caption = "Unbiased pass@k estimator; greedy at temperature 0."
    return Plot("pass_at_k", title, figure_uri(fig), caption, wide=len(benches) > 1)


def union_first_solved(runs: list[RunData]) -> dict[str, int]:
    """Goalpost id -> earliest iteration any of these runs (seeds) solved it."""
    out: dict[str, int] = {}
    for run in runs:
        if run.progress:
            for gid, it in run.progress.first_solved.items():
                out[gid] = min(it, out.get(gid, it))
    return out


def plot_goalposts(runs: list[RunData]) -> Plot | None:
    with_progress = [(i, r) for i, r in enumerate(runs) if r.progress]
    if not with_progress:
        return None
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    by_mode: dict[str, list[RunData]] = defaultdict(list)
    for i, run in with_progress:
        assert run.progress is not None
        curve = run.progress.solved_curve()
        ax.step(
            *zip(*curve), where="post", color=_color(i), marker="o", markersize=3, label=safe_label(run.label)
        )
        by_mode[run.mode].append(run)
    styles = cycle(LINESTYLES[1:])
    for mode, group in by_mode.items():
        if len(group) < 2:
            continue
        first = union_first_solved(group)
        its = sorted({it for r in group for it in r.progress.evaluated_iterations} | set(first.values()))  # type: ignore[union-attr]
        ys = [sum(1 for v in first.values() if v <= it) for it in its]
        ax.step(
            its,
            ys,
            where="post",
            color="black",
            linewidth=2.2,
            linestyle=next(styles),
            label=safe_label(f"{mode} union of {len(group)} seeds"),
        )
    totals = {r.progress.n_goalposts for _, r in with_progress if r.progress and r.progress.n_goalposts}
    if len(totals) == 1:
        ax.axhline(totals.pop(), color="gray", linestyle=":", label="all goalposts")
    ax.set_ylim(bottom=0)
    finish_axes(ax, "checkpoint iteration", "goalposts solved (pass@k > 0)", integer_y=True)
    title = "Goalposts solved over time (per seed and union)"
    ax.set_title(title, fontsize=10)
    return Plot(
        "goalposts", title, figure_uri(fig), "A goalpost counts once solved at any evaluated checkpoint."
    )


TRAINING_PLOTS: tuple[Callable[[list[RunData]], Plot | None], ...] = (
    plot_teacher_reward,
    plot_student_reward,
    plot_acceptance_rate,
    plot_buffer_dissimilarity,
    plot_learner,
    plot_rl_reward,
    plot_rejections,
    plot_pass_rate_hist,
    plot_time_per_phase,
)
REQUIRED_TRAINING = (
    "teacher_reward",
    "student_reward",
    "acceptance_rate",
    "rejections",
    "pass_rate_hist",
    "buffer_dissimilarity",
    "time_per_phase",
)
EVAL_PLOTS: tuple[Callable[[list[RunData]], Plot | None], ...] = (plot_pass_at_k, plot_goalposts)
