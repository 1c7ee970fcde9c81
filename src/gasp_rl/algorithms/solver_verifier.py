"""Sol-Ver (Lin et al. 2025, "Learning to Solve and Verify", arXiv 2502.14948; method.md §9).

One model plays two roles on problems it writes itself: the *solver* writes code, the *verifier*
writes unit tests.  Executing every solution against every test gives a pass matrix from which
the model's own data is checked by agreement, and the agreed data trains both roles.

One iteration, as :meth:`SolVer.iteration` runs it:

1. **Synthesise** new problems (signature + docstring) from seed problems; drop near-duplicates of
   the seeds, of the template's worked example and of every earlier synthetic problem.
2. **Sample** ``m`` solutions (solver) and ``m`` assert-based tests (verifier) per problem.
3. **Pass matrix**: every solution x every test, all problems in ONE batched executor call.
4. **Select** trusted solutions and tests by agreement (:mod:`gasp_rl.core.agreement`, where the
   exact rule is documented) and build SFT examples and DPO preference pairs for both roles.
5. **Train**: TRL's ``SFTTrainer`` on the trusted (problem -> solution) and (problem -> test)
   pairs, then TRL's ``DPOTrainer`` with chosen = trusted, rejected = failing solution / wrong
   test, the reference being the policy right after SFT.
6. **Metrics**: code-generation pass@1 (the evaluation runner) and test-generation accuracy on
   held-out problems; per-iteration data statistics.  Then a checkpoint.

Design notes
------------
- *De-duplication* embeds the problem text (signature + docstring) with the hashing embedder of
  character 3- to 5-grams (:class:`gasp_rl.backends.embedder.HashingEmbedder`); cosine similarity
  above ``dedup_threshold`` to a seed, to the template's worked example or to an earlier synthetic
  problem is a duplicate.  Problems that differ only in a name or a word are caught, no weights
  are needed, and it costs microseconds.  ``solver_verifier.dedup_embedder=policy`` uses the
  policy's own embedder instead.
- *A unit test* is a list of ``assert`` statements of the form ``assert f(<constants>) == <constant>``
  (or ``assert f(...)``, ``assert not f(...)``, ``... is None/True/False``); everything else the
  verifier writes is dropped before execution (:mod:`gasp_rl.core.unit_tests`, which also parses
  synthesised problems).
- *Test-generation accuracy* (method.md §9.5): the fraction of generated tests that the known-
  correct solution passes, and the fraction that reject a known-wrong one
  (:mod:`gasp_rl.eval.test_generation`).
- Training data are the model's own raw completions (on-policy text), so DPO's log-ratios are
  those of outputs the policy actually produces.

The steps 1-4 are :mod:`gasp_rl.algorithms.solver_verifier_steps`; the SFT + DPO trainer is a
seam (:class:`Trainer`, TRL's in :mod:`gasp_rl.backends.trl_finetune`, wired by
:mod:`gasp_rl.wiring`).
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gasp_rl.algorithms.selfplay import PhaseClock
from gasp_rl.algorithms.solver_verifier_steps import (
    RECORD_CHARS,
    Deduplicator,
    ProblemData,
    ProblemProposal,
    SampledCode,
    TrainingData,
    derive_seed,
    example_problem_texts,
    pass_matrix_jobs,
    run_pass_matrices,
    sample_solutions,
    sample_tests,
    select_and_build,
    selection_stats,
    solution_program,
    solver_prompt,
    synthesise,
    verifier_prefill,
    verifier_prompt,
)
from gasp_rl.config import Config
from gasp_rl.core.jobs import Limits
from gasp_rl.core.parsing import STOP_AFTER_CODE_BLOCK
from gasp_rl.core.tasks import Problem
from gasp_rl.core.unit_tests import (
    close_fence,
    cut_after_docstring,
    is_unit_assert,
    parse_problem,
    parse_test,
)
from gasp_rl.eval.test_generation import reference_program, verifier_accuracy, wrong_program
from gasp_rl.runs import RunStore, atomic_write_text, read_records
from gasp_rl.seams import Embedder, Executor, Generator, SamplingParams

COMMAND = "solver-verifier"


# ====================================================================== the algorithm


class Trainer(Protocol):
    """SFT then DPO on the policy in place (:class:`gasp_rl.backends.trl_finetune.TrlTrainer`):
    rows in TRL's conversational prompt-completion / preference formats; returns metrics."""

    def sft(self, rows: list[dict[str, Any]], seed: int) -> dict[str, Any]: ...

    def dpo(self, rows: list[dict[str, Any]], seed: int) -> dict[str, Any]: ...


