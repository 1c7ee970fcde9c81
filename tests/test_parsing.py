"""Tests of model-text parsing: code extraction first (others build on it)."""

from __future__ import annotations

import pytest

from gasp_rl.core.parsing import extract_code, fenced_blocks

FN = "def f(x):\n    return x + 1"


def test_python_fence() -> None:
    assert extract_code(f"Here you go:\n```python\n{FN}\n```\nDone.") == FN


def test_untagged_fence_and_other_tags() -> None:
    assert extract_code(f"```\n{FN}\n```") == FN
    assert extract_code("```text\nhello world\n```") is None


def test_function_beats_later_usage_example() -> None:
    text = f"```python\n{FN}\n```\nUsage:\n```python\nprint(f(3))\n```"
    assert extract_code(text) == FN


def test_last_of_two_functions_wins() -> None:
    other = "def f(x):\n    return x * 2"
    assert extract_code(f"```python\n{FN}\n```\nBetter:\n```python\n{other}\n```") == other


def test_complete_block_beats_truncated_one() -> None:
    text = f"```python\n{FN}\n```\n```python\ndef g(y):\n    return (y +"
    assert extract_code(text) == FN


def test_unclosed_fence_is_used_when_it_parses() -> None:
    assert extract_code(f"```python\n{FN}\n") == FN


def test_unparsable_block_is_returned_for_the_caller_to_reject() -> None:
    assert extract_code("```python\ndef f(x:\n    return\n```") == "def f(x:\n    return"


def test_closing_fence_at_end_of_line_and_indented_fence() -> None:
    assert extract_code("```python\ndef f(x):\n    return x```") == "def f(x):\n    return x"
    assert extract_code("  ```python\n  def f(x):\n      return x\n  ```") == "def f(x):\n    return x"


def test_unfenced_code_between_prose() -> None:
    text = f"Sure! Here is the function:\n\n{FN}\n\nThis adds one to x."
    assert extract_code(text) == FN


def test_unfenced_with_import_and_decorator() -> None:
    code = "import math\n\n@staticmethod\ndef f(x):\n    return math.floor(x)"
    assert extract_code(f"Answer:\n{code}\nthat is it") == code


def test_no_code() -> None:
    assert extract_code("I think the answer is 42.") is None
    assert extract_code("") is None
    assert extract_code("```python\n\n```") is None


def test_deterministic_and_bounded() -> None:
    text = "prose " * 10_000 + f"\n```python\n{FN}\n```"
    assert extract_code(text) == extract_code(text)


def test_inline_triple_backticks_are_not_blocks() -> None:
    assert fenced_blocks("use ```x``` here\n```python\nx = 1\n```")[0].body == "x = 1"


# ---------------------------------------------------------------- proposals

from gasp_rl.core.parsing import (  # noqa: E402
    REJECTION_REASONS,
    Proposal,
    Rejection,
    canonical_args,
    canonical_literal,
    parse_abduction_answer,
    parse_deduction_answer,
    parse_induction_answer,
    parse_proposal,
)

GOOD = """```python
def f(xs, k):
    return [x * k for x in xs]
```
Input: [1, 2], 3
Input: [], 0
Input: [5], -1
Input: [1,2,3],2
Input: [0], 10
Message: Multiply each item by k.
"""


def _reason(result: object) -> str:
    assert isinstance(result, Rejection), result
    return result.reason


def test_good_proposal() -> None:
    p = parse_proposal(GOOD)
    assert p == Proposal(
        code="def f(xs, k):\n    return [x * k for x in xs]",
        inputs=["[1, 2], 3", "[], 0", "[5], -1", "[1, 2, 3], 2", "[0], 10"],
        message="Multiply each item by k.",
    )


def test_input_line_variants_are_unwrapped() -> None:
    text = """```python
def f(x):
    return x
```
1. Input: 3
- Input 2: `'a'`
**Input:** f([1])
Input #4: 4 -> 4
Input: (1, 2), Output: (1, 2)
Message: identity
Input: 99
"""
    p = parse_proposal(text)
    assert isinstance(p, Proposal)
    assert p.inputs == ["3", "'a'", "[1]", "4", "(1, 2)"]  # the line after Message is ignored


def test_inputs_as_one_list() -> None:
    one = "```python\ndef f(x):\n    return x\n```\nInputs: [1, 'a', [2], (3,), None]"
    assert parse_proposal(one).inputs == ["1", "'a'", "[2]", "(3,)", "None"]
    two = "```python\ndef f(a, b):\n    return a\n```\nInputs: [(1, 2), (3, 4), (5, 6), (7, 8), (9, 0)]"
    assert parse_proposal(two).inputs == ["1, 2", "3, 4", "5, 6", "7, 8", "9, 0"]
    assert parse_proposal(one.replace(", None]", "]")) == Rejection("wrong_input_count", "got 4, want 5")
    assert _reason(parse_proposal(one.replace("[1, 'a', [2], (3,), None]", "[]"))) == "no_inputs"
    assert parse_proposal(two.replace("(9, 0)", "9")) == Rejection(  # not one call each
        "input_arity_mismatch", "input 1 has 1 arguments, f takes 2"
    )


