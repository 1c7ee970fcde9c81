"""Report figures of what GASP does beyond the paper: goalpost alignment and axis adherence of the
lemmas (distributions per iteration and axis) and the dynamic-goalpost timeline."""

from __future__ import annotations

from collections import defaultdict

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gasp_rl.report.data import RunData, as_float, as_int, dig
from gasp_rl.report.plots import Plot, _color, _per_run_figure, figure_uri, finish_axes, safe_label

AXIS_COLORS = {"io": "#1f77b4", "f": "#ff7f0e"}


def score_distributions(run: RunData, path: tuple[str, ...]) -> dict[str, dict[int, list[float]]]:
    """axis -> iteration -> values of ``path`` (e.g. ("adherence", "score")) over scored lemmas."""
    out: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for p in run.proposals:
        if p.get("phase") not in ("lemma", "one_step"):
            continue
        value, it = as_float(dig(p, *path)), as_int(p.get("iteration"))
        if value is None or it is None:
            continue
        out[str(p.get("axis") or "none")][it].append(value)
    return {a: dict(v) for a, v in out.items()}


def _draw_boxes(ax: Axes, run: RunData, path: tuple[str, ...], ylabel: str) -> bool:
    dist = score_distributions(run, path)
    if not dist:
        return False
    axes = sorted(dist)
    width = 0.8 / len(axes)
    for j, axis in enumerate(axes):
        its = sorted(dist[axis])
        pos = [it + (j - (len(axes) - 1) / 2) * width for it in its]
        parts = ax.boxplot(
            [dist[axis][it] for it in its],
            positions=pos,
            widths=width * 0.9,
            patch_artist=True,
            manage_ticks=False,
        )
        for box in parts["boxes"]:
            box.set_facecolor(AXIS_COLORS.get(axis, "#999999"))
            box.set_alpha(0.6)
        ax.plot([], [], color=AXIS_COLORS.get(axis, "#999999"), linewidth=6, alpha=0.6, label=f"axis {axis}")
    finish_axes(ax, "iteration", ylabel)
    return True


def plot_alignment(runs: list[RunData]) -> Plot | None:
    return _per_run_figure(
        runs,
        "alignment",
        "Goalpost alignment of the lemmas (embedding margin, per iteration and axis)",
        lambda ax, run: _draw_boxes(ax, run, ("alignment", "margin"), "cos(own) - mean cos(others)"),
        "Beyond the paper: > 0 when a lemma is closer to its goalpost than to a typical other goalpost.",
    )


def plot_adherence(runs: list[RunData]) -> Plot | None:
    return _per_run_figure(
        runs,
        "adherence",
        "Axis adherence of the lemmas (per iteration and axis)",
        lambda ax, run: _draw_boxes(
            ax, run, ("adherence", "score"), "adherence (1 = simplified on its axis only)"
        ),
        "Beyond the paper: 1/2 (s_axis + 1 - |s_other|) against the goalpost's reference solution and tests.",
    )


def plot_goalpost_timeline(runs: list[RunData]) -> Plot | None:
    """Active / retired / promoted goalposts after each refresh (dynamic goalposts)."""
    with_refreshes = [(i, r) for i, r in enumerate(runs) if r.goalposts]
    if not with_refreshes:
        return None
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for i, run in with_refreshes:
        its, active, retired = [], [], []
        total = 0
        for rec in run.goalposts:
            it = as_int(rec.get("iteration"))
            if it is None:
                continue
            total += len(rec.get("retired") or [])
            its.append(it + 1)
            active.append(len(rec.get("active") or []))
            retired.append(total)
        label = safe_label(run.label)
        ax.step(
            its,
            retired,
            where="post",
            color=_color(i),
            marker="o",
            markersize=3,
            label=f"{label}: retired (solved)",
        )
        ax.step(its, active, where="post", color=_color(i), linestyle=":", label=f"{label}: active")
    ax.set_ylim(bottom=0)
    finish_axes(ax, "iteration", "goalposts", integer_y=True)
    title = "Goalpost timeline (dynamic goalposts)"
    ax.set_title(title, fontsize=10)
    return Plot(
        "goalpost_timeline",
        title,
        figure_uri(fig),
        "Beyond the paper: solved goalposts are retired and replaced by pool problems the policy fails.",
    )


BEYOND_PLOTS = (plot_alignment, plot_adherence, plot_goalpost_timeline)
