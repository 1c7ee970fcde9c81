"""Optional metric loggers (TensorBoard, Weights & Biases) fed from the run's metric records.

The run directory's ``metrics.jsonl`` is the source of truth; these loggers are only *views* of
the same records, selected by ``run.tensorboard`` / ``run.wandb``.  The training loop calls
``logger.log(record, step)`` for every metrics record and ``close()`` at the end::

    loggers = make_loggers(cfg.run, store.path, config=cfg.model_dump(mode="json"))
    for lg in loggers:
        lg.log(record, step=record["iteration"])

Nested records are flattened into ``"a/b"`` scalar keys (``teacher_reward/lemma``), a list of
per-update records (``rl``) into their means; the
per-phase pass-rate histograms (``pass_rate_hist``) become real histograms.  W&B defaults to
offline mode, which writes under ``RUN/wandb`` and needs no network (``wandb sync`` uploads later).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from gasp_rl.config import RunConfig
from gasp_rl.errors import BackendUnavailable

HISTOGRAM_KEYS = ("pass_rate_hist",)  # {phase: [counts over equal bins of [0, 1]]}
SKIP_KEYS = ("iteration",)  # the step itself


@runtime_checkable
class MetricLogger(Protocol):
    """Anything that can receive metric records (one per iteration or update)."""

    def log(self, record: Mapping[str, Any], step: int) -> None: ...

    def close(self) -> None: ...


def flatten_metrics(record: Mapping[str, Any], prefix: str = "", sep: str = "/") -> dict[str, float]:
    """Numeric leaves of a nested record as ``{"a/b": value}``.

    Booleans become 0/1; strings, ``None``, lists and the histogram fields are left out (a
    scalar logger cannot show them).
    """
    out: dict[str, float] = {}
    for key, value in record.items():
        if not prefix and key in (*SKIP_KEYS, *HISTOGRAM_KEYS):
            continue
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten_metrics(value, name, sep))
        elif isinstance(value, (int, float)):  # bool is an int: True -> 1.0
            out[name] = float(value)
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            out.update({f"{name}{sep}{k}": v for k, v in mean_of_records(value, sep).items()})
    return out


def mean_of_records(items: Sequence[Mapping[str, Any]], sep: str = "/") -> dict[str, float]:
    """Numeric leaves averaged over several records, e.g. the RL updates of one GASP + RL
    iteration (``rl: [{...}, {...}]``), which a scalar view shows as one point per iteration."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for item in items:
        for key, value in flatten_metrics(item, sep=sep).items():
            sums[key] = sums.get(key, 0.0) + value
            counts[key] = counts.get(key, 0) + 1
    return {key: sums[key] / counts[key] for key in sums}


def histogram_counts(record: Mapping[str, Any]) -> dict[str, list[int]]:
    """``{"pass_rate_hist/lemma": [counts]}`` for every well-formed histogram in the record."""
    out: dict[str, list[int]] = {}
    for key in HISTOGRAM_KEYS:
        hists = record.get(key)
        if not isinstance(hists, Mapping):
            continue
        for name, counts in hists.items():
            if (
                isinstance(counts, list)
                and counts
                and all(isinstance(c, (int, float)) and not isinstance(c, bool) and c >= 0 for c in counts)
            ):
                out[f"{key}/{name}"] = [int(c) for c in counts]
    return out


def bin_edges(n_bins: int) -> list[float]:
    """The ``n_bins + 1`` edges of equal bins over [0, 1]."""
    return [i / n_bins for i in range(n_bins + 1)]


def histogram_moments(counts: list[int]) -> tuple[float, float, float]:
    """(number, sum, sum of squares) of the values, each taken at its bin's centre."""
    n = len(counts)
    centres = [(i + 0.5) / n for i in range(n)]
    return (
        float(sum(counts)),
        sum(c * x for c, x in zip(counts, centres)),
        sum(c * x * x for c, x in zip(counts, centres)),
    )


