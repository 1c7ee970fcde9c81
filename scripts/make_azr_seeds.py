"""Write the AZR seed buffer: 256 simple, deterministic, safe programs with 5 inputs each.

Absolute Zero starts its buffers from trivial programs (method.md §1).  gasp-rl writes its own: each
seed is one of a few dozen *families* (``x * a + b``, ``s.count(c)``, ``[x for x in xs if x % m
== 0]`` ...) instantiated with constants drawn from a seeded RNG, so the file is reproducible
byte for byte.  Inputs are literal texts; reference outputs are computed by running ``f`` in the
sandbox (``gasp_rl.sandbox.LocalExecutor``); a program whose run fails, that is not
deterministic across two fresh runs, or whose 5 outputs are all equal, is dropped and replaced by
the next candidate.

    python scripts/make_azr_seeds.py                # writes src/gasp_rl/data/azr_seed_programs.jsonl
    python scripts/make_azr_seeds.py --no-execute   # outputs left empty (the AZR loop fills them)
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gasp_rl.core.safety import check_code
from gasp_rl.core.tasks import IOPair, ProgramTask, write_jsonl

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "src" / "gasp_rl" / "data" / "azr_seed_programs.jsonl"
N_PROGRAMS = 256
N_INPUTS = 5
SEED = 20250503  # Absolute Zero's arXiv month; any fixed value works

WORDS = ["apple", "banana", "kiwi", "", "level", "abcabc", "hello world", "Mississippi", "zz", "Python", "a"]
LETTERS = "aeiolnsz"


@dataclass(frozen=True)
class Family:
    """A program template: ``body`` is formatted with constants from ``params(rng)``; ``arg``
    draws one input (the literal text of the arguments) from an RNG."""

    name: str
    signature: str
    body: str
    params: Callable[[random.Random], dict[str, object]]
    arg: Callable[[random.Random], str]


def _int(rng: random.Random) -> str:
    return repr(rng.randint(-20, 40))


def _small(rng: random.Random) -> str:
    return repr(rng.randint(0, 12))


def _word(rng: random.Random) -> str:
    return repr(rng.choice(WORDS))


def _ints(rng: random.Random) -> list[int]:
    return [rng.randint(-9, 20) for _ in range(rng.randint(0, 6))]


def _list(rng: random.Random) -> str:
    return repr(_ints(rng))


def _two_ints(rng: random.Random) -> str:
    return f"{_int(rng)}, {_int(rng)}"


def _list_int(rng: random.Random) -> str:
    return f"{_list(rng)}, {_small(rng)}"


def _word_int(rng: random.Random) -> str:
    return f"{_word(rng)}, {_small(rng)}"


def _k(lo: int, hi: int) -> Callable[[random.Random], int]:
    return lambda rng: rng.randint(lo, hi)


def _p(**spec: Callable[[random.Random], object]) -> Callable[[random.Random], dict[str, object]]:
    return lambda rng: {k: v(rng) for k, v in spec.items()}


def _letter(rng: random.Random) -> str:
    return rng.choice(LETTERS)


FAMILIES: list[Family] = [
    # integers
    Family("affine", "x", "return x * {a} + {b}", _p(a=_k(2, 6), b=_k(-10, 10)), _int),
    Family("mod", "x", "return x % {m}", _p(m=_k(2, 9)), _int),
    Family("distance", "x", "return abs(x - {a})", _p(a=_k(-5, 15)), _int),
    Family("floor_div", "x", "return x // {d} + {b}", _p(d=_k(2, 5), b=_k(1, 4)), _int),
    Family(
        "piecewise",
        "x",
        "if x > {t}:\n        return x - {t}\n    return {t} - x",
        _p(t=_k(-3, 10)),
        _int,
    ),
    Family("clamp", "x", "return min(max(x, {lo}), {hi})", _p(lo=_k(-5, 3), hi=_k(5, 20)), _int),
    Family("parity", "x", "return x * {a} if x % 2 == 0 else x + {b}", _p(a=_k(2, 4), b=_k(1, 9)), _int),
    Family("digit_sum", "x", "return sum(int(d) for d in str(abs(x))) + {b}", _p(b=_k(0, 5)), _int),
    Family(
        "triangle",
        "n",
        "total = 0\n    for i in range(n % {m}):\n        total += i\n    return total",
        _p(m=_k(5, 12)),
        _small,
    ),
    Family(
        "collatz_steps",
        "n",
        "steps = 0\n    n = abs(n) + 1\n    while n != 1 and steps < {cap}:\n"
        "        n = n // 2 if n % 2 == 0 else 3 * n + 1\n        steps += 1\n    return steps",
        _p(cap=_k(20, 60)),
        _small,
    ),
    # two integers
    Family("combine", "a, b", "return a * {k} + b", _p(k=_k(2, 5)), _two_ints),
    Family("spread", "a, b", "return max(a, b) - min(a, b) + {k}", _p(k=_k(0, 3)), _two_ints),
    Family("sum_mod", "a, b", "return (a + b) % {m}", _p(m=_k(3, 11)), _two_ints),
    Family("compare", "a, b", "return a > b + {k}", _p(k=_k(-3, 3)), _two_ints),
    Family("pair", "a, b", "return (min(a, b), max(a, b) * {k})", _p(k=_k(1, 3)), _two_ints),
    # strings
    Family("reverse_tag", "s", "return s[::-1] + '{c}'", _p(c=_letter), _word),
    Family("upper_prefix", "s", "return s.upper()[:{n}]", _p(n=_k(1, 5)), _word),
    Family("count_char", "s", "return s.count('{c}')", _p(c=_letter), _word),
    Family("length_scale", "s", "return len(s) * {k}", _p(k=_k(2, 5)), _word),
    Family("replace", "s", "return s.replace('{c}', '{d}')", _p(c=_letter, d=_letter), _word),
    Family(
        "sorted_join",
        "s",
        "return '{sep}'.join(sorted(s))",
        _p(sep=lambda r: r.choice(["", "-", ","])),
        _word,
    ),
    Family(
        "vowel_score",
        "s",
        "score = 0\n    for ch in s.lower():\n        score += {v} if ch in 'aeiou' else 1\n    return score",
        _p(v=_k(2, 6)),
        _word,
    ),
    Family(
        "is_palindrome",
        "s",
        "t = s.replace(' ', '').lower()\n    return t == t[::-1] and len(t) > {n}",
        _p(n=_k(0, 2)),
        _word,
    ),
    Family("first_last", "s", "return s[:1] + s[-{n}:] if s else '{c}'", _p(n=_k(1, 3), c=_letter), _word),
    Family("repeat", "s, k", "return s[:{n}] * (k % {m})", _p(n=_k(1, 4), m=_k(2, 4)), _word_int),
    # lists
    Family("shift", "xs", "return [x + {a} for x in xs]", _p(a=_k(-5, 5)), _list),
    Family("multiples", "xs", "return [x for x in xs if x % {m} == 0]", _p(m=_k(2, 5)), _list),
    Family("scaled_sum", "xs", "return sum(xs) * {k}", _p(k=_k(2, 4)), _list),
    Family("smallest", "xs", "return sorted(xs)[:{n}]", _p(n=_k(1, 3)), _list),
    Family("max_or", "xs", "return max(xs) if xs else {d}", _p(d=_k(-1, 0)), _list),
    Family("tail_reversed", "xs", "return xs[::-1][:{n}]", _p(n=_k(1, 4)), _list),
    Family("count_above", "xs", "return len([x for x in xs if x > {t}])", _p(t=_k(-2, 10)), _list),
    Family(
        "running_sum",
        "xs",
        "out = []\n    total = {s}\n    for x in xs:\n        total += x\n        out.append(total)\n    return out",
        _p(s=_k(0, 3)),
        _list,
    ),
    Family(
        "pair_sums",
        "xs",
        "return [xs[i] + xs[i + 1] * {k} for i in range(len(xs) - 1)]",
        _p(k=_k(1, 3)),
        _list,
    ),
    Family(
        "dedupe",
        "xs",
        "seen = []\n    for x in xs:\n        if x not in seen:\n            seen.append(x)\n    return seen[:{n}]",
        _p(n=_k(2, 6)),
        _list,
    ),
    Family(
        "evens_odds",
        "xs",
        "return (sum(x for x in xs if x % 2 == 0), sum(x for x in xs if x % 2) * {k})",
        _p(k=_k(1, 3)),
        _list,
    ),
    # list and integer
    Family("scale_by", "xs, k", "return [x * k + {b} for x in xs]", _p(b=_k(-2, 2)), _list_int),
    Family("pick", "xs, k", "return xs[k % len(xs)] if xs else {d}", _p(d=_k(-1, 0)), _list_int),
    Family(
        "chunk_sums",
        "xs, k",
        "k = k % {m} + 1\n    return [sum(xs[i:i + k]) for i in range(0, len(xs), k)]",
        _p(m=_k(2, 4)),
        _list_int,
    ),
    Family(
        "count_equal", "xs, k", "return sum(1 for x in xs if x % {m} == k % {m})", _p(m=_k(2, 5)), _list_int
    ),
]


def seed_candidates(seed: int = SEED):
    """An endless, deterministic stream of distinct candidate seed tasks (outputs empty)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    k = 0
    while True:
        fam = FAMILIES[k % len(FAMILIES)]
        k += 1
        code = f"def f({fam.signature}):\n    " + fam.body.format(**fam.params(rng))
        if code in seen:
            continue
        seen.add(code)
        inputs: list[str] = []
        for _ in range(50):  # distinct inputs when the domain allows
            a = fam.arg(rng)
            if a not in inputs:
                inputs.append(a)
            if len(inputs) == N_INPUTS:
                break
        while len(inputs) < N_INPUTS:
            inputs.append(fam.arg(rng))
        yield ProgramTask(code=code, io=[IOPair(a, "") for a in inputs], meta={"family": fam.name})


