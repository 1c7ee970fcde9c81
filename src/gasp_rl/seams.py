"""The seams the algorithms are written against.  Backends implement them; algorithms never
import a concrete backend (:mod:`gasp_rl.wiring` builds them from the config).

- :class:`Generator`  chat prompts -> ``n`` sampled completions (HF, OpenAI-compatible, vLLM, fake)
- :class:`Learner`    a batch of (prompt, completion, advantage) -> one clipped policy-gradient update
- :class:`Executor`   a batch of sandbox :class:`~gasp_rl.core.jobs.Job` -> :class:`~gasp_rl.core.jobs.Verdict`
- :class:`Embedder`   texts -> L2-normalised vectors (novelty filter, buffer dissimilarity)
- :class:`Finetuner`  supervised demonstrations -> the policy fine-tuned in place (the cold start)
- :class:`SeamSource` a config -> policy and sandbox (the wiring), for commands that build per model
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gasp_rl.core.jobs import Job, Verdict

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}
Chat = list[Message]


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: list[str] = field(default_factory=list)
    # A regular expression: the completion ends at the end of its first match, the match kept (the
    # teacher stops after its `Message:` line).  Only a saving: backends that cannot (openai, vllm)
    # ignore it, so callers must parse the same result from the longer text.
    stop_pattern: str = ""
    seed: int | None = None
    logprobs: bool = False
    purpose: str = (
        ""  # who is asking ("lemma", "student_deduction", "rlvr", "eval"...): for metrics and fakes
    )


@dataclass
class Completion:
    """One sampled completion.  ``token_ids`` / ``logprobs`` are filled when the backend can
    (always for in-process backends; ``logprobs`` only when asked)."""

    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] | None = None
    prompt_token_ids: list[int] = field(default_factory=list)
    finish_reason: str = "stop"  # "stop" | "length"


@dataclass
class PolicySample:
    """One (prompt, completion, advantage) for the learner.  ``advantage`` is per sequence (float,
    broadcast to every token, as TRR++/GRPO do) or per token (list, same length as the completion)."""

    prompt_token_ids: list[int]
    completion_token_ids: list[int]
    advantage: float | list[float]
    old_logprobs: list[float] | None = None
    group: str = ""


@runtime_checkable
class Generator(Protocol):
    def generate(self, prompts: list[Chat], params: SamplingParams) -> list[list[Completion]]:
        """For each prompt, ``params.n`` completions."""
        ...


def generate_prefilled(
    generator: Generator, prompts: list[Chat], params: SamplingParams, prefills: list[str]
) -> list[list[Completion]]:
    """Like ``generator.generate``, with each prompt's answer started for the model: a non-empty
    ``prefills[i]`` is sent as a final assistant message that the backend continues, and is put
    back in front of each returned ``text`` (the token ids stay what the model wrote)."""
    chats = [
        [*chat, {"role": "assistant", "content": pre}] if pre else chat
        for chat, pre in zip(prompts, prefills)
    ]
    outs = generator.generate(chats, params)
    for group, pre in zip(outs, prefills):
        for c in group:
            c.text = pre + c.text
    return outs


@runtime_checkable
class Learner(Protocol):
    def update(self, samples: list[PolicySample]) -> dict[str, float]:
        """One clipped policy-gradient step over ``samples`` (micro-batched); returns metrics."""
        ...

    def save(self, path: str | Path) -> None: ...

    def load(self, path: str | Path) -> None: ...


@dataclass
class SFTExample:
    """One supervised demonstration: the chat the run would send, the ``prefill`` the run writes
    for the model (``''`` = none) and the ``answer`` after it.  The finetuner tokenizes the prompt
    exactly as generation does (chat + prefill as a continued assistant message) and trains on the
    answer's tokens plus the end-of-turn token only."""

    chat: Chat
    answer: str
    prefill: str = ""
    kind: str = ""
    source: str = ""


@runtime_checkable
class Finetuner(Protocol):
    def sft(self, examples: list[SFTExample], settings: Any) -> dict[str, Any]:
        """Supervised fine-tuning of the policy in place; returns metrics (steps, losses, seconds)."""
        ...


@runtime_checkable
class Executor(Protocol):
    def run(self, jobs: list[Job]) -> list[Verdict]:
        """Verdicts in the order of ``jobs``.  Never raises for a bad job: it gets a verdict."""
        ...

    def check_determinism(self, jobs: list[Job]) -> list[tuple[bool, Verdict]]:
        """Run every job twice in fresh interpreter states with two different, fixed hash seeds
        (so hash-order-dependent output is caught); (same outputs?, first verdict), the first
        verdict made with the hash seed that :meth:`run` (grading) uses."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Embedder(Protocol):
    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, rows L2-normalised."""
        ...


class RecordStore(Protocol):
    """Where an algorithm writes what it learns: the run directory (:class:`gasp_rl.runs.RunStore`).

    ``append`` adds one record to a JSONL stream (``proposals``, ``students``, ``goalposts``, ...);
    ``path`` is the run directory; ``meta`` / ``save_meta`` are its ``run.json``.
    """

    path: Path
    meta: dict[str, Any]

    def append(self, stream: str, record: dict[str, Any]) -> None: ...

    def save_meta(self, **updates: Any) -> None: ...


@runtime_checkable
class SeamSource(Protocol):
    """Builds seams from a config (:class:`gasp_rl.wiring.Wiring`): what a command receives when
    it must build a policy per model (``gasp eval`` over several checkpoints) or its own sandbox."""

    def policy(self, cfg: Any, name_or_path: str | None = None) -> Any:
        """The policy bundle of ``cfg`` (of model ``name_or_path`` when given)."""
        ...

    def executor(self, cfg: Any) -> Executor: ...