class TensorBoardLogger:
    """Scalars and pass-rate histograms into ``RUN/tensorboard`` via torch's ``SummaryWriter``."""

    def __init__(self, log_dir: Path, purge_step: int | None = None) -> None:
        if importlib.util.find_spec("tensorboard") is None:
            raise BackendUnavailable(
                "run.tensorboard=true needs TensorBoard: pip install 'gasp-rl[tensorboard]'"
            )
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        # purge_step drops events a crashed run logged after its last committed iteration
        self._writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge_step)

    def log(self, record: Mapping[str, Any], step: int) -> None:
        for key, value in flatten_metrics(record).items():
            self._writer.add_scalar(key, value, global_step=step)
        for key, counts in histogram_counts(record).items():
            num, total, squares = histogram_moments(counts)
            if not num:
                continue
            edges = bin_edges(len(counts))
            used = [i for i, c in enumerate(counts) if c]
            self._writer.add_histogram_raw(
                key,
                min=edges[used[0]],
                max=edges[used[-1] + 1],
                num=num,
                sum=total,
                sum_squares=squares,
                bucket_limits=edges[1:],
                bucket_counts=counts,
                global_step=step,
            )
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def _wandb_id(run_dir: Path) -> str:
    """A stable W&B run id per run directory, so a resumed run continues the same W&B run."""
    stem = re.sub(r"[^a-z0-9]+", "-", run_dir.resolve().name.lower()).strip("-") or "run"
    digest = hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:8]
    return f"{stem[:40]}-{digest}"


class WandbLogger:
    """Scalars and histograms into a W&B run; offline mode writes to ``RUN/wandb`` only."""

    def __init__(
        self,
        run_dir: Path,
        project: str,
        mode: str = "offline",
        config: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        try:
            import wandb
        except ImportError:
            raise BackendUnavailable(
                "run.wandb=true needs Weights & Biases: pip install 'gasp-rl[wandb]'"
            ) from None
        self._wandb = wandb
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(
            project=project,
            mode=mode,
            dir=str(run_dir),
            name=name or run_dir.name,
            id=_wandb_id(run_dir),
            resume="allow",
            config=dict(config or {}),
            settings=wandb.Settings(silent=True, x_disable_stats=True, console="off"),
        )
        self._last_step = -1

    def log(self, record: Mapping[str, Any], step: int) -> None:
        if step <= self._last_step:  # W&B steps must increase; a replayed iteration is dropped
            return
        data: dict[str, Any] = dict(flatten_metrics(record))
        for key, counts in histogram_counts(record).items():
            if sum(counts):
                data[key] = self._wandb.Histogram(np_histogram=(counts, bin_edges(len(counts))))
        self._run.log(data, step=step)
        self._last_step = step

    def close(self) -> None:
        self._run.finish()
        # finish() can return before wandb-core has written the records (seen with wandb 0.31,
        # offline); teardown waits for the service to drain, so nothing is lost at process exit.
        self._wandb.teardown()


def make_loggers(
    run_cfg: RunConfig,
    run_dir: Path,
    config: Mapping[str, Any] | None = None,
    purge_step: int | None = None,
) -> list[MetricLogger]:
    """The loggers ``run_cfg`` asks for (possibly none).

    ``config`` (the resolved config as a dict) is attached to the W&B run; ``purge_step`` is the
    first iteration a resumed run will log again (TensorBoard discards later stale events).
    Raises :class:`BackendUnavailable` when a requested logger is not installed, so a long run
    does not start without the view its user asked for.
    """
    run_dir = Path(run_dir)
    loggers: list[MetricLogger] = []
    if run_cfg.tensorboard:
        loggers.append(TensorBoardLogger(run_dir / "tensorboard", purge_step=purge_step))
    if run_cfg.wandb and run_cfg.wandb_mode != "disabled":
        loggers.append(WandbLogger(run_dir, run_cfg.wandb_project, run_cfg.wandb_mode, config=config))
    return loggers