@dataclass
class Seams:
    """What Sol-Ver runs on: a generator, the SFT + DPO trainer of the same policy, the sandbox
    and an embedder for de-duplication."""

    generator: Generator
    trainer: Trainer
    executor: Executor
    embedder: Embedder
    sync: Callable[[], None] | None = None  # push trained weights to a separate generator (vLLM)


#: The phases of an iteration (the progress display shows them).
PHASES = ("synthesis", "sampling", "pass_matrix", "sft", "dpo", "eval", "checkpoint")


class SolVer:
    """The Sol-Ver loop over a set of seams; :meth:`iteration` is method.md §9's one iteration."""

    def __init__(
        self, cfg: Config, seams: Seams, seeds: Sequence[Problem], heldout: Sequence[Problem]
    ) -> None:
        self.cfg = cfg
        self.sv = cfg.solver_verifier
        self.seams = seams
        self.seeds = list(seeds)
        self.heldout = list(heldout)
        self.dedup = Deduplicator(seams.embedder, self.sv.dedup_threshold)
        self.dedup.add([s.prompt for s in self.seeds] + example_problem_texts())
        self.trainer = seams.trainer
        self.check_limits = Limits(
            cpu_time=self.sv.check_cpu_time,
            memory_mb=cfg.sandbox.memory_mb,
            output_bytes=cfg.sandbox.output_bytes,
            open_files=cfg.sandbox.open_files,
        )
        self.clock = PhaseClock(phases=PHASES)

    def remember(self, problems: Sequence[str]) -> None:
        """Earlier synthetic problems (on resume) join the de-duplication buffer."""
        self.dedup.add(list(problems))

    def _params(self, purpose: str, n: int, max_new_tokens: int, iteration: int) -> SamplingParams:
        g = self.cfg.generation
        return SamplingParams(
            n=n,
            temperature=g.temperature,
            top_p=g.top_p,
            max_new_tokens=max_new_tokens,
            seed=derive_seed(self.cfg.run.seed, purpose, iteration),
            stop=list(STOP_AFTER_CODE_BLOCK),
            purpose=purpose,
        )

    # ------------------------------------------------------------------ one iteration

    def iteration(self, it: int, store: RunStore | None = None) -> dict[str, Any]:
        sv, gen, ex = self.sv, self.seams.generator, self.seams.executor
        m: dict[str, Any] = {"iteration": it, "mode": COMMAND}

        # 1. synthesise problems from the seeds (de-duplicated)
        with self.clock.timed("synthesis"):
            proposals = synthesise(
                gen,
                self.seeds,
                self.dedup,
                iteration=it,
                wanted=sv.problems_per_iteration,
                oversample=sv.synthesis_oversample,
                rounds=sv.synthesis_rounds,
                max_new_tokens=sv.synthesis_max_new_tokens,
                temperature=self.cfg.generation.temperature,
                seed=self.cfg.run.seed,
            )
        problems = [p.problem for p in proposals if p.problem is not None]
        m["synthesis"] = {
            "attempted": len(proposals),
            "accepted": len(problems),
            "by_reason": dict(Counter(p.rejection_reason or "accepted" for p in proposals)),
        }
        m["proposals"] = {"attempted": len(proposals), "accepted": len(problems)}

        # 2. m solutions and m tests per problem
        with self.clock.timed("sampling"):
            sols = sample_solutions(
                gen, problems, self._params("sv_solve", sv.m, sv.solution_max_new_tokens, it)
            )
            tsts = sample_tests(
                gen,
                problems,
                self._params("sv_test", sv.m, sv.test_max_new_tokens, it),
                sv.max_asserts_per_test,
                prefill=sv.verifier_prefill,
            )
        data = [ProblemData(p, s, t) for p, s, t in zip(problems, sols, tsts)]
        m["sampling"] = {
            "solutions": _candidate_stats([c for d in data for c in d.solutions]),
            "tests": _candidate_stats([c for d in data for c in d.tests]),
        }

        # 3. the pass matrix: every solution x every test, one batched executor call
        with self.clock.timed("pass_matrix"):
            t0 = time.perf_counter()
            mats, verdicts = run_pass_matrices(
                ex,
                [[c.code for c in d.solutions] for d in data],
                [[c.code for c in d.tests] for d in data],
                self.check_limits,
            )
            dt = time.perf_counter() - t0
        for d, mat in zip(data, mats):
            d.matrix = mat
        m["pass_matrix"] = {
            "executions": len(verdicts),
            "seconds": round(dt, 3),
            "executions_per_s": round(len(verdicts) / dt, 1) if verdicts and dt > 0 else None,
            "statuses": dict(Counter(v.status.value for v in verdicts)),
        }

        # 4. selection by agreement -> SFT examples and DPO pairs for both roles
        training = select_and_build(data, sv)
        m["selection"] = selection_stats(data)
        m["data"] = dict(training.counts)
        if store is not None:
            for p in proposals:
                store.append("proposals", p.record())
            for d in data:
                store.append("students", d.record(it))

        # 5. SFT, then DPO from the SFT'd policy
        rng = random.Random(derive_seed(self.cfg.run.seed, "shuffle", it))
        rng.shuffle(training.sft)
        rng.shuffle(training.dpo)
        with self.clock.timed("sft"):
            m["sft"] = self.trainer.sft(training.sft, seed=derive_seed(self.cfg.run.seed, "sft", it) % 2**31)
        with self.clock.timed("dpo"):
            m["dpo"] = self.trainer.dpo(training.dpo, seed=derive_seed(self.cfg.run.seed, "dpo", it) % 2**31)
        if self.seams.sync is not None:
            self.seams.sync()

        # 6. metrics on held-out problems
        with self.clock.timed("eval"):
            m["eval"] = self.evaluate(it, store)
        return m

    # ------------------------------------------------------------------ for the run driver

    def start(self, store: RunStore, first: int) -> None:
        """Earlier synthetic problems of the run join the de-duplication buffer; a new run first
        evaluates the base model (``solver_verifier.eval_baseline``), recorded in ``run.json``."""
        self.remember([r["code"] for r in read_records(store.path / "proposals.jsonl") if r.get("accepted")])
        if first == 0 and self.sv.eval_baseline and self.heldout:
            t0 = time.perf_counter()
            base = self.evaluate("base", store)
            store.save_meta(base_eval={k: v for k, v in base.items() if k != "solved"})
            tg = base["test_generation"]
            print(
                f"base model: pass@1 {base['pass@1']:.3f}, tests ok {tg['correct_passes']}, "
                f"reject-wrong {tg['rejects_wrong']} ({time.perf_counter() - t0:.0f}s)",
                flush=True,
            )

    def intro(self, first: int, total: int, store: RunStore) -> str:
        sv = self.sv
        return (
            f"{COMMAND}: {len(self.seeds)} seed problems ({sv.seed_problems}), {sv.problems_per_iteration} problems x "
            f"m={sv.m} per iteration, iterations {first}..{total - 1}, held-out {len(self.heldout)} "
            f"({self.cfg.eval.benchmark}) -> {store.path}"
        )

    def summary(self, it: int, total: int, metrics: dict[str, Any], eta: float) -> str:
        return format_iteration(metrics, total)

    def state(self) -> dict[str, Any]:
        return {}  # the synthetic problems are read back from proposals.jsonl (start)

    def load_state(self, state: dict[str, Any], checkpoint: Path) -> None:
        pass

    def save_files(self, checkpoint: Path) -> None:
        pass

    def checkpoint_context(self) -> Any:
        """TRL's libraries stay quiet while the weights are written."""
        quiet = getattr(self.trainer, "quiet", None)
        return quiet() if callable(quiet) else contextlib.nullcontext()

    # ------------------------------------------------------------------ metrics

    def evaluate(self, tag: int | str, store: RunStore | None = None) -> dict[str, Any]:
        """Code-generation pass@1 (the evaluation runner) and test-generation accuracy on the
        held-out problems."""
        if not self.heldout:
            return {}
        from gasp_rl.eval.grading import grading_limits
        from gasp_rl.eval.runner import EvalRunner, EvalSettings

        sv, ev = self.sv, self.cfg.eval
        settings = EvalSettings(
            n=sv.eval_n,
            ks=(1,),
            temperature=ev.temperature if sv.eval_n > 1 else 0.0,
            top_p=ev.top_p,
            max_new_tokens=ev.max_new_tokens,
            greedy=False,
            seed=self.cfg.run.seed,
        )
        runner = EvalRunner(
            self.seams.generator,
            self.seams.executor,
            settings,
            limits_for=grading_limits(self.cfg),  # gasp eval's grading, budgets included
            chunk_problems=ev.chunk_problems,
        )
        outcome = runner.run(self.heldout)
        params = SamplingParams(
            n=sv.eval_test_samples,
            temperature=ev.temperature if sv.eval_test_samples > 1 else 0.0,
            top_p=ev.top_p,
            max_new_tokens=sv.test_max_new_tokens,
            seed=derive_seed(self.cfg.run.seed, "eval-tests"),
            stop=list(STOP_AFTER_CODE_BLOCK),
            purpose="sv_eval_test",
        )
        tests = sample_tests(
            self.seams.generator, self.heldout, params, sv.max_asserts_per_test, prefill=sv.verifier_prefill
        )
        result = {
            "benchmark": ev.benchmark,
            "n_problems": outcome.n_problems,
            "pass@1": outcome.pass_at_k[1],
            "solved": outcome.solved,
            "test_generation": verifier_accuracy(self.seams.executor, self.heldout, tests, self.check_limits),
        }
        if store is not None:
            _write_eval_summary(store, tag, result)
        return result