def fill_outputs(tasks: list[ProgramTask]) -> list[ProgramTask]:
    """Compute reference outputs in the sandbox; keep tasks that ran, are deterministic and do not
    give the same output for all their inputs (a constant is no induction task)."""
    from gasp_rl.config import SandboxConfig
    from gasp_rl.core.jobs import Job
    from gasp_rl.sandbox import LocalExecutor

    jobs = [Job("call", code=t.code, cases=[p.args for p in t.io], id=str(i)) for i, t in enumerate(tasks)]
    with LocalExecutor(SandboxConfig()) as ex:
        results = ex.check_determinism(jobs)
    kept = []
    for t, (same, verdict) in zip(tasks, results):
        outs = verdict.outputs
        if verdict.passed and same and all(o is not None for o in outs) and len(set(outs)) > 1:
            for p, out in zip(t.io, verdict.outputs):
                p.output = out  # type: ignore[assignment]
            kept.append(t)
    return kept


def make_seeds(n: int = N_PROGRAMS, execute: bool = True, seed: int = SEED) -> list[ProgramTask]:
    """``n`` seed tasks, safe by :func:`check_code`, with outputs when ``execute``."""
    stream = seed_candidates(seed)
    chosen: list[ProgramTask] = []
    while len(chosen) < n:
        batch = [t for t in (next(stream) for _ in range(n - len(chosen))) if check_code(t.code) is None]
        chosen += fill_outputs(batch) if execute else batch
    for i, t in enumerate(chosen[:n]):
        t.task_id = f"seed-{i:03d}"
    return chosen[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--n", type=int, default=N_PROGRAMS)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--no-execute", action="store_true", help="leave outputs empty (no sandbox)")
    args = ap.parse_args()
    tasks = make_seeds(args.n, execute=not args.no_execute, seed=args.seed)
    write_jsonl(args.out, tasks)
    families = len({t.meta["family"] for t in tasks})
    print(f"wrote {len(tasks)} seed programs from {families} families to {args.out}")


if __name__ == "__main__":
    main()
