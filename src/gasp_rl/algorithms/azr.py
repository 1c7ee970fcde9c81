"""The Absolute Zero baseline (AZR, arXiv 2505.03335): unguided asymmetric self-play.

Each iteration, for each task type the proposer writes ``azr.proposals_per_type`` proposals:

- deduction / abduction: shown ``azr.n_references`` reference programs from its buffer (seeded with
  simple programs the project ships), it writes a new program and one input;
- induction: given ONE program from the buffer, it writes ``azr.induction_inputs`` inputs and a
  message (no code); the solver sees the first half of the I/O pairs and the message, the second
  half grades it (AZR's ``gen_code_f`` / ``pred_code_f``).

Proposals are validated (method.md §5, without the novelty filter), their pass rate p is estimated from
``azr.n_student`` solver attempts, and the rewards are AZR's
(:func:`~gasp_rl.core.rewards.azr_proposer_reward`: -1 invalid, -0.5 if p is 0 or 1, else 1 - p;
:func:`~gasp_rl.core.rewards.azr_solver_reward`: 1 correct, -0.5 wrong, -1 format error).  Valid
deduction / abduction programs join the buffer.  One TRR++ update over all (task type, role) groups.

Simplification, documented: the solver's training rollouts are the same ``n_student`` attempts
used to estimate p (AZR samples them separately); this halves the student cost on a CPU.
"""

from __future__ import annotations

import json
import random
from importlib import resources
from typing import Any

import numpy as np

from gasp_rl.algorithms.selfplay import (
    Candidate,
    SelfPlayKit,
    UpdateItem,
    histogram,
    reason_counts,
    student_record,
)
from gasp_rl.config import Config
from gasp_rl.core import parsing, prompts
from gasp_rl.core.jobs import Job
from gasp_rl.core.rewards import CORRECT, azr_proposer_reward, azr_solver_reward
from gasp_rl.core.tasks import TASK_TYPES, ProgramTask
from gasp_rl.errors import DataError
from gasp_rl.seams import Executor, RecordStore


def load_seed_programs(executor: Executor, limit: int) -> list[ProgramTask]:
    """The shipped seed programs, with reference outputs computed in the sandbox."""
    try:
        text = resources.files("gasp_rl.data").joinpath("azr_seed_programs.jsonl").read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as e:
        raise DataError(f"AZR seed programs are missing from the package ({e})") from None
    tasks = [ProgramTask.from_dict(json.loads(line)) for line in text.splitlines() if line.strip()][:limit]
    missing = [t for t in tasks if any(not p.output for p in t.io)]
    if missing:
        verdicts = executor.run([Job("call", code=t.code, cases=[p.args for p in t.io]) for t in missing])
        for t, v in zip(missing, verdicts):
            if v.passed:
                for p, o in zip(t.io, v.outputs):
                    p.output = o or ""
    return [t for t in tasks if t.io and all(p.output for p in t.io)]


class AZR:
    def __init__(self, cfg: Config, kit: SelfPlayKit, seeds: list[ProgramTask]) -> None:
        if not seeds:
            raise DataError("AZR needs seed programs")
        self.cfg, self.a, self.kit = cfg, cfg.azr, kit
        self.buffer: list[ProgramTask] = list(seeds)

    def iteration(self, it: int, store: RecordStore) -> dict[str, Any]:
        rng = random.Random(f"{self.cfg.run.seed}/{it}/azr")
        cands: list[Candidate] = []
        items: list[UpdateItem] = []
        student: dict[str, list[float]] = {}
        for tt in TASK_TYPES:
            induction = tt == "induction"
            n_inputs = self.a.induction_inputs if induction else 1
            chats, group = [], []
            for j in range(self.a.proposals_per_type):
                c = Candidate(f"it{it}-azr-{tt}-{j}", it, "azr", 0, task_type=tt)
                if induction:  # AZR gen_code_f: inputs and a message for one given program
                    given = rng.choice(self.buffer)
                    c.given_code, c.parent_id = given.code, given.task_id or None
                    refs = [given]
                else:
                    refs = rng.sample(self.buffer, k=min(self.a.n_references, len(self.buffer)))
                chats.append(prompts.azr_proposer_prompt(tt, refs, n_inputs))
                group.append(c)
            with self.kit.clock.timed("propose"):
                outs = self.kit.sample(
                    chats,
                    f"azr_propose_{tt}",
                    1,
                    self.cfg.generation.max_new_tokens,
                    seed=rng.randrange(2**31),
                    stop_pattern=parsing.STOP_AFTER_MESSAGE_LINE,
                    # the prefill starts a program; an induction proposer writes none
                    prefill="" if induction else self.cfg.gasp.proposal_prefill,
                )
            for c, o in zip(group, outs):
                c.completion = o[0]
            self.kit.validate(group, n_inputs, novelty=False)
            valid = [c for c in group if c.valid]
            with self.kit.clock.timed("solver"):
                results = self.kit.attempt(
                    [(c.task, tt) for c in valid],
                    self.a.n_student,
                    self.cfg.generation.max_new_tokens,
                    seed=rng.randrange(2**31),
                    rng=rng,
                    outcomes=True,
                    induction_split=(n_inputs // 2, n_inputs - n_inputs // 2),
                )
            for c, (_, _, comps, outcomes) in zip(valid, results):
                c.pass_rate, c.n_student = sum(o == CORRECT for o in outcomes) / len(outcomes), len(outcomes)
                rewards = [
                    azr_solver_reward(o, self.a.solver_wrong_reward, self.a.solver_format_reward)
                    for o in outcomes
                ]
                items += [UpdateItem(comp, r, tt, "solver") for comp, r in zip(comps, rewards)]
                student.setdefault(tt, []).extend(rewards)
                mean = float(np.mean(rewards))
                store.append(
                    "students",
                    student_record(it, "solver", c.id, "azr", tt, rewards, mean, outcomes=outcomes),
                )
            for c in group:
                c.reward = azr_proposer_reward(
                    c.pass_rate if c.valid else None, self.a.invalid_reward, self.a.extreme_reward
                )
                c.accepted = c.valid
                if c.accepted and not induction:  # an induction task's program is already there
                    self.buffer.append(c.task)
                store.append("proposals", c.record())
                items.append(UpdateItem(c.completion, c.reward, tt, "proposer"))
            cands += group
        learner = self.kit.update(items)
        return {
            "proposals": {
                "attempted": len(cands),
                "accepted": sum(c.accepted for c in cands),
                "by_reason": reason_counts(cands),
            },
            "acceptance_rate": sum(c.accepted for c in cands) / max(1, len(cands)),
            "teacher_reward": {"azr": float(np.mean([c.reward for c in cands]))},
            "student_reward": {
                **{k: float(np.mean(v)) for k, v in student.items()},
                "all": float(np.mean([r for v in student.values() for r in v])) if student else None,
            },
            "pass_rate_hist": {"azr": histogram([c.pass_rate for c in cands if c.pass_rate is not None])},
            "buffer_size": len(self.buffer),
            "tokens": {"teacher": sum(len(c.completion.token_ids) for c in cands)},
            "learner": learner,
        }

    def state(self) -> dict[str, Any]:
        return {"buffer": [t.to_dict() for t in self.buffer]}

    def load_state(self, state: dict[str, Any]) -> None:
        if state.get("buffer"):
            self.buffer = [ProgramTask.from_dict(d) for d in state["buffer"]]