def format_iteration(m: dict[str, Any], total: int) -> str:
    """The one-line summary of an iteration."""
    s, sel, d, ev = m["synthesis"], m["selection"], m["data"], m.get("eval") or {}
    tg = ev.get("test_generation") or {}
    pm = m["pass_matrix"]

    def f(x: Any) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    return (
        f"iteration {m['iteration'] + 1}/{total}: problems {s['accepted']}/{s['attempted']}, "
        f"pass matrix {pm['executions']} runs ({pm['executions_per_s']}/s), kept {sel['kept']}/{sel['problems']}, "
        f"SFT {d.get('sft_solver', 0)}+{d.get('sft_verifier', 0)} DPO {d.get('dpo_solver', 0)}+{d.get('dpo_verifier', 0)}, "
        f"pass@1 {f(ev.get('pass@1'))}, tests ok {f(tg.get('correct_passes'))} reject-wrong {f(tg.get('rejects_wrong'))}, "
        f"{m['time'].get('total', 0):.0f}s"
    )


def _candidate_stats(cands: Sequence[SampledCode]) -> dict[str, Any]:
    return {
        "sampled": len(cands),
        "valid": sum(c.valid for c in cands),
        "by_reason": dict(Counter(c.reason for c in cands if not c.valid)),
        "truncated": sum(c.finish_reason == "length" for c in cands),
    }


