"""Program families: small, deterministic, safe Python functions written by this project.

A *family* is a program template (``x * {a} + {b}``, ``s.count({c!r})``, ...) with a message
template, a sampler for its constants and a sampler for its inputs.  Instantiating a family with a
seeded RNG gives one :class:`~gasp_rl.core.tasks.ProgramTask` (inputs as literal text, outputs left
empty: they are computed by running ``f`` in the sandbox, never here).

Families serve two purposes that must never mix (``docs/method.md`` section *Cold start*):

- ``split="warmup"``: the demonstrations of the cold-start fine-tune (``gasp warmup``);
- ``split="heldout"``: the ``families-heldout`` reasoning benchmark of ``gasp eval``.  No program,
  message or input of a held-out family is ever shown to the model during warm-up or training.

Every family has a *domain*, the type of its arguments (``int``, ``int2``, ``str``, ``str_int``,
``list``, ``list_int``, ``strs``, ``nested``, ``dict``), and a *rank* (1 = one operation, 2 = a
rule plus an operation, 3 = a loop with state or several rules).  Warm-up pairs a goalpost with
families of its argument type, and a lift demonstration goes up in rank (``f`` axis) or to a
bigger domain (``io`` axis, :data:`IO_HARDER`).
"""

from __future__ import annotations

import ast
import random
from collections.abc import Callable
from dataclasses import dataclass

from gasp_rl.core.tasks import IOPair, ProgramTask

Sampler = Callable[[random.Random], dict[str, object]]
ArgSampler = Callable[[random.Random], str]

WORDS = (
    "apple", "banana", "kiwi", "level", "hello", "python", "zebra", "noon", "abc", "mississippi",
    "tree", "moon", "a", "racecar", "data", "cat", "book", "xyz", "queue", "letter",
)  # fmt: skip
LETTERS = "aeionrst"

#: Domain -> the domain of the same idea with more structured inputs (the io axis of a lift).
IO_HARDER = {"int": "int2", "str": "strs", "list": "nested", "list_int": "nested", "str_int": "strs"}
#: Domain -> a domain with simpler inputs (the io axis of a lemma).
IO_EASIER = {
    "int2": "int", "strs": "str", "nested": "list", "list_int": "list", "dict": "list",
    "str_int": "str", "list": "int", "str": "int",
}  # fmt: skip


# ---------------------------------------------------------------- input samplers (literal text)


def _int(rng: random.Random) -> int:
    return rng.randint(-20, 40)


def _ints(rng: random.Random, lo: int = 0, hi: int = 6) -> list[int]:
    return [rng.randint(-9, 20) for _ in range(rng.randint(lo, hi))]


def a_int(rng: random.Random) -> str:
    return repr(_int(rng))


def a_small(rng: random.Random) -> str:
    return repr(rng.randint(0, 30))


def a_int2(rng: random.Random) -> str:
    return f"{_int(rng)}, {_int(rng)}"


def a_str(rng: random.Random) -> str:
    return repr(rng.choice(WORDS))


def a_str_int(rng: random.Random) -> str:
    return f"{rng.choice(WORDS)!r}, {rng.randint(0, 4)}"


def a_list(rng: random.Random) -> str:
    return repr(_ints(rng))


def a_list_nonempty(rng: random.Random) -> str:
    return repr(_ints(rng, 1, 6))


def a_list_int(rng: random.Random) -> str:
    return f"{_ints(rng)!r}, {rng.randint(1, 5)}"


def a_strs(rng: random.Random) -> str:
    return repr(rng.sample(WORDS, rng.randint(0, 4)))


def a_nested(rng: random.Random) -> str:
    return repr([_ints(rng, 0, 3) for _ in range(rng.randint(0, 3))])


def a_dict(rng: random.Random) -> str:
    keys = rng.sample(WORDS, rng.randint(0, 4))
    return repr({k: rng.randint(-5, 20) for k in keys})


# ---------------------------------------------------------------- families


