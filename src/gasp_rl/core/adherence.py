"""Axis adherence: did the teacher simplify a lemma along the axis it was asked to?  (beyond the
paper: GASP asks for an easier lemma along an axis, ``io`` or ``f``, and never checks which one it
got.)

A lemma is compared with its goalpost's reference solution and test inputs on two shapes:

- the program's shape, from its AST: ``C(f) = nodes + 4 (loops + branches) + 2 calls``
  (:func:`program_complexity`);
- the I/O shape, from the literal values: ``S(v) = atoms(v) + depth(v) + (distinct types - 1)``
  per value (an input's arguments summed), averaged over the inputs and over the outputs, the two
  means added (:func:`io_size`); an atom is a number, bool or None, or 4 characters of a string.

Each becomes a signed relative simplification in [-1, 1] (positive: the lemma is simpler):

    s(x_goalpost, x_lemma) = (x_goalpost - x_lemma) / max(x_goalpost, x_lemma)

and the adherence of a lemma asked along ``axis`` rewards simplifying that axis while keeping the
other one similar:

    adherence(io) = 1/2 (s_io + 1 - |s_f|)        adherence(f) = 1/2 (s_f + 1 - |s_io|)

in [-1/2, 1].  An io-simplified lemma with the goalpost's program shape scores high on ``io`` and
low on ``f``; a lemma that changed neither scores 1/2 on both.  Drift, ``1 - adherence``, is what
``gasp.axis_weight`` subtracts from the lemma reward (0 = off, as in the paper).
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass

from gasp_rl.core import parsing

#: characters of a string counted as one atom
STR_CHARS_PER_ATOM = 4

_LOOPS = (ast.For, ast.AsyncFor, ast.While, ast.comprehension)
_BRANCHES = (ast.If, ast.IfExp, ast.Try, ast.Match, ast.BoolOp)


@dataclass(frozen=True)
class ProgramShape:
    nodes: int
    loops: int
    branches: int
    calls: int

    @property
    def complexity(self) -> float:
        return float(self.nodes + 4 * (self.loops + self.branches) + 2 * self.calls)


def program_shape(code: str) -> ProgramShape | None:
    """AST counts of ``code`` (None when it does not parse)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    nodes = loops = branches = calls = 0
    for node in ast.walk(tree):
        nodes += 1
        loops += isinstance(node, _LOOPS)
        branches += isinstance(node, _BRANCHES)
        calls += isinstance(node, ast.Call)
    return ProgramShape(nodes, loops, branches, calls)


def program_complexity(code: str) -> float | None:
    shape = program_shape(code)
    return None if shape is None else shape.complexity