def _write_eval_summary(store: RunStore, tag: int | str, result: dict[str, Any]) -> None:
    """``eval/<checkpoint>__<benchmark>.json`` in the shape ``gasp report`` reads."""
    name = f"iter_{tag:06d}" if isinstance(tag, int) else str(tag)
    out = {
        "benchmark": result["benchmark"],
        "checkpoint": name,
        "iteration": tag if isinstance(tag, int) else -1,
        "pass_at_k": {"1": result["pass@1"]},
        "n_problems": result["n_problems"],
        "test_generation": result["test_generation"],
    }
    (store.path / "eval").mkdir(exist_ok=True)
    atomic_write_text(
        store.path / "eval" / f"{name}__{result['benchmark']}.json", json.dumps(out, indent=2) + "\n"
    )


__all__ = [
    "COMMAND",
    "RECORD_CHARS",
    "SampledCode",
    "Deduplicator",
    "ProblemData",
    "ProblemProposal",
    "Seams",
    "SolVer",
    "Trainer",
    "TrainingData",
    "close_fence",
    "cut_after_docstring",
    "derive_seed",
    "example_problem_texts",
    "is_unit_assert",
    "parse_problem",
    "parse_test",
    "pass_matrix_jobs",
    "reference_program",
    "run_pass_matrices",
    "sample_solutions",
    "sample_tests",
    "select_and_build",
    "selection_stats",
    "solution_program",
    "solver_prompt",
    "synthesise",
    "verifier_accuracy",
    "verifier_prefill",
    "verifier_prompt",
    "wrong_program",
]
