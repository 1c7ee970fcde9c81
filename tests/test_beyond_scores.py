"""Scores beyond the paper (issue 17) on hand-written pairs: axis adherence, goalpost alignment,
and the dynamic-goalpost refresh plan."""

from __future__ import annotations

import numpy as np
import pytest

from gasp_rl.core import adherence, alignment, curriculum
from gasp_rl.core.novelty import normalize_rows

# A goalpost-like reference: nested loops and branches over a list of lists of floats.
GOALPOST = """
def f(rows, threshold):
    out = []
    for row in rows:
        best = None
        for x in row:
            if x > threshold and (best is None or x < best):
                best = x
        out.append(best if best is not None else -1.0)
    return out
"""
GOALPOST_INPUTS = ["[[1.5, 2.25, 3.0], [0.5, 7.75], [4.0, 4.5, 9.0, 10.5]], 2.0", "[[3.0, 1.0], [8.5]], 0.5"]
GOALPOST_OUTPUTS = ["[2.25, 7.75, 4.0]", "[1.0, 8.5]"]

# io axis: the same kind of program, on tiny flat inputs
IO_LEMMA = """
def f(rows, threshold):
    out = []
    for row in rows:
        best = None
        for x in row:
            if x > threshold and (best is None or x < best):
                best = x
        out.append(best if best is not None else 0)
    return out
"""
IO_LEMMA_INPUTS = ["[[1]], 0", "[[2]], 1", "[[3]], 5"]
IO_LEMMA_OUTPUTS = ["[1]", "[2]", "[0]"]

# f axis: a one-line program, on I/O as big as the goalpost's
F_LEMMA = "def f(rows, threshold):\n    return [max(r) for r in rows]\n"


def test_an_io_simplified_lemma_is_io_adherent_and_not_f_adherent() -> None:
    a = adherence.axis_adherence(
        "io", IO_LEMMA, IO_LEMMA_INPUTS, IO_LEMMA_OUTPUTS, GOALPOST, GOALPOST_INPUTS, GOALPOST_OUTPUTS
    )
    assert a is not None
    assert a.s_io > 0.4 and abs(a.s_f) < 0.05  # same nesting, far fewer values; same program shape
    assert a.score > 0.7 and a.other < 0.3  # io-adherent, not f-adherent
    as_f = adherence.axis_adherence(
        "f", IO_LEMMA, IO_LEMMA_INPUTS, IO_LEMMA_OUTPUTS, GOALPOST, GOALPOST_INPUTS, GOALPOST_OUTPUTS
    )
    assert as_f is not None and as_f.score == pytest.approx(a.other)


def test_an_f_simplified_lemma_is_f_adherent_and_not_io_adherent() -> None:
    a = adherence.axis_adherence(
        "f",
        F_LEMMA,
        GOALPOST_INPUTS,
        ["[3.0, 7.75, 10.5]", "[3.0, 8.5]"],
        GOALPOST,
        GOALPOST_INPUTS,
        GOALPOST_OUTPUTS,
    )
    assert a is not None
    assert a.s_f > 0.5 and abs(a.s_io) < 0.1
    assert a.score > 0.7 and a.other < 0.3


def test_a_lemma_harder_on_its_axis_scores_below_an_unchanged_one() -> None:
    unchanged = adherence.axis_adherence(
        "f", GOALPOST, GOALPOST_INPUTS, GOALPOST_OUTPUTS, GOALPOST, GOALPOST_INPUTS, GOALPOST_OUTPUTS
    )
    harder_f = GOALPOST + "\n\ndef g(x):\n    return [f(x, t) for t in range(3) if t or x]\n"
    harder = adherence.axis_adherence(
        "f", harder_f, GOALPOST_INPUTS, GOALPOST_OUTPUTS, GOALPOST, GOALPOST_INPUTS, GOALPOST_OUTPUTS
    )
    assert unchanged is not None and harder is not None
    assert unchanged.score == pytest.approx(0.5)
    assert harder.s_f < 0 and harder.score < unchanged.score