def test_a_list_cut_short_keeps_its_complete_items() -> None:
    code = "```python\ndef f(x):\n    return x\n```\n"
    assert parse_proposal(code + "Inputs: [1, 2, 3, 4, 5, 6, 7, 8,").inputs == ["1", "2", "3", "4", "5"]
    cut_in_string = code + 'Inputs: ["ab", "c, d", [1, 2], "e", "f", "gh'
    assert parse_proposal(cut_in_string).inputs == ["'ab'", "'c, d'", "[1, 2]", "'e'", "'f'"]
    assert parse_proposal(code + "Inputs: [1, 2, 3, [4,") == Rejection("wrong_input_count", "got 3, want 5")
    assert _reason(parse_proposal(code + "Inputs: [1")) == "no_inputs"


def test_extra_inputs_are_cut_and_repeats_skipped() -> None:
    many = "```python\ndef f(x):\n    return x\n```\nInputs: [4, 4, 1, 2, 4, 3, 5, 6, 7, xs]"
    assert parse_proposal(many).inputs == ["4", "1", "2", "3", "5"]  # what follows is never read
    assert parse_proposal(many.replace("[4, 4,", "[4, xs,")) == Rejection(
        "input_not_literal_syntax", "input 2: 'xs'"
    )
    lines = GOOD.replace("Message:", "Input: [9], 9\nMessage:")
    assert parse_proposal(lines).inputs == parse_proposal(GOOD).inputs
    repeats = "```python\ndef f(x):\n    return x\n```\nInputs: [1, 1, 2, 2, 3, 3, 4]"
    assert parse_proposal(repeats) == Rejection("wrong_input_count", "got 4 distinct of 7, want 5")


def test_lone_function_is_renamed_to_f() -> None:
    text = GOOD.replace("def f(xs, k):", "def scale_all(xs, k):\n    # scale_all is recursive-free")
    p = parse_proposal(text)
    assert isinstance(p, Proposal) and p.renamed_from == "scale_all"
    assert p.code.startswith("def f(xs, k):\n    # scale_all is recursive-free")  # comments untouched
    rec = parse_induction_answer("```python\ndef fact(n):\n    return 1 if n < 2 else n * fact(n - 1)\n```")
    assert rec == "def f(n):\n    return 1 if n < 2 else n * f(n - 1)"
    uni = parse_induction_answer("```python\ndef größe(s):\n    t = 'ä'; return größe\n```")
    assert uni == "def f(s):\n    t = 'ä'; return f"


def test_renaming_refused_when_ambiguous() -> None:
    two = "```python\ndef g(x):\n    return x\n\ndef h(x):\n    return g(x)\n```\nInput: 1"
    assert parse_proposal(two) == Rejection("no_function_f", "top-level functions: g, h")
    rebinds = "```python\ndef g(x):\n    g = 2\n    return x\n```"
    assert _reason(parse_induction_answer(rebinds)) == "no_function_f"
    uses_f = "```python\ndef g(f):\n    return f\n```"
    assert _reason(parse_induction_answer(uses_f)) == "no_function_f"
    none = "```python\nx = 1\n```"
    assert parse_induction_answer(none) == Rejection("no_function_f", "top-level functions: none")


def test_f_with_helpers_and_lambda_are_fine() -> None:
    helpers = "```python\ndef helper(x):\n    return x + 1\n\ndef f(x):\n    return helper(x)\n```"
    assert parse_induction_answer(helpers).startswith("def helper")
    assert parse_induction_answer("```python\nf = lambda x: x + 1\n```") == "f = lambda x: x + 1"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty_output"),
        ("   \n", "empty_output"),
        ("I would write a function that doubles numbers.", "no_code_block"),
        ("```python\ndef f(x) return x\n```\nInput: 1", "syntax_error"),
        ("```python\nx = 1\n```\nInput: 1", "no_function_f"),
        ("```python\nimport os\ndef f(x):\n    return x\n```\nInput: 1", "forbidden_capability"),
        ("```python\ndef f(x):\n    return x\n```\nMessage: none", "no_inputs"),
        (GOOD.replace("Input: [0], 10\n", ""), "wrong_input_count"),
        (GOOD.replace("Input: [], 0", "Input: xs, k"), "input_not_literal_syntax"),
        (GOOD.replace("Input: [], 0", "Input: range(3), 1"), "input_not_literal_syntax"),
        (GOOD.replace("Input: [], 0", "Input: [], k=0"), "input_not_literal_syntax"),
        (GOOD.replace("Input: [], 0", "Input: [1]), (2"), "input_not_literal_syntax"),
        (GOOD.replace("Input: [], 0", "Input: [" + "1, " * 400 + "1]"), "input_too_long"),
        (GOOD.replace("Input: [], 0", "Input: []"), "input_arity_mismatch"),
        ("```python\ndef f(x):\n    return x\n" + "x = 1\n" * 2000 + "```", "code_too_long"),
    ],
)
def test_each_proposal_rejection_reason(text: str, reason: str) -> None:
    assert _reason(parse_proposal(text)) == reason


