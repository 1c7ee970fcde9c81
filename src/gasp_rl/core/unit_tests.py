"""Sol-Ver's model text parsed into typed values or a :class:`~gasp_rl.core.parsing.Rejection`
(method.md §9): a synthesised problem (signature + docstring) and a verifier's unit test.

- *A problem* is the HumanEval form: the top-level imports, then the first function's signature
  and docstring (any body the model wrote is dropped).
- *A unit test* is a list of ``assert`` statements of the form ``assert f(<constants>) ==
  <constant>`` (or ``assert f(...)``, ``assert not f(...)``, ``... is None/True/False``), the
  constants being :func:`is_constant_expression`.  Everything else the
  verifier writes (a re-definition of ``f``, prints, tautologies such as ``f(x) == f(x)``) is
  dropped before execution: a test that re-defines ``f`` would pass for every solution.

Nothing here runs model text; ``ast.parse`` checks syntax only.
"""

from __future__ import annotations

import ast
import re

from gasp_rl.core.parsing import (
    PYTHON_FENCE_TAGS,
    Rejection,
    extract_code,
    fenced_blocks,
    is_literal_node,
    parses,
)


def is_constant_expression(node: ast.AST) -> bool:
    """Whether ``node`` is a literal (:func:`~gasp_rl.core.parsing.is_literal_node`) or literals combined by arithmetic
    and container displays (``465 + 1``, ``[0] * 3``, ``-(2 ** 8)``): no name, call (but
    ``set()``), attribute or subscript, so it means the same in any program."""
    if is_literal_node(node):
        return True
    if isinstance(node, ast.UnaryOp):
        return is_constant_expression(node.operand)
    if isinstance(node, ast.BinOp):
        return is_constant_expression(node.left) and is_constant_expression(node.right)
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return all(is_constant_expression(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and is_constant_expression(k) for k in node.keys) and all(
            is_constant_expression(v) for v in node.values
        )
    return False


def parse_problem(text: str) -> tuple[str, str, str] | Rejection:
    """A synthesised problem as ``(prompt, entry_point, description)``, or why not.

    The prompt is the HumanEval form: the top-level imports, then the first function's signature
    and docstring only (any body the model wrote is dropped: method.md §9 problems are a description
    plus a signature).
    """
    code = extract_code(text)
    if code is None:
        return Rejection("no_code")
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        # the body is dropped anyway: a broken or cut body after a complete docstring is fine
        code = cut_after_docstring(code)
        try:
            tree = ast.parse(code)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            return Rejection("syntax_error", str(e)[:200])
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef)), None)
    if fn is None:
        return Rejection("no_function")
    doc = ast.get_docstring(fn)
    if not doc or len(doc.split()) < 4:
        return Rejection("no_docstring", "the function needs a docstring of at least 4 words")
    lines = code.split("\n")
    imports = [
        "\n".join(lines[n.lineno - 1 : n.end_lineno])
        for n in tree.body
        if isinstance(n, (ast.Import, ast.ImportFrom)) and n.lineno < fn.lineno
    ]
    header = "\n".join(lines[fn.lineno - 1 : fn.body[0].end_lineno])
    prompt = ("\n".join(imports) + "\n\n\n" if imports else "") + header + "\n"
    if not parses(prompt):
        return Rejection("syntax_error", "signature and docstring do not parse on their own")
    return prompt, fn.name, doc.strip()


def cut_after_docstring(code: str) -> str:
    """``code`` up to the line that closes the docstring of its first top-level ``def`` (the text
    is returned whole when there is no such docstring)."""
    lines = code.split("\n")
    start = next((k for k, line in enumerate(lines) if line.startswith("def ")), None)
    if start is None:
        return code
    rest = "\n".join(lines[start:])
    m = re.search(r'("""|\'\'\')', rest)
    if m is None:
        return code
    close = rest.find(m.group(1), m.end())
    if close < 0:
        return code
    return "\n".join(lines[:start]) + ("\n" if start else "") + rest[: close + 3]


def _unit_call(node: ast.expr, entry_point: str) -> bool:
    """``entry_point(<constants>, ...)``: one call of the function under test on concrete values
    (constant expressions, :func:`is_constant_expression`)."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == entry_point
        and all(is_constant_expression(a) for a in node.args)
        and all(kw.arg is not None and is_constant_expression(kw.value) for kw in node.keywords)
    )


def is_unit_assert(node: ast.stmt, entry_point: str) -> bool:
    """Whether ``node`` checks one call of ``entry_point`` on constants against a constant result:
    ``assert f(..) == v`` / ``v == f(..)``, ``assert f(..)``, ``assert not f(..)``,
    ``assert f(..) is None|True|False``."""
    if not isinstance(node, ast.Assert):
        return False
    t = node.test
    if isinstance(t, ast.UnaryOp) and isinstance(t.op, ast.Not):
        t = t.operand
    if _unit_call(t, entry_point):
        return True
    if isinstance(t, ast.Compare) and len(t.ops) == 1:
        left, right, op = t.left, t.comparators[0], t.ops[0]
        if isinstance(op, ast.Eq):
            return (_unit_call(left, entry_point) and is_constant_expression(right)) or (
                _unit_call(right, entry_point) and is_constant_expression(left)
            )
        if isinstance(op, ast.Is):
            return (
                _unit_call(left, entry_point)
                and isinstance(right, ast.Constant)
                and right.value in (None, True, False)
            )
    return False


def _statements(source: str) -> list[ast.stmt]:
    """Top-level statements of ``source``; if it does not parse as a whole, of each line that does."""
    try:
        return list(ast.parse(source).body)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        pass
    out: list[ast.stmt] = []
    for line in source.split("\n"):
        try:
            out.extend(ast.parse(line.strip()).body)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
    return out


def parse_test(text: str, entry_point: str, max_asserts: int) -> str | Rejection:
    """The unit test in a verifier answer: its top-level unit asserts (module docstring), taken
    from every Python code block (or the whole text when there is no fence), at most
    ``max_asserts``, normalised with ``ast.unparse``."""
    blocks = [b.body for b in fenced_blocks(text) if b.tag in PYTHON_FENCE_TAGS]
    sources = blocks or [text]
    asserts = [
        ast.unparse(node) for src in sources for node in _statements(src) if is_unit_assert(node, entry_point)
    ]
    if not asserts:
        return Rejection("no_unit_assert", f"no `assert {entry_point}(<literals>) == <literal>` line")
    return "\n".join(dict.fromkeys(asserts[:max_asserts])) + "\n"


def close_fence(text: str) -> str:
    """``text`` with its last code block closed again when a stop string cut the closing fence
    off, so training examples show the model a complete answer."""
    text = text.rstrip()
    return text + "\n```" if text.count("```") % 2 == 1 else text