def _value_stats(node: ast.AST, depth: int = 0) -> tuple[int, int, set[str]]:
    """(atoms, nesting depth, type names) of one literal expression node."""
    if isinstance(node, ast.Constant):
        v = node.value
        atoms = max(1, -(-len(v) // STR_CHARS_PER_ATOM)) if isinstance(v, (str, bytes)) else 1
        return atoms, depth, {type(v).__name__}
    if isinstance(node, ast.UnaryOp):
        return _value_stats(node.operand, depth)
    children: list[ast.AST] = []
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        children = list(node.elts)
    elif isinstance(node, ast.Dict):
        children = [k for k in node.keys if k is not None] + list(node.values)
    elif isinstance(node, ast.Call):  # set(), frozenset({...}), float('inf')
        children = list(node.args)
    atoms, deepest, types = 0, depth + 1, {type(node).__name__.lower()}
    for child in children:
        a, d, t = _value_stats(child, depth + 1)
        atoms, deepest, types = atoms + a, max(deepest, d), types | t
    return atoms, deepest, types


def _size(node: ast.AST) -> float:
    atoms, depth, types = _value_stats(node)
    return float(atoms + depth + len(types) - 1)


def value_size(literal: str) -> float | None:
    """``S(v) = atoms + depth + (distinct types - 1)`` of one literal's text (None if not a literal)."""
    try:
        node = ast.parse(literal.strip(), mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    return _size(node) if parsing.is_literal_node(node) else None


def args_size(args: str) -> float | None:
    """Sum of :func:`value_size` over the comma-separated arguments of one call (``"[1, 2], 3"``)."""
    try:
        node = ast.parse(f"({args.strip()},)", mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not isinstance(node, ast.Tuple) or not all(parsing.is_literal_node(e) for e in node.elts):
        return None
    return sum(_size(e) for e in node.elts)


def io_size(inputs: Sequence[str], outputs: Sequence[str] = ()) -> float | None:
    """Mean :func:`args_size` of the inputs plus mean :func:`value_size` of the outputs (None when
    nothing is measurable)."""
    total, found = 0.0, False
    for values, size in ((inputs, args_size), (outputs, value_size)):
        sizes = [s for s in (size(v) for v in values) if s is not None]
        if sizes:
            total, found = total + sum(sizes) / len(sizes), True
    return total if found else None


def simplification(goalpost: float, lemma: float) -> float:
    """``(g - l) / max(g, l)`` in [-1, 1]: positive when the lemma is simpler (0 when both are 0)."""
    top = max(goalpost, lemma)
    return 0.0 if top <= 0 else (goalpost - lemma) / top


def adherence(axis: str, s_io: float, s_f: float) -> float:
    """``1/2 (s_axis + 1 - |s_other|)``: simplified along ``axis``, the other axis kept similar."""
    if axis == "io":
        return 0.5 * (s_io + 1.0 - abs(s_f))
    if axis == "f":
        return 0.5 * (s_f + 1.0 - abs(s_io))
    raise ValueError(f"unknown axis {axis!r} (io or f)")


@dataclass(frozen=True)
class Adherence:
    """Both simplifications of a lemma against its goalpost and the adherence to its own axis."""

    axis: str
    s_io: float
    s_f: float
    score: float
    other: float  # adherence to the axis it was NOT asked for (for the report)

    def to_dict(self) -> dict[str, float | str]:
        return {
            "axis": self.axis,
            "s_io": round(self.s_io, 4),
            "s_f": round(self.s_f, 4),
            "score": round(self.score, 4),
            "other_axis": round(self.other, 4),
        }


def axis_adherence(
    axis: str,
    lemma_code: str,
    lemma_inputs: Sequence[str],
    lemma_outputs: Sequence[str],
    goalpost_code: str,
    goalpost_inputs: Sequence[str],
    goalpost_outputs: Sequence[str] = (),
) -> Adherence | None:
    """The lemma's adherence to ``axis`` (None when a shape cannot be measured on either side)."""
    cl, cg = program_complexity(lemma_code), program_complexity(goalpost_code)
    sl, sg = io_size(lemma_inputs, lemma_outputs), io_size(goalpost_inputs, goalpost_outputs)
    if cl is None or cg is None or sl is None or sg is None:
        return None
    s_io, s_f = simplification(sg, sl), simplification(cg, cl)
    other = "f" if axis == "io" else "io"
    return Adherence(axis, s_io, s_f, adherence(axis, s_io, s_f), adherence(other, s_io, s_f))


def check_pairs(check_code: str, name: str = "candidate") -> list[tuple[str, str | None]]:
    """(argument text, expected literal or None) of every ``candidate(<literals>)`` call in a
    HumanEval-style ``check`` function, in source order; the expected value is read from
    ``candidate(...) == <literal>`` comparisons."""
    try:
        tree = ast.parse(check_code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return []
    expected: dict[int, str] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Compare)
            and len(node.ops) == 1
            and isinstance(node.ops[0], ast.Eq)
            and parsing.is_literal_node(node.comparators[0])
        ):
            expected[id(node.left)] = ast.unparse(node.comparators[0])
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == name
        and not node.keywords
        and node.args
        and all(parsing.is_literal_node(a) for a in node.args)
    ]
    calls.sort(key=lambda n: (n.lineno, n.col_offset))
    return [(", ".join(ast.unparse(a) for a in c.args), expected.get(id(c))) for c in calls]
