"""Tests of model-text parsing: code extraction first (others build on it)."""

from __future__ import annotations

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
