"""Fidelity to the papers and the AZR code (issue 15): novelty against accepted proposals only,
PPO mini-batch steps with old log-probs, the token-mean normaliser, TRR++ normalisation and
``trainer.seed``.  Stub seams only: no sandbox, no model."""

from __future__ import annotations

import random
from typing import Any

from gasp_rl.algorithms.gasp import GASP
from gasp_rl.algorithms.selfplay import SelfPlayKit
from gasp_rl.backends.fake import HashEmbedder
from gasp_rl.config import load_config
from gasp_rl.core.jobs import Job, Status, Verdict
from gasp_rl.core.tasks import Problem
from gasp_rl.seams import Completion

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
    kit = SelfPlayKit(cfg, generator=None, learner=None, executor=EchoExecutor(), embedder=HashEmbedder())  # type: ignore[arg-type]
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
