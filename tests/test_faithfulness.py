"""Fidelity to the papers and the AZR code (issue 15): novelty against accepted proposals only,
PPO mini-batch steps with old log-probs, the token-mean normaliser, TRR++ normalisation and
``trainer.seed``.  Stub seams only: no sandbox, no model."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gasp_rl.algorithms.gasp import GASP
from gasp_rl.algorithms.ppo import mini_batches, ppo_update
from gasp_rl.algorithms.selfplay import SelfPlayKit
from gasp_rl.backends.embedder import HashingEmbedder
from gasp_rl.config import load_config
from gasp_rl.core.advantages import trr_plus_plus
from gasp_rl.core.jobs import Job, Status, Verdict
from gasp_rl.core.tasks import Problem
from gasp_rl.seams import Completion, PolicySample

LEMMA = (
    "```python\ndef f(x):\n    return x * 3 + 1\n```\nInputs: [1, 2, 3, 4, 5]\nMessage: times three plus one"
)


class EchoExecutor:
    """Every job passes; outputs are the argument texts (enough for validation)."""

    def run(self, jobs: list[Job]) -> list[Verdict]:
        return [Verdict(Status.PASSED, outputs=list(j.cases)) for j in jobs]

    def check_determinism(self, jobs: list[Job]) -> list[tuple[bool, Verdict]]:
        return [(True, v) for v in self.run(jobs)]

    def close(self) -> None:
        pass


class Store:
    def __init__(self) -> None:
        self.records: dict[str, list[dict[str, Any]]] = {}

    def append(self, stream: str, rec: dict[str, Any]) -> None:
        self.records.setdefault(stream, []).append(rec)


def _gasp(texts: list[str], pass_rates: list[float], *overrides: str) -> tuple[GASP, SelfPlayKit]:
    cfg = load_config(
        None,
        [
            f"gasp.lemmas_per_step={len(texts)}",
            "gasp.min_accepted=1",
            "gasp.lemma_band=[0.25,0.75]",
            *overrides,
        ],
    )
    kit = SelfPlayKit(cfg, generator=None, learner=None, executor=EchoExecutor(), embedder=HashingEmbedder())  # type: ignore[arg-type]
    kit.sample = lambda chats, *a, **k: [[Completion(text=t, token_ids=[1])] for t in texts]  # type: ignore[method-assign]
    algo = GASP(cfg, kit, [Problem(problem_id="g0", prompt="def g(x): ...", kind="functional")])

    def estimate(it, valid, rng, store):  # type: ignore[no-untyped-def]
        for c, p in zip(valid, pass_rates):
            c.pass_rate, c.n_student = p, 4

    algo._estimate = estimate  # type: ignore[method-assign]
    algo._seen = []
    algo._last_learner = {}
    return algo, kit


def test_novelty_compares_with_accepted_proposals_only() -> None:
    """Two identical lemmas, the first out of band: the second is accepted (main rejected it as
    novelty_question with reward -1 although nothing had been accepted)."""
    algo, kit = _gasp([LEMMA, LEMMA], [0.0, 0.5])
    accepted = algo.propose(0, "lemma", algo.g.lemma_band, algo.g.lemma_reward, random.Random(0), Store())
    first, second = algo._seen
    assert first.rejection_reason == "out_of_band" and not first.accepted
    assert second.accepted and second.rejection_reason is None and second.reward == 1.0
    assert accepted == [second] and len(kit.question_buffer.matrix) == 1


def test_identical_in_band_lemmas_of_one_batch_accept_the_first_only() -> None:
    algo, kit = _gasp([LEMMA, LEMMA, LEMMA], [0.5, 0.5, 0.0])
    algo.propose(0, "lemma", algo.g.lemma_band, algo.g.lemma_reward, random.Random(0), Store())
    a, b, c = algo._seen
    assert a.accepted
    assert b.rejection_reason == "novelty_question" and "earlier accepted" in b.detail and b.reward == -1.0
    assert c.rejection_reason == "out_of_band"  # never acceptable: compared with nothing
    assert len(kit.question_buffer.matrix) == 1
    # the ablation without rejection sampling accepts both
    algo, _ = _gasp([LEMMA, LEMMA], [0.5, 0.5], "mode=no_rejection_sampling")
    algo.propose(0, "lemma", algo.g.lemma_band, algo.g.lemma_reward, random.Random(0), Store())
    assert all(x.accepted for x in algo._seen) and algo._seen[1].similarity_question > 0.99


# ------------------------------------------------------------------ PPO mini-batches (item 7)


class LogprobLearner:
    """Records each step's samples; log-probs come from a counter so they change after a step."""

    def __init__(self) -> None:
        self.steps: list[list[PolicySample]] = []
        self.logprob_calls = 0

    def sequence_logprobs(self, samples):  # type: ignore[no-untyped-def]
        self.logprob_calls += 1
        return [[-0.5 - len(self.steps)] * len(s.completion_token_ids) for s in samples]

    def update(self, samples):  # type: ignore[no-untyped-def]
        self.steps.append(list(samples))
        return {
            "loss": float(len(self.steps)),
            "samples": float(len(samples)),
            "clip_frac": 0.1 * len(self.steps),
        }

    def save(self, path):  # type: ignore[no-untyped-def]
        pass

    def load(self, path):  # type: ignore[no-untyped-def]
        pass