@dataclass(frozen=True)
class Family:
    """A program template; ``code`` and ``message`` are ``str.format``-ed with ``params(rng)``."""

    name: str
    domain: str
    rank: int
    code: str
    message: str
    params: Sampler
    arg: ArgSampler
    split: str = "warmup"

    def instantiate(self, rng: random.Random, n_inputs: int = 5, task_id: str = "") -> ProgramTask:
        """One program of the family with ``n_inputs`` distinct literal inputs (outputs empty)."""
        values = self.params(rng)
        inputs: list[str] = []
        for _ in range(50 * n_inputs):
            if len(inputs) == n_inputs:
                break
            a = self.arg(rng)
            if a not in inputs:
                inputs.append(a)
        return ProgramTask(
            code=self.code.format(**values),
            io=[IOPair(a, "") for a in inputs],
            message=self.message.format(**values),
            task_id=task_id or f"{self.name}",
            meta={"family": self.name, "domain": self.domain, "rank": self.rank, "split": self.split},
        )


def _k(lo: int, hi: int) -> Callable[[random.Random], int]:
    return lambda rng: rng.randint(lo, hi)


def _p(**draws: Callable[[random.Random], object]) -> Sampler:
    return lambda rng: {name: draw(rng) for name, draw in draws.items()}


def _letter(rng: random.Random) -> str:
    return rng.choice(LETTERS)


def _word(rng: random.Random) -> str:
    return rng.choice(WORDS)


_NONE: Sampler = lambda rng: {}  # noqa: E731

