"""Cold start for small models: a short supervised fine-tune on demonstrations of every role.

Not in the GASP paper (its 7B model follows the proposal format from the start); a documented
deviation for small models, on by default in the CPU demo and off in ``configs/gasp_paper.yaml``.
With no cold start the 135M embedded model writes almost no valid proposal and its student
passes almost none of the valid ones, so every teacher reward is the format penalty or 0 and the
curriculum never starts.

Demonstrations are rendered through the *same* templates and prefill as the run
(:mod:`gasp_rl.core.prompts`, ``gasp.proposal_prefill``), from programs of the project's own
warm-up families (:mod:`gasp_rl.core.families`, ``split="warmup"``); every output shown is
computed in the sandbox.  Kinds:

===============  ==============================================================================
``lemma``        goalpost + axis -> an easier program of the goalpost's argument type (``f``
                 axis) or of simpler inputs (``io`` axis), 5 distinct inputs, its own message
``lift``         an easier program with its I/O -> a harder one (higher rank, or bigger inputs)
``one_step``     goalpost + difficulty -> a program of the goalpost's argument type
``azr``          K reference programs of the AZR seed buffer -> a new program, per task type
``induction``    message + public I/O -> the program
``deduction``    program + input -> ``Answer: <output>``
``abduction``    program + output -> ``Answer: <input>``
===============  ==============================================================================

Goalposts are used only through their prompt text and signature (what the lemma prompt shows at
run time anyway), never their solutions or tests; held-out families never appear.

The warmed weights are cached under ``model.cache_dir/warmup/<key>``, the key hashing the base
model, the rendered demonstrations and the settings, so a second run starts in seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gasp_rl.config import Config
from gasp_rl.core import prompts
from gasp_rl.core.families import IO_EASIER, IO_HARDER, Family, domain_of_signature, families
from gasp_rl.core.jobs import Job
from gasp_rl.core.tasks import TASK_TYPES, Problem, ProgramTask
from gasp_rl.seams import Chat, Executor, RecordStore, SFTExample

log = logging.getLogger("gasp_rl")

#: Bump when the way demonstrations are built or trained on changes in a way the rendered text
#: does not show (2: steps of rows sorted by prompt, for shared-prefix forwards).
FORMAT_VERSION = 2
KINDS = ("lemma", "lift", "one_step", "azr", "induction", "deduction", "abduction")
#: Longest output literal a demonstration shows (long outputs teach nothing about the format).
MAX_OUTPUT_CHARS = 120


# ---------------------------------------------------------------- answers in the run's formats


def proposal_answer(task: ProgramTask) -> str:
    """A teacher proposal as the prompts ask for it: code block, one numbered ``Input k:`` line
    per input (the arguments of one call of ``f``), one ``Message:`` line."""
    return f"```python\n{task.code}\n```\n{inputs_answer(task)}"


def inputs_answer(task: ProgramTask) -> str:
    """The ``Input 1: ...`` .. ``Input n: ...`` lines and the ``Message:`` line (an AZR induction
    proposal for a given program is only these)."""
    lines = [f"Input {k}: {p.args}" for k, p in enumerate(task.io, 1)]
    return "\n".join([*lines, f"Message: {task.message}"])


def student_answer(task: ProgramTask, view: Any) -> str:
    """The right answer to a student view, in the format the student prompts' examples show."""
    if view.type == "induction":
        return f"```python\n{task.code}\n```"
    if view.type == "deduction":
        return f"Answer: {view.output}"
    return f"Answer: {view.args}"


def split_prefill(answer: str, prefill: str) -> tuple[str, str]:
    """(prefill, rest) when ``answer`` starts with ``prefill``, else ('', answer)."""
    if prefill and answer.startswith(prefill):
        return prefill, answer[len(prefill) :]
    return "", answer


# ---------------------------------------------------------------- programs with sandbox outputs


def run_programs(executor: Executor, tasks: list[ProgramTask]) -> list[ProgramTask]:
    """Fill every task's outputs by running ``f`` in the sandbox; keep tasks that ran on all
    inputs, whose outputs are short and not all equal (an all-equal task shows nothing)."""
    verdicts = executor.run([Job("call", code=t.code, cases=[p.args for p in t.io]) for t in tasks])
    kept = []
    for t, v in zip(tasks, verdicts):
        outs = list(v.outputs or [])
        if not v.passed or len(outs) != len(t.io) or any(o is None for o in outs):
            continue
        if len(set(outs)) < 2 or max(len(o) for o in outs) > MAX_OUTPUT_CHARS:
            continue
        for p, o in zip(t.io, outs):
            p.output = o
        kept.append(t)
    return kept