def _samples(n: int) -> list[PolicySample]:
    return [PolicySample([1, 2], [3 + i] * (i + 1), 1.0 if i % 2 else -1.0, group="g") for i in range(n)]


def test_mini_batches_cover_every_sample_once_per_epoch() -> None:
    assert mini_batches(5, 0) == [[0, 1, 2, 3, 4]] and mini_batches(5, 8) == [[0, 1, 2, 3, 4]]
    assert mini_batches(5, 2) == [[0, 1], [2, 3], [4]]
    steps = mini_batches(6, 4, epochs=2, rng=random.Random(0))
    assert [len(s) for s in steps] == [4, 2, 4, 2]
    assert sorted(steps[0] + steps[1]) == list(range(6)) == sorted(steps[2] + steps[3])


def test_ppo_update_takes_mini_batch_steps_against_old_logprobs_computed_once() -> None:
    cfg = load_config(
        None, ["trainer.ppo_mini_batch_size=2", "trainer.ppo_epochs=2", "trainer.ppo_shuffle=false"]
    )
    learner = LogprobLearner()
    m = ppo_update(learner, _samples(4), cfg.trainer)
    assert learner.logprob_calls == 1 and len(learner.steps) == 4 and m["ppo_steps"] == 4.0
    # every step sees the log-probs of the policy before the FIRST step, not its own
    assert all(s.old_logprobs == [-0.5] * len(s.completion_token_ids) for step in learner.steps for s in step)
    assert m["samples"] == 8.0 and m["loss"] == 2.5 and m["clip_frac_last"] == pytest.approx(0.4)
    # default: one step, no old log-probs (ratio exactly 1)
    learner = LogprobLearner()
    assert ppo_update(learner, _samples(4), load_config().trainer)["ppo_steps"] == 1.0
    assert learner.logprob_calls == 0 and learner.steps[0][0].old_logprobs is None


def _kit(*overrides: str) -> tuple[SelfPlayKit, LogprobLearner]:
    cfg = load_config(None, list(overrides))
    learner = LogprobLearner()
    kit = SelfPlayKit(
        cfg, generator=None, learner=learner, executor=EchoExecutor(), embedder=HashingEmbedder()
    )  # type: ignore[arg-type]
    return kit, learner