FAMILIES: tuple[Family, ...] = (
    # ---- one integer
    Family("affine", "int", 1, "def f(x):\n    return x * {a} + {b}", "Multiply by {a}, then add {b}.",
           _p(a=_k(2, 5), b=_k(1, 9)), a_int),
    Family("mod", "int", 1, "def f(x):\n    return x % {m}", "The remainder after dividing by {m}.",
           _p(m=_k(3, 9)), a_int),
    Family("distance", "int", 1, "def f(x):\n    return abs(x - {c})", "How far the number is from {c}.",
           _p(c=_k(1, 15)), a_int),
    Family("floor_div", "int", 1, "def f(x):\n    return x // {d}", "Divide by {d}, rounding down.",
           _p(d=_k(2, 6)), a_int),
    Family("clamp", "int", 2, "def f(x):\n    return min(max(x, {lo}), {hi})",
           "Keep the number between {lo} and {hi}.", _p(lo=_k(-5, 3), hi=_k(10, 25)), a_int),
    Family("parity_branch", "int", 2,
           "def f(x):\n    if x % 2 == 0:\n        return x // 2\n    return x * {a} + 1",
           "Halve even numbers; multiply odd ones by {a} and add 1.", _p(a=_k(2, 4)), a_int),
    Family("threshold", "int", 2,
           "def f(x):\n    if x > {t}:\n        return x - {t}\n    return 0",
           "How much the number is above {t} (0 if it is not).", _p(t=_k(0, 15)), a_int, split="heldout"),
    Family("square_minus", "int", 2, "def f(x):\n    return x * x - {c}", "The square of the number minus {c}.",
           _p(c=_k(1, 9)), a_int, split="heldout"),
    Family("digit_sum", "int", 3,
           "def f(n):\n    total = 0\n    for d in str(abs(n)):\n        total += int(d)\n    return total",
           "Add up the digits of the number.", _NONE, a_int),
    Family("count_up", "int", 3,
           "def f(n):\n    return sum(i for i in range(n) if i % {m} == 0)",
           "Add the numbers from 0 up to n - 1 that are multiples of {m}.", _p(m=_k(2, 5)), a_small),
    Family("collatz_steps", "int", 3,
           "def f(n):\n    steps = 0\n    while n > 1:\n        n = n // 2 if n % 2 == 0 else 3 * n + 1\n"
           "        steps += 1\n    return steps",
           "Collatz steps: halve even numbers, else 3n + 1, until 1; count the steps.", _NONE, a_small,),
    # ---- two integers
    Family("weighted_sum", "int2", 1, "def f(a, b):\n    return a * {k} + b",
           "The first number times {k}, plus the second.", _p(k=_k(2, 5)), a_int2),
    Family("max_of_two", "int2", 1, "def f(a, b):\n    return max(a, b) - min(a, b)",
           "The difference between the larger and the smaller number.", _NONE, a_int2),
    Family("pick_larger", "int2", 2,
           "def f(a, b):\n    if a > b:\n        return a * {k}\n    return b",
           "If the first number is larger, multiply it by {k}; else return the second.",
           _p(k=_k(2, 4)), a_int2, split="heldout"),
    Family("range_count", "int2", 3,
           "def f(a, b):\n    return len([i for i in range(min(a, b), max(a, b)) if i % {m} == 0])",
           "How many multiples of {m} lie from the smaller number up to the larger one.",
           _p(m=_k(2, 5)), a_int2),
    # ---- one string
    Family("count_char", "str", 1, "def f(s):\n    return s.count({c!r})",
           "How many times the letter '{c}' appears.", _p(c=_letter), a_str),
    Family("length_plus", "str", 1, "def f(s):\n    return len(s) * {k}",
           "The length of the word times {k}.", _p(k=_k(2, 4)), a_str),
    Family("reverse", "str", 1, "def f(s):\n    return s[::-1]", "The word written backwards.", _NONE, a_str),
    Family("first_last", "str", 1, "def f(s):\n    return s[:1] + s[-1:]",
           "The first letter followed by the last letter.", _NONE, a_str),
    Family("mirror", "str", 1, "def f(s):\n    return s + s[::-1]", "The word followed by its reverse.",
           _NONE, a_str, split="heldout"),
    Family("middle_char", "str", 2, "def f(s):\n    return s[len(s) // 2] if s else ''",
           "The middle letter of the word ('' for an empty word).", _NONE, a_str, split="heldout"),
    Family("vowel_count", "str", 2, "def f(s):\n    return sum(1 for ch in s if ch in 'aeiou')",
           "How many vowels the word has.", _NONE, a_str),
    Family("upper_if", "str", 2,
           "def f(s):\n    if len(s) > {n}:\n        return s.upper()\n    return s",
           "Words longer than {n} letters in capitals; shorter ones unchanged.", _p(n=_k(2, 5)), a_str),
    Family("replace_char", "str", 2, "def f(s):\n    return s.replace({a!r}, {b!r})",
           "Replace every '{a}' with '{b}'.", _p(a=_letter, b=lambda r: r.choice("xyz*-")), a_str,),
    Family("is_palindrome", "str", 2, "def f(s):\n    return s == s[::-1]",
           "Whether the word reads the same backwards.", _NONE, a_str),
    Family("longest_run_char", "str", 3,
           "def f(s):\n    best = run = 0\n    prev = ''\n    for ch in s:\n        run = run + 1 if ch == prev else 1\n"
           "        best = max(best, run)\n        prev = ch\n    return best",
           "Length of the longest block of the same letter.", _NONE, a_str),
    Family("dedupe_letters", "str", 3,
           "def f(s):\n    out = ''\n    for ch in s:\n        if ch not in out:\n            out += ch\n    return out",
           "Keep the first time each letter appears, drop repeats.", _NONE, a_str),
    # ---- a string and an integer
    Family("repeat_word", "str_int", 1, "def f(s, n):\n    return s * n", "The word repeated n times.",
           _NONE, a_str_int),
    Family("take_prefix", "str_int", 1, "def f(s, n):\n    return s[:n]", "The first n letters of the word.",
           _NONE, a_str_int, split="heldout"),
    Family("shift_letters", "str_int", 3,
           "def f(s, n):\n    return ''.join(chr((ord(c) - 97 + n) % 26 + 97) for c in s)",
           "Move every letter n places forward in the alphabet, wrapping after z.", _NONE, a_str_int),
    # ---- a list of integers
    Family("sum_list", "list", 1, "def f(nums):\n    return sum(nums) + {b}", "Add up the numbers, then add {b}.",
           _p(b=_k(0, 5)), a_list),
    Family("count_big", "list", 1, "def f(nums):\n    return len([n for n in nums if n > {t}])",
           "How many numbers are bigger than {t}.", _p(t=_k(0, 10)), a_list),
    Family("scale_list", "list", 1, "def f(nums):\n    return [n * {k} for n in nums]",
           "Multiply every number by {k}.", _p(k=_k(2, 4)), a_list),
    Family("max_minus_min", "list", 2,
           "def f(nums):\n    if not nums:\n        return 0\n    return max(nums) - min(nums)",
           "The largest number minus the smallest (0 for an empty list).", _NONE, a_list, split="heldout"),
    Family("keep_multiples", "list", 2, "def f(nums):\n    return [n for n in nums if n % {m} == 0]",
           "Keep only the multiples of {m}.", _p(m=_k(2, 4)), a_list),
    Family("sum_even", "list", 2, "def f(nums):\n    return sum(n for n in nums if n % 2 == 0)",
           "Add up only the even numbers.", _NONE, a_list),
    Family("last_or_default", "list", 2,
           "def f(nums):\n    return nums[-1] if nums else {d}", "The last number, or {d} for an empty list.",
           _p(d=_k(-3, 3)), a_list, split="heldout"),
    Family("prefix_sums", "list", 3,
           "def f(nums):\n    out, total = [], 0\n    for n in nums:\n        total += n\n        out.append(total)\n"
           "    return out",
           "Running totals: each position holds the sum so far.", _NONE, a_list),
    Family("count_rises", "list", 3, "def f(nums):\n    return sum(1 for a, b in zip(nums, nums[1:]) if b > a)",
           "How many times a number is bigger than the one before it.", _NONE, a_list),
    Family("longest_increasing_run", "list", 3,
           "def f(nums):\n    best = run = 0\n    for i, n in enumerate(nums):\n"
           "        run = run + 1 if i and n > nums[i - 1] else 1\n        best = max(best, run)\n    return best",
           "Length of the longest stretch where each number is bigger than the one before.", _NONE, a_list,
           split="heldout"),
    Family("sorted_desc", "list", 2, "def f(nums):\n    return sorted(nums, reverse=True)[:{k}]",
           "The {k} largest numbers, largest first.", _p(k=_k(1, 3)), a_list_nonempty),
    # ---- a list and an integer
    Family("add_to_all", "list_int", 1, "def f(nums, k):\n    return [n + k for n in nums]",
           "Add k to every number.", _NONE, a_list_int),
    Family("count_equal", "list_int", 1, "def f(nums, k):\n    return nums.count(k)",
           "How many times k appears in the list.", _NONE, a_list_int),
    Family("first_above", "list_int", 2,
           "def f(nums, k):\n    for n in nums:\n        if n > k:\n            return n\n    return -1",
           "The first number bigger than k, or -1 if there is none.", _NONE, a_list_int, split="heldout"),
    Family("chunk_sums", "list_int", 3,
           "def f(nums, k):\n    return [sum(nums[i:i + k]) for i in range(0, len(nums), k)]",
           "Cut the list into pieces of k numbers and add up each piece.", _NONE, a_list_int),
    # ---- a list of strings
    Family("total_length", "strs", 1, "def f(words):\n    return sum(len(w) for w in words)",
           "The total number of letters in all the words.", _NONE, a_strs),
    Family("join_initials", "strs", 1, "def f(words):\n    return ''.join(w[:1] for w in words)",
           "The first letter of each word, joined.", _NONE, a_strs, split="heldout"),
    Family("count_with_char", "strs", 2, "def f(words):\n    return len([w for w in words if {c!r} in w])",
           "How many words contain the letter '{c}'.", _p(c=_letter), a_strs),
    Family("longest_word", "strs", 2, "def f(words):\n    return max(words, key=len) if words else ''",
           "The longest word (the first one on a tie; '' for no words).", _NONE, a_strs),
    Family("sorted_words", "strs", 2, "def f(words):\n    return sorted(words)", "The words in alphabetical order.",
           _NONE, a_strs, split="heldout"),
    # ---- nested lists
    Family("sum_nested", "nested", 1, "def f(rows):\n    return sum(sum(row) for row in rows)",
           "Add up the numbers of all the lists.", _NONE, a_nested),
    Family("row_lengths", "nested", 1, "def f(rows):\n    return [len(row) for row in rows]",
           "How many numbers each inner list has.", _NONE, a_nested, split="heldout"),
    Family("row_maxes", "nested", 2, "def f(rows):\n    return [max(row) if row else 0 for row in rows]",
           "The largest number of each inner list (0 for an empty one).", _NONE, a_nested),
    Family("flatten_big", "nested", 3,
           "def f(rows):\n    return [n for row in rows for n in row if n > {t}]",
           "All numbers bigger than {t}, from every inner list, in order.", _p(t=_k(0, 8)), a_nested),
    # ---- dictionaries
    Family("dict_total", "dict", 1, "def f(d):\n    return sum(d.values())", "Add up all the values.", _NONE,
           a_dict),
    Family("dict_keys_above", "dict", 2, "def f(d):\n    return sorted(k for k, v in d.items() if v > {t})",
           "The keys whose value is bigger than {t}, in alphabetical order.", _p(t=_k(0, 10)), a_dict),
    Family("dict_best_key", "dict", 3,
           "def f(d):\n    best = None\n    for k in sorted(d):\n        if best is None or d[k] > d[best]:\n"
           "            best = k\n    return best",
           "The key with the largest value (alphabetically first on a tie; None if empty).", _NONE, a_dict,
           split="heldout"),
)  # fmt: skip