class ProgramPool:
    """Programs of the warm-up families, drawn by domain and rank, outputs from the sandbox."""

    def __init__(self, executor: Executor, rng: random.Random, n_inputs: int, per_family: int) -> None:
        self.rng = rng
        self.fams = families("warmup")
        drafts = [
            fam.instantiate(rng, n_inputs, task_id=f"warmup-{fam.name}-{k}")
            for fam in self.fams
            for k in range(per_family)
        ]
        self.tasks = run_programs(executor, drafts)
        self.by_family: dict[str, list[ProgramTask]] = {}
        for t in self.tasks:
            self.by_family.setdefault(t.meta["family"], []).append(t)

    def draw(self, *prefer: Callable[[Family], bool]) -> ProgramTask:
        """A program of a family that the first satisfiable predicate accepts (any family if none)."""
        for keep in prefer:
            names = [f.name for f in self.fams if keep(f) and self.by_family.get(f.name)]
            if names:
                return self.rng.choice(self.by_family[self.rng.choice(names)])
        return self.rng.choice(self.tasks)

    def with_inputs(self, task: ProgramTask, n: int) -> ProgramTask:
        """The same program with its first ``n`` I/O pairs (AZR deduction / abduction take 1)."""
        return ProgramTask(task.code, task.io[:n], task.message, task.entry_point, task.task_id, task.meta)


# ---------------------------------------------------------------- the demonstrations


def build_demonstrations(
    cfg: Config,
    executor: Executor,
    goalposts: Sequence[Problem],
    seed_programs: Sequence[ProgramTask],
) -> list[SFTExample]:
    """Every demonstration of the cold start, rendered as the run renders its prompts."""
    w, g = cfg.warmup, cfg.gasp
    rng = random.Random(f"{w.seed}/warmup")
    n_io = g.n_public_io + g.n_private_io
    pool = ProgramPool(executor, rng, n_io, w.programs_per_family)
    prefill = g.proposal_prefill
    out: list[SFTExample] = []

    def add(kind: str, chat: Chat, answer: str, task: ProgramTask) -> None:
        pre, rest = (
            split_prefill(answer, prefill) if kind in ("lemma", "lift", "one_step", "azr") else ("", answer)
        )
        out.append(SFTExample(chat=chat, answer=rest, prefill=pre, kind=kind, source=task.meta["family"]))

    for _ in range(w.demos.get("lemma", 0)):
        gp = rng.choice(list(goalposts))
        axis = rng.choice(prompts.AXES)
        dom = domain_of_signature(gp.prompt, gp.entry_point)
        if axis == "io":
            easy = IO_EASIER.get(dom, dom)
            task = pool.draw(lambda f, easy=easy: f.domain == easy)
        else:
            task = pool.draw(
                lambda f, dom=dom: f.domain == dom and f.rank <= 2, lambda f, dom=dom: f.domain == dom
            )
        add("lemma", prompts.lemma_prompt(gp.prompt, axis, n_io), proposal_answer(task), task)

    for _ in range(w.demos.get("lift", 0)):
        base = pool.draw(lambda f: f.rank <= 2)
        axis = rng.choice(prompts.AXES)
        dom, rank = base.meta["domain"], base.meta["rank"]
        if axis == "io" and dom in IO_HARDER:
            harder = pool.draw(lambda f, d=IO_HARDER[dom]: f.domain == d)
        else:  # the f axis (or no bigger input type): a higher-rank program of the same inputs
            harder = pool.draw(
                lambda f, d=dom, r=rank: f.domain == d and f.rank > r,
                lambda f, d=dom, b=base.meta["family"]: f.domain == d and f.name != b,
            )
        add("lift", prompts.lift_prompt(base, axis, n_io), proposal_answer(harder), harder)

    for _ in range(w.demos.get("one_step", 0)):
        gp = rng.choice(list(goalposts))
        level = rng.choice(("medium", "hard"))
        dom = domain_of_signature(gp.prompt, gp.entry_point)
        task = pool.draw(
            lambda f, d=dom, lv=level: f.domain == d and (f.rank >= 2) == (lv == "hard"),
            lambda f, d=dom: f.domain == d,
        )
        add("one_step", prompts.one_step_prompt(gp.prompt, level, n_io), proposal_answer(task), task)

    seeds = list(seed_programs)
    azr_pool = ProgramPool(executor, rng, cfg.azr.induction_inputs, 2)  # programs with AZR's 10 inputs
    for k in range(w.demos.get("azr", 0) if seeds else 0):
        tt = TASK_TYPES[k % len(TASK_TYPES)]
        if tt == "induction":  # AZR gen_code_f: inputs + a message for one given program
            task = azr_pool.draw()
            chat = prompts.azr_proposer_prompt(tt, [task], cfg.azr.induction_inputs)
            out.append(
                SFTExample(chat=chat, answer=inputs_answer(task), kind="azr", source=task.meta["family"])
            )
            continue
        refs = rng.sample(seeds, k=min(cfg.azr.n_references, len(seeds)))
        task = pool.with_inputs(pool.draw(), 1)
        add("azr", prompts.azr_proposer_prompt(tt, refs, 1), proposal_answer(task), task)

    for tt in TASK_TYPES:
        for _ in range(w.demos.get(tt, 0)):
            task = pool.draw()
            view = task.view(tt, rng, g.n_public_io, g.n_private_io)
            add(tt, prompts.student_prompt(view), student_answer(task, view), task)
    rng.shuffle(out)
    return out


