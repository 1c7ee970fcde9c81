"""TensorBoard and W&B loggers: views of the metric records, selected by config."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest

from gasp_rl.config import RunConfig
from gasp_rl.loggers import (
    MetricLogger,
    TensorBoardLogger,
    bin_edges,
    flatten_metrics,
    histogram_counts,
    histogram_moments,
    make_loggers,
)


def _record(it: int) -> dict[str, Any]:
    return {
        "iteration": it,
        "mode": "gasp",
        "time": {"lemma": 3.0, "total": 10.0 + it},
        "proposals": {"attempted": 8, "accepted": 3, "by_reason": {"syntax_error": 2}},
        "acceptance_rate": 0.375,
        "teacher_reward": {"lemma": 0.5 + it, "lift": None},
        "pass_rate_hist": {"lemma": [0, 2, 1, 0, 0, 0, 0, 0, 0, 1], "lift": [0] * 10, "bad": ["x"]},
        "buffer_dissimilarity": {"question": 0.25, "code": None},
        "learner": {"loss": 0.1, "finite": True},
        "rl": [
            {"reward_mean": 0.25, "problem_ids": ["a"], "learner": {"loss": 1.0}},
            {"reward_mean": 0.75, "problem_ids": ["b"], "learner": {"loss": 3.0}},
        ],
    }


def test_flatten_metrics_keeps_numeric_leaves_as_slash_keys() -> None:
    flat = flatten_metrics(_record(2))
    assert flat == {
        "time/lemma": 3.0,
        "time/total": 12.0,
        "proposals/attempted": 8.0,
        "proposals/accepted": 3.0,
        "proposals/by_reason/syntax_error": 2.0,
        "acceptance_rate": 0.375,
        "teacher_reward/lemma": 2.5,
        "buffer_dissimilarity/question": 0.25,
        "learner/loss": 0.1,
        "learner/finite": 1.0,
        "rl/reward_mean": 0.5,  # several RL updates in one iteration: their mean
        "rl/learner/loss": 2.0,
    }


def test_histograms_and_their_moments() -> None:
    hists = histogram_counts(_record(0))
    assert hists == {"pass_rate_hist/lemma": [0, 2, 1, 0, 0, 0, 0, 0, 0, 1], "pass_rate_hist/lift": [0] * 10}
    num, total, squares = histogram_moments([0, 2, 1, 0])
    assert num == 3 and total == pytest.approx(2 * 0.375 + 0.625)
    assert squares == pytest.approx(2 * 0.375**2 + 0.625**2)
    assert bin_edges(4) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_make_loggers_follows_config(tmp_path: Path) -> None:
    assert make_loggers(RunConfig(), tmp_path) == []
    assert make_loggers(RunConfig(wandb=True, wandb_mode="disabled"), tmp_path) == []
    loggers = make_loggers(RunConfig(tensorboard=True), tmp_path)
    assert len(loggers) == 1 and isinstance(loggers[0], TensorBoardLogger)
    assert isinstance(loggers[0], MetricLogger)
    loggers[0].close()


def test_tensorboard_logger_writes_scalars_and_histograms(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (logger,) = make_loggers(RunConfig(tensorboard=True), tmp_path)
    for it in range(3):
        logger.log(_record(it), step=it)
    logger.close()
    acc = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    tags = acc.Tags()
    assert "teacher_reward/lemma" in tags["scalars"] and "proposals/by_reason/syntax_error" in tags["scalars"]
    assert [(e.step, e.value) for e in acc.Scalars("teacher_reward/lemma")] == [(0, 0.5), (1, 1.5), (2, 2.5)]
    assert "pass_rate_hist/lemma" in tags["histograms"]
    assert "pass_rate_hist/lift" not in tags["histograms"]  # empty histograms are not written
    h = acc.Histograms("pass_rate_hist/lemma")[-1].histogram_value
    assert h.num == 4 and h.bucket == [0, 2, 1, 0, 0, 0, 0, 0, 0, 1]


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb not installed")
def test_wandb_offline_needs_no_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_API_KEY", "")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # any network use would fail loudly
    run_dir = tmp_path / "gasp-run"
    (logger,) = make_loggers(
        RunConfig(wandb=True, wandb_mode="offline"), run_dir, config={"gasp": {"iterations": 2}}
    )
    for it in range(2):
        logger.log(_record(it), step=it)
    logger.log(_record(0), step=0)  # a replayed step is ignored instead of crashing W&B
    logger.close()
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    (log,) = runs[0].glob("*.wandb")  # W&B's record log: protobuf history items "key" -> JSON value
    data = log.read_bytes()
    for value in (b"0\\.5", b"1\\.5"):
        assert re.search(rb"teacher_reward/lemma.{1,6}" + value, data, re.S)
    assert b"pass_rate_hist/lemma" in data