def _items() -> list[tuple[Completion, float, str, str]]:
    c = [Completion(text=str(i), token_ids=[5] * (i + 1), prompt_token_ids=[1]) for i in range(6)]
    # a mixed induction/student group, and a zero-variance deduction/student group
    return [(c[0], 1.0, "induction", "student"), (c[1], 0.0, "induction", "student"), (c[2], 1.0, "induction", "student"),
            (c[3], 0.0, "deduction", "student"), (c[4], 0.0, "deduction", "student"), (c[5], 0.0, "deduction", "student")]  # fmt: skip


def test_kit_update_keeps_zero_advantage_samples_in_the_normaliser_and_steps_in_mini_batches() -> None:
    kit, learner = _kit("trainer.ppo_mini_batch_size=2")
    m = kit.update(_items())
    # all six samples reach the learner (zero-advantage ones count in verl's token-mean denominator)
    assert sum(len(s) for s in learner.steps) == 6 and len(learner.steps) == 3 and m["ppo_steps"] == 3.0
    assert [float(s.advantage) for step in learner.steps for s in step].count(0.0) == 3
    assert learner.logprob_calls == 1 and all(s.old_logprobs is not None for st in learner.steps for s in st)


def test_trainer_seed_orders_the_mini_batches_and_seeds_torch(monkeypatch) -> None:
    orders = []
    for seed in (0, 0, 1, 2, 3):
        kit, learner = _kit("trainer.ppo_mini_batch_size=2", f"trainer.seed={seed}")
        kit.update(_items())
        orders.append([s.completion_token_ids for st in learner.steps for s in st])
    assert orders[0] == orders[1] and any(o != orders[0] for o in orders[2:])

    import torch

    from gasp_rl.backends import factory

    monkeypatch.setitem(factory._BUILDERS, "hf", lambda cfg: "bundle")
    assert factory.build_policy(load_config(None, ["trainer.seed=1234"])) == "bundle"
    assert torch.initial_seed() == 1234


# ------------------------------------------------------------------ TRR++ normalisation (item 8)


def test_trr_token_normalisation_is_verl_masked_whiten_per_group() -> None:
    import torch

    rewards, lengths = [1.0, 0.0, 0.0, 1.0, 0.5], [3, 1, 2, 5, 4]
    types, roles = ["induction"] * 4 + ["deduction"], ["student"] * 5
    seq = trr_plus_plus(rewards, types, roles, eps=1e-8)
    tok = trr_plus_plus(rewards, types, roles, eps=1e-8, normalisation="token", lengths=lengths)
    # verl_F.masked_whiten over the tokens of the induction group, every token carrying its reward
    values = torch.tensor([[r] * 5 for r in rewards[:4]], dtype=torch.float64)
    mask = torch.tensor([[1] * n + [0] * (5 - n) for n in lengths[:4]], dtype=torch.float64)
    mean = (values * mask).sum() / mask.sum()
    var = (((values - mean) ** 2) * mask).sum() / mask.sum() * mask.sum() / (mask.sum() - 1)
    expected = ((values - mean) * torch.rsqrt(var + 1e-8))[:, 0].numpy()
    assert np.allclose(tok[:4], expected) and tok[4] == 0.0
    assert not np.allclose(seq[:4], tok[:4])  # the paper's per-sequence formula differs
    kit, learner = _kit("trainer.trr_normalisation=token")
    kit.update(_items())
    got = [float(s.advantage) for s in learner.steps[0][:3]]
    want = trr_plus_plus(
        [1.0, 0.0, 1.0], ["i"] * 3, ["s"] * 3, eps=1e-6, normalisation="token", lengths=[1, 2, 3]
    )
    assert np.allclose(got, want)


