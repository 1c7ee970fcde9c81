"""A scripted, deterministic stand-in for a model (``model.backend=fake``).

It lets the self-play loops, the run store, resume and the report be tested end to end in
seconds, with no weights.  The "teacher" writes programs from a few templates (sometimes
malformed, sometimes duplicated, to exercise every rejection path); the "student" answers
correctly with a per-task probability, knowing only the fake templates it can recognise.  It
never executes anything: answers are computed from the template parameters it wrote itself.

Everything is a pure function of (seed, prompt text, sample index), so the same seed and config
reproduce the same proposals, and a resumed run reproduces an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gasp_rl.backends.embedder import HashingEmbedder
from gasp_rl.seams import Chat, Completion, PolicySample, SamplingParams

# name -> (code template, input generator, python-free evaluator)
_TEMPLATES = {
    "add": ("def f(x):\n    return x + {k}", lambda r: str(r.randint(-9, 9)), lambda k, a: a + k),
    "mul": ("def f(x):\n    return x * {k}", lambda r: str(r.randint(-9, 9)), lambda k, a: a * k),
    "sumk": (
        "def f(xs):\n    return sum(xs) + {k}",
        lambda r: str([r.randint(0, 5) for _ in range(r.randint(0, 3))]),
        lambda k, a: sum(a) + k,
    ),
    "cnt": (
        "def f(xs):\n    return len([v for v in xs if v > {k}])",
        lambda r: str([r.randint(0, 9) for _ in range(r.randint(0, 4))]),
        lambda k, a: len([v for v in a if v > k]),
    ),
}
_CODE_RE = re.compile(r"def f\((\w+)\):\n    return (.+)")


def _h(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(json.dumps(parts, default=str).encode()).digest()[:8], "big")


def _literal(text: str):
    """Parse the tiny literals the fake itself wrote (ints and flat int lists) without eval."""
    text = text.strip()
    if text.startswith("["):
        inner = text[1:-1].strip()
        return [int(t) for t in inner.split(",")] if inner else []
    return int(text)


def _recognise(code: str) -> tuple[str, int] | None:
    for name, (tpl, _, _) in _TEMPLATES.items():
        pattern = re.escape(tpl).replace(r"\{k\}", r"(-?\d+)")
        m = re.search(pattern, code)
        if m:
            return name, int(m.group(1))
    return None


def _last_user(prompt: Chat) -> str:
    return next((m["content"] for m in reversed(prompt) if m["role"] == "user"), "")


def _input_lines(values: list[str]) -> str:
    """``Input 1: ...`` to ``Input n: ...``, the lines the proposal prompts ask for."""
    return "\n".join(f"Input {i + 1}: {v}" for i, v in enumerate(values))


@dataclass
class FakeGenerator:
    """Scripted completions keyed on ``params.purpose``."""

    seed: int = 0
    malformed_rate: float = 0.15
    calls: list[tuple[str, int]] = field(default_factory=list)

    def generate(self, prompts: list[Chat], params: SamplingParams) -> list[list[Completion]]:
        out = []
        for prompt in prompts:
            text = _last_user(prompt)
            prefill = prompt[-1]["content"] if prompt and prompt[-1]["role"] == "assistant" else ""
            self.calls.append((params.purpose, params.n))
            group = []
            for i in range(params.n):
                rng = random.Random(_h(self.seed, params.seed, text, i, params.purpose))
                body = self._respond(params.purpose, text, rng)
                if prefill:  # continue the prefill: what the script wrote after it, or junk
                    body = body[len(prefill) :] if body.startswith(prefill) else f"x):\n{body}"
                ids = [ord(c) % 50000 for c in body[: params.max_new_tokens]]
                group.append(
                    Completion(
                        text=body,
                        token_ids=ids,
                        logprobs=[-1.0] * len(ids) if params.logprobs else None,
                        prompt_token_ids=[1, 2, 3],
                    )
                )
            out.append(group)
        return out

    # -------------------------------------------------------------- teacher
    def _propose(self, rng: random.Random, n_inputs: int) -> str:
        if rng.random() < self.malformed_rate:
            return rng.choice(
                ["I think f should add numbers.", "```python\ndef f(x)\n    return x\n```\nInput: 1"]
            )
        name = rng.choice(sorted(_TEMPLATES))
        tpl, gen, _ = _TEMPLATES[name]
        k = rng.randint(0, 12)
        inputs = _input_lines([gen(rng) for _ in range(n_inputs)])
        return f"```python\n{tpl.format(k=k)}\n```\n{inputs}\nMessage: fake task {name} {k}"

    # -------------------------------------------------------------- student
    def _skill(self, key: str) -> float:
        """Per-task probability of a correct answer (spread over [0, 1])."""
        return (_h(self.seed, "skill", key) % 1000) / 1000.0

    def _inputs_for(self, text: str, rng: random.Random) -> str:
        """AZR induction proposer: numbered ``Input k:`` lines (the format the prompt asks for) for
        the program in the prompt, and a message the fake student recognises when the program is
        one of the fake's templates."""
        m = re.search(r"Reply with (\d+|one) lines? `Input 1", text)
        n = (1 if m.group(1) == "one" else int(m.group(1))) if m else 10
        if rng.random() < self.malformed_rate:
            return "Input 1: 1\nInput 2: 2"  # too few inputs
        found = _recognise(text.rsplit("Program:", 1)[-1])
        gen = _TEMPLATES[found[0]][1] if found else (lambda r: str(r.randint(-50, 50)))
        seen: list[str] = []
        for _ in range(20 * n):
            v = gen(rng)
            if v not in seen:
                seen.append(v)
            if len(seen) == n:
                break
        message = f"fake task {found[0]} {found[1]}" if found else "some numbers"
        return f"{_input_lines(seen)}\nMessage: {message}"

    def _respond(self, purpose: str, text: str, rng: random.Random) -> str:
        if purpose == "azr_propose_induction":
            return self._inputs_for(text, rng)
        if purpose in ("lemma", "lift", "one_step") or purpose.startswith("azr_propose"):
            n_inputs = 1 if purpose in ("azr_propose_deduction", "azr_propose_abduction") else 5
            return self._propose(rng, n_inputs)
        if purpose == "student_induction":
            m = re.search(r"fake task (\w+) (-?\d+)", text)
            if m and rng.random() < self._skill(m.group(0)):
                return f"```python\n{_TEMPLATES[m.group(1)][0].format(k=int(m.group(2)))}\n```"
            return "```python\ndef f(x):\n    return x\n```"
        if purpose in ("student_deduction", "student_abduction"):
            found = _recognise(text)
            if not found:
                return "Answer: 0"
            name, k = found
            correct = rng.random() < self._skill(f"{name}{k}")
            if purpose == "student_deduction":
                m = re.search(r"f\((.*)\) return", text)
                try:
                    value = _TEMPLATES[name][2](k, _literal(m.group(1))) if m else 0
                except (ValueError, TypeError):
                    value = 0
                return f"Answer: {value if correct else 'None'}"
            # abduction: invert add / mul where easy, else guess
            m = re.search(r"returns? (-?\d+)", text)
            target = int(m.group(1)) if m else 0
            if correct and name == "add":
                return f"Answer: {target - k}"
            if correct and name == "sumk":
                return f"Answer: [{target - k}]"
            return f"Answer: {rng.randint(-3, 3)}"
        if purpose == "goalpost_refresh":  # solves a goalpost whose statement scripts the answer
            m, d = re.search(r"fake answer: (.+)", text), re.search(r"def (\w+)\(([^)]*)\)", text)
            if m and d:
                return f"```python\ndef {d.group(1)}({d.group(2)}):\n    return {m.group(1).strip()}\n```"
        # anything else (rlvr, eval, solver-verifier): a plain code block
        return "```python\ndef solution(*args):\n    return None\n```"