# ---------------------------------------------------------------- cache key and the step itself


def cache_key(base_model: str, demos: Sequence[SFTExample], settings: dict[str, Any]) -> str:
    """sha256 over the base model identity, the rendered demonstrations and the settings."""
    h = hashlib.sha256()
    h.update(
        json.dumps(
            {"model": base_model, "format": FORMAT_VERSION, "settings": settings}, sort_keys=True
        ).encode()
    )
    for d in demos:
        h.update(json.dumps(asdict(d), sort_keys=True).encode())
    return h.hexdigest()[:16]


@dataclass
class WarmupResult:
    key: str
    path: Path
    cached: bool
    seconds: float
    metrics: dict[str, Any]


def warm_up(
    cfg: Config,
    learner: Any,
    finetuner: Any,
    executor: Executor,
    goalposts: Sequence[Problem],
    seed_programs: Sequence[ProgramTask],
    base_model_id: str,
) -> WarmupResult:
    """Load the cached warmed weights into ``learner``, or fine-tune and cache them."""
    t0 = time.perf_counter()
    demos = build_demonstrations(cfg, executor, goalposts, seed_programs)
    settings = cfg.warmup.model_dump(mode="json", exclude={"enabled", "cache", "log_every"})
    # weights trained in bf16 autocast are not those trained in float32 (a cache shared between
    # machines must not hand one to the other)
    settings["precision"] = getattr(getattr(learner, "train_precision", None), "name", "float32")
    key = cache_key(base_model_id, demos, settings)
    path = Path(cfg.model.cache_dir).expanduser() / "warmup" / key
    info = path / "warmup.json"
    if cfg.warmup.cache and info.is_file():
        learner.load(path)
        metrics = json.loads(info.read_text(encoding="utf-8"))
        log.info("warm-up: loaded cached weights %s (%d demonstrations)", path, len(demos))
        return WarmupResult(key, path, True, time.perf_counter() - t0, metrics)
    counts: dict[str, int] = {}
    for d in demos:
        counts[d.kind] = counts.get(d.kind, 0) + 1
    log.info("warm-up: fine-tuning on %d demonstrations %s", len(demos), counts)
    metrics = dict(finetuner.sft(demos, cfg.warmup))
    metrics.update(demonstrations=counts, key=key, base_model=base_model_id)
    learner.save(path)
    info.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    log.info(
        "warm-up: %s steps, loss %.3f -> %.3f, %.0f s; cached in %s",
        metrics.get("steps"),
        metrics.get("loss_first") or float("nan"),
        metrics.get("loss_last") or float("nan"),
        metrics.get("seconds", 0.0),
        path,
    )
    return WarmupResult(key, path, False, time.perf_counter() - t0, metrics)


def warm_up_run(
    cfg: Config, policy: Any, executor: Executor, seed_programs: Sequence[ProgramTask], store: RecordStore
) -> None:
    """The cold start of a run (``warmup.enabled``): before its first iteration only (a run with a
    committed iteration has its own weights), recorded in ``run.json`` under ``warmup``.  Backends
    without a finetuner (fake, OpenAI-compatible) skip it with a log line."""
    if not cfg.warmup.enabled or int(store.meta.get("last_iteration", -1)) >= 0:
        return
    if getattr(policy, "finetuner", None) is None or policy.learner is None:
        log.info("warm-up: skipped (model.backend=%s has no in-process finetuner)", cfg.model.backend)
        store.save_meta(warmup={"skipped": f"backend {cfg.model.backend} has no finetuner"})
        return
    from gasp_rl.eval.datasets import load_goalposts

    goalposts = load_goalposts(cfg.gasp.goalposts)
    res = warm_up(
        cfg, policy.learner, policy.finetuner, executor, goalposts, seed_programs, cfg.model.name_or_path
    )
    store.save_meta(
        warmup={
            "key": res.key,
            "path": str(res.path),
            "cached": res.cached,
            "seconds": round(res.seconds, 1),
            **res.metrics,
        }
    )