@pytest.mark.slow
def test_clipping_acts_with_mini_batch_steps_on_the_embedded_model() -> None:
    """One step per batch keeps the ratio at 1 (clipping never acts); with mini-batches against
    the old log-probs the later steps see ratios away from 1 and clip_low / clip_high clip."""
    from gasp_rl.backends.hf import HFPolicy
    from gasp_rl.seams import SamplingParams

    cfg = load_config(
        None,
        [
            "trainer.lr=3e-4",
            "trainer.bf16_autocast=false",
            "trainer.ppo_mini_batch_size=2",
            "trainer.ppo_shuffle=false",
        ],
    )
    policy = HFPolicy.from_config(cfg)
    chat = [{"role": "user", "content": "Name a colour."}]
    out = policy.generate([chat], SamplingParams(n=4, max_new_tokens=6, seed=3))[0]
    samples = [
        PolicySample(c.prompt_token_ids, c.token_ids, 1.0 if i % 2 else -1.0) for i, c in enumerate(out)
    ]
    one = policy.update(samples)  # main's path: one step, ratio exactly 1
    assert one["ratio_mean"] == pytest.approx(1.0, abs=1e-6) and one["clip_frac"] == 0.0
    steps: list[dict[str, float]] = []
    real_update = policy.update
    policy.update = lambda s: steps.append(real_update(s)) or steps[-1]  # type: ignore[method-assign]
    m = ppo_update(policy, samples, cfg.trainer)
    assert m["ppo_steps"] == 2.0 and steps[0]["ratio_mean"] == pytest.approx(1.0, abs=1e-4)
    assert abs(steps[-1]["ratio_mean"] - 1.0) > 1e-3 and max(s["clip_frac"] for s in steps[1:]) > 0


# ------------------------------------------------------------------ paper configs (item 6)

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def _eval_window(section: dict[str, Any]) -> tuple[str | None, str | None]:
    from gasp_rl.eval.datasets import BENCHMARKS

    spec = BENCHMARKS[section["benchmark"]]
    return section.get("start_date") or spec.start_date, section.get("end_date") or spec.end_date


def test_paper_config_trains_rlvr_on_the_lcb_training_window_with_paper_batches() -> None:
    from gasp_rl.eval.datasets import BENCHMARKS

    cfg = load_config(CONFIGS / "gasp_paper.yaml", ["mode=gasp_plus_rl"])
    train = BENCHMARKS[cfg.rlvr.problems]
    assert (train.start_date, train.end_date) == ("2023-05-01", "2024-08-31")
    assert cfg.rlvr.batch_problems == 64 and cfg.rlvr.max_new_tokens == 4096 and cfg.rlvr.temperature == 1.0
    assert cfg.azr.proposals_per_type == 64 and cfg.azr.n_references == 6 and cfg.azr.induction_inputs == 10
    assert cfg.goalposts.split == "livecodebench-train" and cfg.goalposts.k == 100
    assert cfg.trainer.ppo_mini_batch_size > 0  # several clipped steps per batch at paper scale
    assert load_config().azr.proposals_per_type == 4  # the CPU demo stays small


def test_one_livecodebench_evaluation_window_everywhere() -> None:
    import yaml

    from gasp_rl.eval.datasets import BENCHMARKS

    v5 = BENCHMARKS["livecodebench-v5"]
    assert (v5.start_date, v5.end_date) == ("2024-10-01", "2025-02-01")
    files = [
        "gasp_paper.yaml",
        "no_rejection_sampling_paper.yaml",
        "verl/qwen2.5-coder-7b-1x4.yaml",
        "verl/qwen2.5-coder-7b-multinode.yaml",
    ]
    for name in files:
        section = yaml.safe_load((CONFIGS / name).read_text())["eval"]
        assert _eval_window(section) == (v5.start_date, v5.end_date), name


def test_no_rejection_sampling_paper_config_is_the_paper_config_run_longer() -> None:
    paper = load_config(CONFIGS / "gasp_paper.yaml").model_dump()
    longer = load_config(CONFIGS / "no_rejection_sampling_paper.yaml").model_dump()
    assert longer["gasp"]["mode"] == "no_rejection_sampling"
    assert longer["gasp"]["iterations"] == 200 and longer["gasp"]["checkpoint_every"] == 10
    for key in ("mode", "iterations", "checkpoint_every"):
        longer["gasp"][key] = paper["gasp"][key]
    assert longer == paper