@dataclass
class FakeLearner:
    """Records every update; its "weights" are the number of updates (saved as JSON)."""

    updates: list[dict] = field(default_factory=list)

    def update(self, samples: list[PolicySample]) -> dict[str, float]:
        adv = [
            float(np.mean(s.advantage)) if isinstance(s.advantage, list) else float(s.advantage)
            for s in samples
        ]
        rec = {
            "n": len(samples),
            "adv_sum": float(sum(adv)),
            "tokens": sum(len(s.completion_token_ids) for s in samples),
        }
        self.updates.append(rec)
        return {
            "loss": -float(np.mean(adv)) if adv else 0.0,
            "n_samples": float(len(samples)),
            "n_updates": float(len(self.updates)),
        }

    def save(self, path: str | Path) -> None:
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        (p / "fake_learner.json").write_text(json.dumps({"updates": self.updates}))

    def load(self, path: str | Path) -> None:
        self.updates = json.loads((Path(path) / "fake_learner.json").read_text())["updates"]


@dataclass
class FakePolicy:
    generator: FakeGenerator
    learner: FakeLearner
    embedder: HashingEmbedder
    tokenizer: None = None

    @staticmethod
    def count_tokens(text: str) -> int:
        return len(text)

    def close(self) -> None:
        pass


def build_fake_policy(seed: int = 0) -> FakePolicy:
    return FakePolicy(FakeGenerator(seed=seed), FakeLearner(), HashingEmbedder())