def test_rejection_details_are_precise() -> None:
    assert parse_proposal(GOOD.replace("Input: [0], 10\n", "")).detail == "got 4, want 5"
    assert (
        parse_proposal(GOOD.replace("Input: [], 0", "Input: []")).detail
        == "input 2 has 1 arguments, f takes 2"
    )
    bad = parse_proposal("```python\ndef f(x):\n    return eval(x)\n```\nInput: '1'")
    assert bad == Rejection("forbidden_capability", "use of builtin 'eval'")
    assert parse_proposal("```python\ndef f(x:\n```").detail.startswith("line 1")


def test_arity_with_defaults_varargs_and_keyword_only() -> None:
    code = "```python\ndef f(a, b=1, *rest):\n    return a\n```\n"
    ok = code + "".join(f"Input: {', '.join(['1'] * k)}\n" for k in (1, 2, 3, 4, 5))
    assert isinstance(parse_proposal(ok), Proposal)
    kwonly = "```python\ndef f(a, *, b):\n    return a\n```\n" + "Input: 1\n" * 5
    assert _reason(parse_proposal(kwonly)) == "input_arity_mismatch"


def test_safety_check_can_be_left_to_the_caller() -> None:
    text = "```python\nimport os\ndef f(x):\n    return x\n```\nInput: 1"
    assert isinstance(parse_proposal(text, n_inputs=1, check_safety=False), Proposal)


def test_unknown_reason_is_a_bug() -> None:
    with pytest.raises(ValueError):
        Rejection("because")
    assert set(REJECTION_REASONS) >= {"no_code_block", "syntax_error", "no_function_f", "no_answer"}


# ---------------------------------------------------------------- student answers


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Answer: 8", "8"),
        ("Answer: 8.", "8"),
        ("**Answer:** [1,2]", "[1, 2]"),
        ("Answer: `'ab'`", "'ab'"),
        ("Answer: f(3) == 8", "8"),
        ("Answer:\n\n(1, 'x')", "(1, 'x')"),
        ("Answer: -3\n\nBecause f doubles.", "-3"),
        ("Answer: {'a': 1, 'b': {2, 3}}", "{'a': 1, 'b': {2, 3}}"),
        ("Answer: 1+2j", "1 + 2j"),
        ("```\nTrue\n```", "True"),
        ("None", "None"),
    ],
)
def test_deduction_answers(text: str, value: str) -> None:
    assert parse_deduction_answer(text) == value


@pytest.mark.parametrize(
    ("text", "args"),
    [
        ("Answer: 3", "3"),
        ("Answer: [1, 2], 3", "[1, 2], 3"),
        ("Answer: f([1, 2], 3)", "[1, 2], 3"),
        ("Answer: f(4) == 10", "4"),
        ("Answer: (1, 2)", "(1, 2)"),
        ("Answer: 'a', 'b'.", "'a', 'b'"),
    ],
)
def test_abduction_answers(text: str, args: str) -> None:
    assert parse_abduction_answer(text) == args


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no_answer"),
        ("The function returns eight.", "no_answer"),
        ("Answer: x + 1", "answer_not_literal_syntax"),
        ("Answer: [1, 2", "answer_not_literal_syntax"),
        ("Answer: " + "9" * 3000, "answer_too_long"),
    ],
)
def test_answer_rejections(text: str, reason: str) -> None:
    assert _reason(parse_deduction_answer(text)) == reason
    assert _reason(parse_abduction_answer(text)) == reason


def test_abduction_rejects_keywords_and_names() -> None:
    assert _reason(parse_abduction_answer("Answer: x=3")) == "answer_not_literal_syntax"
    assert _reason(parse_abduction_answer("Answer: f(g(1))")) == "answer_not_literal_syntax"


def test_canonical_literal_text() -> None:
    assert canonical_args("[1,2],  'a'") == "[1, 2], 'a'"
    assert canonical_args("") == ""
    assert canonical_args("__import__('os')") is None
    assert canonical_literal("( 1,2 )") == "(1, 2)"
    assert canonical_literal("-5") == "-5"
    assert canonical_literal("set()") == "set()"
    assert canonical_literal("print(1)") is None
    assert canonical_literal("[" * 1000 + "]" * 1000) is None  # too deep for the parser: no crash