def families(split: str | None = None, domain: str | None = None) -> list[Family]:
    """Families of one split (``warmup`` / ``heldout``; ``None`` = both), optionally of one domain."""
    return [
        f for f in FAMILIES if (split is None or f.split == split) and (domain is None or f.domain == domain)
    ]


def family(name: str) -> Family:
    for f in FAMILIES:
        if f.name == name:
            return f
    raise KeyError(f"no program family {name!r}")


def domain_of_signature(prompt: str, entry_point: str = "") -> str:
    """The family domain closest to a goalpost's signature: the types of its arguments, read from
    the annotations of the entry-point function (``List[int]`` -> ``list``, two ``int`` -> ``int2``,
    ``str`` -> ``str``, ``List[str]`` -> ``strs``, ...).  Only the signature is read, never the
    docstring's examples, the solution or the tests.  Unannotated or unknown types give ``list``."""
    try:
        tree = ast.parse(prompt)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return "list"
    funcs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    fn = next((n for n in funcs if n.name == entry_point), funcs[-1] if funcs else None)
    if fn is None or not fn.args.args:
        return "list"
    kinds = [_kind(a.annotation) for a in fn.args.args]
    if len(kinds) >= 2:
        if kinds[0] == "int" and kinds[1] == "int":
            return "int2"
        if kinds[0] == "str" and kinds[1] == "int":
            return "str_int"
        if kinds[0] == "list" and kinds[1] == "int":
            return "list_int"
    return kinds[0] if kinds[0] in ("int", "str", "list", "strs", "nested", "dict") else "list"


def _kind(node: object) -> str:
    if node is None:
        return "?"
    text = ast.unparse(node).replace(" ", "").lower()  # type: ignore[arg-type]
    if text in ("int", "float", "bool"):
        return "int"
    if text == "str":
        return "str"
    if text.startswith(("list[list", "list[tuple")):
        return "nested"
    if text.startswith("list[str"):
        return "strs"
    if text.startswith(("list", "tuple", "sequence")):
        return "list"
    if text.startswith("dict"):
        return "dict"
    return "?"