def test_shapes_and_sizes() -> None:
    shape = adherence.program_shape(GOALPOST)
    assert shape is not None and (shape.loops, shape.calls) == (2, 1) and shape.branches >= 3
    assert adherence.program_shape("def f(:") is None
    assert adherence.value_size("1") == 1.0
    assert adherence.value_size("[1, 2, 3]") == 3 + 1 + 1  # 3 atoms, depth 1, types {list, int}
    assert adherence.args_size("[1, 2, 3], 4") == 5 + 1 and adherence.args_size("x, 1") is None
    assert adherence.value_size("'abcdefgh'") == 2.0  # 8 characters = 2 atoms
    assert adherence.value_size("[[1], [2]]") > adherence.value_size("[1, 2]")  # type: ignore[operator]
    assert adherence.value_size("x + 1") is None
    assert adherence.simplification(10, 5) == 0.5 and adherence.simplification(5, 10) == -0.5
    assert adherence.simplification(0, 0) == 0.0
    with pytest.raises(ValueError):
        adherence.adherence("both", 0.0, 0.0)


def test_check_pairs_reads_arguments_and_expected_outputs() -> None:
    check = (
        "def check(candidate):\n"
        "    assert candidate([1, 2], 3) == True\n"
        "    assert candidate('ab', 0) == 'ab'\n"
        "    assert abs(candidate(1.5, 2) - 3.0) < 1e-6\n"
        "    assert candidate(x, 1) == 2\n"
    )
    assert adherence.check_pairs(check) == [("[1, 2], 3", "True"), ("'ab', 0", "'ab'"), ("1.5, 2", None)]
    assert adherence.check_pairs("def check(:") == []


def _embed(texts: list[str]) -> np.ndarray:
    """Bag-of-words vectors over a small vocabulary: stands in for the embedder seam."""
    vocab = ["sort", "list", "string", "vowel", "count", "prime", "number", "divisor", "reverse"]
    return normalize_rows(np.array([[t.lower().count(w) + 1e-3 for w in vocab] for t in texts]))


def test_an_on_topic_lemma_aligns_better_than_an_off_topic_one() -> None:
    goalposts = [
        "Count the vowels in a string.",
        "Is the number prime? Check every divisor of the number.",
        "Sort a list and reverse the sorted list.",
    ]
    on_topic = "def f(s): return sum(c in 'aeiou' for c in s)  # count vowel letters of a string"
    off_topic = "def f(n): return all(n % d for d in range(2, n))  # prime number, no divisor"
    scores = alignment.embedding_alignment(_embed([on_topic, off_topic]), _embed(goalposts), own=[0, 0])
    assert scores[0].margin > 0 > scores[1].margin
    assert scores[0].rank == 1.0 and scores[1].rank < 1.0
    assert scores[0].cosine > scores[1].cosine
    with pytest.raises(ValueError):
        alignment.embedding_alignment(_embed([on_topic]), _embed(goalposts[:1]), own=[0])


def test_judge_prompt_and_score_parsing() -> None:
    chat = alignment.judge_prompt("Count the vowels.", "def f(s): return len(s)", "length of s")
    assert "Count the vowels." in chat[0]["content"] and "# length of s" in chat[0]["content"]
    assert alignment.parse_judge_score("Related: both walk a string.\nScore: 7") == 0.7
    assert alignment.parse_judge_score("score = 3 ... final Score: 10") == 1.0
    assert alignment.parse_judge_score("Score: 11") is None
    assert alignment.parse_judge_score("no number here") is None


def test_refresh_replaces_solved_goalposts_in_place_and_keeps_the_count() -> None:
    r = curriculum.plan_refresh(4, ["a", "b", "c"], solved=["b"], failing_candidates=["a", "x", "y"])
    assert r.retired == ["b"] and r.promoted == ["x"] and r.active == ["a", "x", "c"]
    short = curriculum.plan_refresh(8, ["a", "x", "c"], solved=["a", "c"], failing_candidates=["y"])
    assert short.retired == ["a"] and short.promoted == ["y"] and short.kept_solved == ["c"]
    assert short.active == ["y", "x", "c"]
    with pytest.raises(ValueError):
        curriculum.plan_refresh(1, ["a"], solved=["z"], failing_candidates=[])
    assert [i for i in range(1, 10) if curriculum.is_refresh_iteration(i, 3)] == [3, 6, 9]
    assert not any(curriculum.is_refresh_iteration(i, 0) for i in range(10))
    assert curriculum.next_candidates(["a", "b", "c", "d"], {"a", "c"}, 1) == ["b"]
