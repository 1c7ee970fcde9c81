"""Turning model text into typed values or a precise rejection reason.

A tiny model wraps code in fences inconsistently: a ```python block, a bare ``` block, two blocks
(the function, then a usage example), a block cut off by the token limit, or no fence at all; it
names the function after the problem instead of ``f``; it writes ``Answer: 8.`` or ``f(3) == 8``.
The parsers accept such variants when their meaning is unambiguous and reject everything else with
a reason from :data:`REJECTION_REASONS`, so a run can report *why* proposals fail.

Untrusted text stays data: nothing here runs, compiles or ``literal_eval``-s model text.
``ast.parse`` checks syntax (on bounded-length strings), and literal values are returned as
canonical literal *text* (``ast.unparse`` of literal nodes) to be interpreted only in the sandbox.

Deliberate leniency decisions (each tested on real outputs in ``tests/fixtures/model_outputs``):

- **Function name.**  If there is no top-level ``f`` but exactly one top-level function, it is
  renamed to ``f`` (its definition and every reference), provided the old name is never rebound
  and ``f`` is unused; :attr:`Proposal.renamed_from` records the old name.  With several
  candidate functions the intent is ambiguous: ``no_function_f``.  ``f = lambda ...`` counts as
  defining ``f``.
- **Inputs.**  Lines ``Input: <args>`` (also ``Input 1:``, ``- Input:``, ``**Input:**``); a value
  written as a call ``f(<args>)`` is unwrapped; a trailing ``-> out`` / ``== out`` / ``Output: out``
  on the same line is dropped.  Lines after the ``Message:`` line are ignored.  Without such lines,
  one ``Inputs: [a, b, ...]`` list with exactly ``n_inputs`` items is read as one item per call
  (items are the single argument when ``f`` takes one parameter).  The count must be exact.
- **Message.**  ``Message:`` (or ``Hint:``) line, optional: a missing message is an empty one.
- **Answers.**  ``Answer: <value>`` (first such line; the value may be on the next line), else a
  fenced block holding only a literal, else the whole reply if it is one literal.  A trailing
  period is dropped (``Answer: 8.`` is ``8``); ``f(3) == 8`` answers ``8`` (deduction) and ``f(3)`` answers ``3``
  (abduction).
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass, field

#: Fence info strings accepted as Python (lower-cased, the first word only).  An untagged fence
#: counts too: the tiny model often writes a bare ``` block for code.
PYTHON_FENCE_TAGS = frozenset({"", "python", "py", "python3", "py3"})

#: Texts longer than this are cut before parsing so a runaway generation cannot make parsing slow.
MAX_TEXT_CHARS = 20_000
MAX_CODE_CHARS = 8_000
MAX_INPUT_CHARS = 1_000
MAX_ANSWER_CHARS = 2_000
MAX_MESSAGE_CHARS = 300

_FENCE = "```"
_CODE_START = re.compile(r"^(?:def|async\s+def|class|import|from|@)\b")
_PARSE_ERRORS = (SyntaxError, ValueError, MemoryError, RecursionError)


# ---------------------------------------------------------------- code extraction


@dataclass(frozen=True)
class _Block:
    """One fenced block: info tag, dedented body, whether it was closed, and its span in the
    text (from the opening fence to after the closing fence)."""

    tag: str
    body: str
    closed: bool
    start: int = 0
    end: int = 0


def fenced_blocks(text: str) -> list[_Block]:
    """All ``` fenced blocks of ``text`` in order of appearance.

    Fences are paired left to right; a final opening fence without a closing one yields an
    unclosed block running to the end of the text (a generation cut by the token limit).  The
    closing fence may sit at the end of a code line (``return x```)`` as small models write it.
    """
    blocks: list[_Block] = []
    pos = 0
    while True:
        start = text.find(_FENCE, pos)
        if start < 0:
            break
        header_end = text.find("\n", start)
        if header_end < 0:  # an opening fence on the very last line: no body at all
            break
        header = text[start + len(_FENCE) : header_end].strip()
        if _FENCE in header:  # ```inline``` on one line: not a block, skip past it
            pos = text.find(_FENCE, start + len(_FENCE)) + len(_FENCE)
            continue
        tag = header.split()[0].lower() if header else ""
        end = text.find(_FENCE, header_end + 1)
        closed = end >= 0
        body = text[header_end + 1 : end if closed else len(text)]
        stop = end + len(_FENCE) if closed else len(text)
        blocks.append(_Block(tag, textwrap.dedent(body).strip("\n"), closed, start, stop))
        if not closed:
            break
        pos = stop
    return blocks


def parses(code: str) -> bool:
    """Whether ``code`` is syntactically valid Python (checked with ``ast.parse``, never run)."""
    try:
        ast.parse(code)
    except _PARSE_ERRORS:
        return False
    return True


def _defines_function(code: str) -> bool:
    try:
        tree = ast.parse(code)
    except _PARSE_ERRORS:
        return False
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in tree.body)


def _trim_trailing_prose(code: str) -> str:
    """Drop trailing top-level expression statements that are not calls (prose that parsed)."""
    tree = ast.parse(code)
    lines = code.split("\n")
    while tree.body and isinstance(tree.body[-1], ast.Expr) and not isinstance(tree.body[-1].value, ast.Call):
        lines = lines[: tree.body[-1].lineno - 1]
        tree.body.pop()
    return "\n".join(lines).rstrip()


def _unfenced_code(text: str) -> tuple[str, int, int] | None:
    """The longest run of lines that parses as Python, starts like code and defines a function,
    with its character span in ``text``.

    A run starts at a column-0 line beginning with ``def``/``class``/``import``/``from``/``@`` and
    extends as far as the lines still parse together (prose after the code ends it).  Requiring a
    top-level ``def`` keeps plain sentences (which can parse as expressions) from counting as code.
    Ties go to the later run.  Trailing top-level bare expressions that are not calls are cut:
    a sentence such as ``that is it`` happens to parse as a comparison.
    """
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    best: tuple[str, int, int] | None = None
    i = 0
    while i < len(lines):
        if not _CODE_START.match(lines[i]):
            i += 1
            continue
        stop = i
        for j in range(len(lines), i, -1):  # the longest parseable span from line i
            chunk = "\n".join(lines[i:j]).strip("\n")
            if parses(chunk):
                stop = j
                chunk = _trim_trailing_prose(chunk)
                if _defines_function(chunk) and (best is None or len(chunk) >= len(best[0])):
                    best = (chunk, offsets[i], offsets[i] + len(chunk))
                break
        i = max(stop, i + 1)
    return best


def _extract(text: str) -> tuple[str, int, int] | None:
    """:func:`extract_code` plus the span of ``text`` the code was taken from."""
    blocks = [b for b in fenced_blocks(text) if b.tag in PYTHON_FENCE_TAGS and b.body.strip()]
    if blocks:
        ranked = sorted(
            range(len(blocks)), key=lambda k: (parses(blocks[k].body), _defines_function(blocks[k].body), k)
        )
        best = blocks[ranked[-1]]
        return best.body, best.start, best.end
    return _unfenced_code(text)


def extract_code(text: str) -> str | None:
    """The Python code of a model answer, or ``None`` when it contains no code at all.

    Preference (deterministic):

    1. Fenced blocks tagged python / py / python3 or untagged (other tags such as ``text`` are
       ignored).  Among them: those that parse beat those that do not, then those defining a
       top-level function beat the rest, then the later block wins.  So a complete block beats a
       later block cut off by the token limit, and a function beats a trailing usage example.
       If no block parses, the last block is returned as is (the caller reports the syntax error).
    2. With no usable fence: the longest run of lines that parses and defines a function
       (see :func:`_unfenced_code`).

    An empty block counts as no block.
    """
    found = _extract(text[:MAX_TEXT_CHARS])
    return found[0] if found else None


# ---------------------------------------------------------------- rejection reasons

#: The fixed vocabulary of rejection reasons (recorded in proposals.jsonl / students.jsonl).
#: Parsing reasons come from this module; the loop adds execution / novelty reasons of its own.
REJECTION_REASONS: dict[str, str] = {
    "empty_output": "the model produced no text",
    "no_code_block": "no Python code found (no ```python block and no unfenced function)",
    "code_too_long": f"the code is longer than {MAX_CODE_CHARS} characters",
    "syntax_error": "the code is not valid Python",
    "no_function_f": "no top-level function f, and not exactly one other function to rename",
    "forbidden_capability": "the code uses a forbidden capability (see gasp_rl.core.safety)",
    "no_inputs": "no `Input:` lines (nor an `Inputs: [...]` list)",
    "wrong_input_count": "not exactly the requested number of inputs",
    "input_too_long": f"an input is longer than {MAX_INPUT_CHARS} characters",
    "input_not_literal_syntax": "an input is not a comma-separated list of Python literals",
    "input_arity_mismatch": "an input has a number of arguments f cannot take",
    "no_message": "no `Message:` line (an AZR induction proposal must have one)",
    "no_answer": "no `Answer:` line, no answer block and no bare value",
    "answer_too_long": f"the answer is longer than {MAX_ANSWER_CHARS} characters",
    "answer_not_literal_syntax": "the answer is not a Python literal (or argument list of literals)",
    # Sol-Ver (gasp_rl.core.unit_tests): synthesised problems, solver answers, verifier tests
    "no_code": "no code in the answer",
    "no_function": "the synthesised problem defines no function",
    "no_docstring": "the synthesised function has no docstring of at least 4 words",
    "no_unit_assert": "no `assert f(<literals>) == <literal>` line in the test",
}


@dataclass(frozen=True)
class Rejection:
    """Why a model output was not accepted: ``reason`` is a key of :data:`REJECTION_REASONS`,
    ``detail`` says what exactly (the syntax error, the forbidden import, the count found)."""

    reason: str
    detail: str = ""

    def __post_init__(self) -> None:
        if self.reason not in REJECTION_REASONS:
            raise ValueError(f"unknown rejection reason {self.reason!r}")


@dataclass
class Proposal:
    """A parsed teacher proposal: code defining ``f``, literal argument texts, a hint."""

    code: str
    inputs: list[str]
    message: str = ""
    renamed_from: str = field(default="", compare=False)


# ---------------------------------------------------------------- literals (syntax only)


def _is_number(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return type(node.value) in (int, float, complex)
    return (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, (ast.USub, ast.UAdd))
        and _is_number(node.operand)
    )


def is_literal_node(node: ast.AST) -> bool:
    """Whether ``node`` is a plain literal: what :func:`ast.literal_eval` would accept.

    Constants, signed numbers, complex sums (``1+2j``), lists / tuples / sets / dicts of
    literals, and ``set()``.  Names, calls, starred items, comprehensions are not literals.
    """
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp):
        return _is_number(node)
    if isinstance(node, ast.BinOp):
        return (
            isinstance(node.op, (ast.Add, ast.Sub))
            and _is_number(node.left)
            and isinstance(node.right, ast.Constant)
            and isinstance(node.right.value, complex)
        )
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return all(is_literal_node(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and is_literal_node(k) for k in node.keys) and all(
            is_literal_node(v) for v in node.values
        )
    if isinstance(node, ast.Call):
        return (
            isinstance(node.func, ast.Name) and node.func.id == "set" and not node.args and not node.keywords
        )
    return False


def _parse_expr(text: str) -> ast.expr | None:
    try:
        return ast.parse(text.strip(), mode="eval").body
    except _PARSE_ERRORS:
        return None


def _literal_args(text: str) -> list[ast.expr] | None:
    """The argument nodes of ``text`` read as a call's argument list, if all are literals."""
    try:
        call = ast.parse(f"_({text}\n)", mode="eval").body
    except _PARSE_ERRORS:
        return None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "_"):
        return None
    if call.keywords or not all(is_literal_node(a) for a in call.args):
        return None
    return list(call.args)


def canonical_args(text: str) -> str | None:
    """Canonical literal text of an argument list (``"[1,2],3"`` -> ``"[1, 2], 3"``), or None."""
    args = _literal_args(text)
    return None if args is None else ", ".join(ast.unparse(a) for a in args)


def canonical_literal(text: str) -> str | None:
    """Canonical literal text of one value (``"( 1,2 )"`` -> ``"(1, 2)"``), or None."""
    node = _parse_expr(text)
    return ast.unparse(node) if node is not None and is_literal_node(node) else None


# ---------------------------------------------------------------- the function f


def _bound_names(tree: ast.AST) -> list[str]:
    """Every name the module binds other than by a top-level ``def`` (args, stores, imports,
    nested defs and classes)."""
    names: list[str] = []
    top_defs = {
        id(n) for n in getattr(tree, "body", []) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.append(node.id)
        elif isinstance(node, ast.arg):
            names.append(node.arg)
        elif (
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and id(node) not in top_defs
        ):
            names.append(node.name)
        elif isinstance(node, ast.alias):
            names.append((node.asname or node.name).split(".")[0])
    return names


def _rename_function(code: str, tree: ast.Module, old: str, new: str = "f") -> str:
    """Rename top-level function ``old`` to ``new`` in the source text, keeping its layout.

    Edits the ``def`` name and every ``Name`` node referring to ``old`` at their positions
    (AST column offsets are UTF-8 byte offsets, hence the byte-level edit).
    """
    lines = [line.encode("utf-8") for line in code.split("\n")]
    spots: list[tuple[int, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == old:
            spots.append((node.lineno - 1, node.col_offset))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == old:
            line = lines[node.lineno - 1]
            m = re.compile(rb"def\s+" + re.escape(old.encode()) + rb"\b").search(line, node.col_offset)
            if m:
                spots.append((node.lineno - 1, m.end() - len(old.encode())))
    for row, col in sorted(spots, reverse=True):
        line = lines[row]
        lines[row] = line[:col] + new.encode() + line[col + len(old.encode()) :]
    return "\n".join(line.decode("utf-8") for line in lines)


def _defines_f(tree: ast.Module) -> ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | None:
    found = None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "f":
            found = node
        elif (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "f" for t in node.targets)
            and isinstance(node.value, ast.Lambda)
        ):
            found = node.value
    return found


def ensure_f(code: str) -> tuple[str, str, ast.arguments] | Rejection:
    """``(code, renamed_from, arguments of f)`` with ``f`` defined, or a rejection.

    See the module docstring for the renaming rule.
    """
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        return Rejection("syntax_error", f"line {e.lineno}: {e.msg}")
    except _PARSE_ERRORS as e:
        return Rejection("syntax_error", type(e).__name__)
    f = _defines_f(tree)
    if f is not None:
        return code, "", f.args
    funcs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if len(funcs) != 1:
        names = ", ".join(n.name for n in funcs) or "none"
        return Rejection("no_function_f", f"top-level functions: {names}")
    old = funcs[0].name
    bound = _bound_names(tree)
    used_f = "f" in bound or any(isinstance(n, ast.Name) and n.id == "f" for n in ast.walk(tree))
    if old in bound or used_f:
        return Rejection("no_function_f", f"cannot rename '{old}' to 'f' safely (name reused)")
    renamed = _rename_function(code, tree, old)
    return renamed, old, funcs[0].args


def _arity(args: ast.arguments) -> tuple[int, float]:
    """(fewest, most) positional arguments ``f`` accepts."""
    positional = len(args.posonlyargs) + len(args.args)
    required = positional - len(args.defaults)
    if any(d is None for d in args.kw_defaults):  # a required keyword-only argument
        return positional + 1, -1
    return required, float("inf") if args.vararg else positional


# ---------------------------------------------------------------- proposals

_INPUT_LINE = re.compile(
    r"^[ \t>*\-+]*(?:\d+[.)]\s*)?\**\s*input(?:\s*#?\d+)?\s*\**\s*[:=]\**[ \t]*(.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_INPUTS_LIST = re.compile(
    r"^[ \t>*\-]*\**\s*inputs\s*\**\s*[:=]\**[ \t]*(\[.*)$", re.IGNORECASE | re.MULTILINE
)
_MESSAGE_LINE = re.compile(
    r"^[ \t>*\-]*\**\s*(?:message|hint)\s*\**\s*:\**[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE
)
_TRAILING_OUTPUT = re.compile(r"\s*(?:->|=>|==|\boutput\s*[:=]|\breturns?\b).*$", re.IGNORECASE)


def _strip_ticks(value: str) -> str:
    value = value.strip()
    while len(value) >= 2 and value[0] == value[-1] and value[0] in "`":
        value = value[1:-1].strip()
    return value


def _unwrap_call(value: str, name: str = "f") -> str:
    """``f(3, [1])`` -> ``3, [1]`` when the whole value is one call of ``name``."""
    node = _parse_expr(value)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name:
        segment = ast.get_source_segment(value.strip(), node)
        if segment is not None:
            inner = segment[segment.index("(") + 1 : segment.rindex(")")]
            return inner
    return value


def _clean_input(raw: str) -> str:
    value = _strip_ticks(raw)
    if _literal_args(value) is None:
        value = _unwrap_call(value)
    if _literal_args(value) is None:
        value = _strip_ticks(_TRAILING_OUTPUT.sub("", value))
        value = _unwrap_call(value)
    return value


def _input_texts(rest: str) -> list[str]:
    """The raw input values of the non-code text: ``Input:`` lines before ``Message:``."""
    message = _MESSAGE_LINE.search(rest)
    found = list(_INPUT_LINE.finditer(rest))
    before = [m for m in found if message and m.start() < message.start()]
    return [m.group(1) for m in (before or found)]


def _list_node(text: str) -> ast.List | None:
    """``text`` as a list display; a list cut short (the model ran out of tokens, or rambled on)
    keeps its complete leading items: ``[1, 2, 3, 4, 5, 6, 7, 8,`` -> ``[1, 2, 3, 4, 5, 6, 7, 8]``."""
    text = text.strip().rstrip("`").strip()
    node = _parse_expr(text)
    if isinstance(node, ast.List):
        return node
    cut = len(text)
    for _ in range(_MAX_LIST_REPAIRS):
        cut = text.rfind(",", 0, cut)
        if cut <= 0:
            return None
        node = _parse_expr(text[:cut] + "]")
        if isinstance(node, ast.List):
            return node
    return None


_MAX_LIST_REPAIRS = 64


def _inputs_from_list(rest: str, n_params: int) -> list[str] | None:
    """The items of one ``Inputs: [a, b, ...]`` line, each as the argument text of one call (checked
    to be literals by the caller).  For an ``f`` of several parameters each item must be a tuple
    or list of that many arguments; otherwise each item is one argument."""
    m = _INPUTS_LIST.search(rest)
    node = _list_node(m.group(1)) if m else None
    if node is None or not node.elts:
        return None
    if n_params > 1 and all(
        isinstance(e, (ast.Tuple, ast.List)) and len(e.elts) == n_params for e in node.elts
    ):
        return [", ".join(ast.unparse(x) for x in e.elts) for e in node.elts]  # type: ignore[attr-defined]
    return [ast.unparse(e) for e in node.elts]


def _parse_inputs(rest: str, low: int, high: float, n_inputs: int) -> list[str] | Rejection:
    """The first ``n_inputs`` distinct literal inputs of the non-code text ``rest`` for an ``f``
    taking ``low..high`` arguments, as argument texts; or why there are none."""
    raw = _input_texts(rest)
    if not raw:
        listed = _inputs_from_list(rest, low if low == high else -1)
        if listed is None:
            return Rejection("no_inputs")
        raw = listed
    # The first n_inputs distinct inputs are the task; extra ones are cut (unambiguous), repeats
    # are skipped (a repeated I/O pair shows or checks nothing new), too few is a rejection.
    inputs: list[str] = []
    for k, value in enumerate(raw):
        if len(inputs) == n_inputs:
            break
        if len(value) > MAX_INPUT_CHARS:
            return Rejection("input_too_long", f"input {k + 1}: {len(value)} characters")
        args = _literal_args(_clean_input(value))
        if args is None:
            return Rejection("input_not_literal_syntax", f"input {k + 1}: {value.strip()[:80]!r}")
        if not low <= len(args) <= high:
            want = f"{low}" if low == high else f"{low}..{high}"
            return Rejection(
                "input_arity_mismatch", f"input {k + 1} has {len(args)} arguments, f takes {want}"
            )
        text_args = ", ".join(ast.unparse(a) for a in args)
        if text_args not in inputs:
            inputs.append(text_args)
    if len(inputs) < n_inputs:
        repeats = f" distinct of {len(raw)}" if len(raw) > len(inputs) else ""
        return Rejection("wrong_input_count", f"got {len(inputs)}{repeats}, want {n_inputs}")
    return inputs


def parse_inputs_message(text: str, code: str, n_inputs: int) -> Proposal | Rejection:
    """Parse an AZR induction proposer's reply: ``n_inputs`` inputs and a message for a *given*
    program ``code`` (the proposer writes no code).  Any code block in the reply is ignored; the
    message is required (the solver sees it, AZR's ``parse_inputs_message`` requires one too)."""
    if not text or not text.strip():
        return Rejection("empty_output")
    text = text[:MAX_TEXT_CHARS]
    found = _extract(text)
    rest = text if found is None else text[: found[1]] + "\n" + text[found[2] :]
    ensured = ensure_f(code)
    if isinstance(ensured, Rejection):
        return ensured
    code, _renamed, f_args = ensured
    low, high = _arity(f_args)
    inputs = _parse_inputs(rest, low, high, n_inputs)
    if isinstance(inputs, Rejection):
        return inputs
    m = _MESSAGE_LINE.search(rest)
    message = _strip_ticks(m.group(1))[:MAX_MESSAGE_CHARS].strip() if m else ""
    if not message:
        return Rejection("no_message")
    return Proposal(code=code, inputs=inputs, message=message)


def parse_proposal(
    text: str, n_inputs: int = 5, check_safety: bool = True, require_message: bool = False
) -> Proposal | Rejection:
    """Parse a teacher reply into a :class:`Proposal`, or say why it cannot be used.

    Checks, in order: text present, code found, code length, syntax, ``f`` defined (renaming a
    lone function), safety (:func:`gasp_rl.core.safety.check_code`, unless ``check_safety`` is
    off), inputs present, exact count, input length, literal syntax, arity against ``f``.
    """
    if not text or not text.strip():
        return Rejection("empty_output")
    text = text[:MAX_TEXT_CHARS]
    found = _extract(text)
    if found is None:
        return Rejection("no_code_block")
    code, start, end = found
    rest = text[:start] + "\n" + text[end:]
    if len(code) > MAX_CODE_CHARS:
        return Rejection("code_too_long", f"{len(code)} characters")
    ensured = ensure_f(code)
    if isinstance(ensured, Rejection):
        return ensured
    code, renamed_from, f_args = ensured
    if check_safety:
        from gasp_rl.core.safety import check_code

        problem = check_code(code)
        if problem:
            return Rejection("forbidden_capability", problem)
    low, high = _arity(f_args)
    inputs = _parse_inputs(rest, low, high, n_inputs)
    if isinstance(inputs, Rejection):
        return inputs
    m = _MESSAGE_LINE.search(rest)
    message = _strip_ticks(m.group(1))[:MAX_MESSAGE_CHARS].strip() if m else ""
    return Proposal(code=code, inputs=inputs, message=message, renamed_from=renamed_from)


# ---------------------------------------------------------------- student answers

#: Stop strings for answers that end with their code block (induction, solutions, tests): what a
#: small model writes after the block (explanations, more examples) only costs generation time.
#: Proposals cannot stop there: their inputs and message follow the block.
STOP_AFTER_CODE_BLOCK = ["\n```\n"]

#: ``SamplingParams.stop_pattern`` of a teacher proposal: the reply ends after its ``Message:`` line,
#: once a closed code block and an ``Inputs`` / ``Input`` line came before it, i.e. as soon as
#: :func:`parse_proposal` has everything it reads (the message is the first message line, inputs
#: are the lines before it).  The cut text keeps the whole message line.
STOP_AFTER_MESSAGE_LINE = (
    r"(?ims)^```[ \t]*$.*?^[ \t>*\-+]*(?:\d+[.)]\s*)?\**[ \t]*inputs?\b[^\n]*$.*?"
    r"^[ \t>*\-]*\**[ \t]*(?:message|hint)[ \t]*\**[ \t]*:\**[ \t]*\S[^\n]*(?=\n)"
)

_ANSWER_LINE = re.compile(r"^[ \t>*\-]*\**\s*answer\s*\**\s*:\**[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)


def _answer_text(text: str) -> str | None:
    """The raw answer of a student reply (see the module docstring), or None."""
    m = _ANSWER_LINE.search(text)
    if m:
        value = m.group(1).strip()
        if not value:  # `Answer:` then the value on the next non-empty line
            following = [line for line in text[m.end() :].split("\n") if line.strip()]
            value = following[0].strip() if following else ""
        if value.startswith(_FENCE):
            blocks = fenced_blocks(text[m.start() :])
            value = blocks[0].body if blocks else value
        return value or None
    for block in fenced_blocks(text):
        if block.body.strip() and _parse_expr(block.body) is not None:
            return block.body
    stripped = text.strip()
    if stripped and "\n" not in stripped and _parse_expr(_strip_ticks(stripped)) is not None:
        return stripped
    return None


def _answer_candidates(value: str) -> list[str]:
    value = _strip_ticks(value)
    return [value[:-1].rstrip(), value] if value.endswith(".") else [value]


def parse_deduction_answer(text: str) -> str | Rejection:
    """The predicted output of a deduction reply, as canonical literal text."""
    raw = _answer_text(text or "")
    if raw is None:
        return Rejection("no_answer")
    if len(raw) > MAX_ANSWER_CHARS:
        return Rejection("answer_too_long", f"{len(raw)} characters")
    for value in _answer_candidates(raw):
        node = _parse_expr(value)
        if (  # `f(3) == 8` -> 8
            isinstance(node, ast.Compare)
            and len(node.ops) == 1
            and isinstance(node.ops[0], ast.Eq)
            and isinstance(node.left, ast.Call)
        ):
            node = node.comparators[0]
        if node is not None and is_literal_node(node):
            return ast.unparse(node)
    return Rejection("answer_not_literal_syntax", raw.strip()[:80])


def parse_abduction_answer(text: str) -> str | Rejection:
    """The proposed arguments of an abduction reply, as canonical literal argument text."""
    raw = _answer_text(text or "")
    if raw is None:
        return Rejection("no_answer")
    if len(raw) > MAX_ANSWER_CHARS:
        return Rejection("answer_too_long", f"{len(raw)} characters")
    for value in _answer_candidates(raw):
        node = _parse_expr(value)
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq):
            value = ast.get_source_segment(value.strip(), node.left) or value  # `f(3) == 8` -> f(3)
        args = canonical_args(_unwrap_call(value))
        if args is not None:
            return args
    return Rejection("answer_not_literal_syntax", raw.strip()[:80])


def parse_induction_answer(text: str) -> str | Rejection:
    """The code of an induction reply, defining ``f`` (a lone function is renamed to ``f``).

    Student code is not safety-checked here: it is graded in the sandbox, which contains it.
    """
    if not text or not text.strip():
        return Rejection("empty_output")
    code = extract_code(text)
    if code is None:
        return Rejection("no_code_block")
    if len(code) > MAX_CODE_CHARS:
        return Rejection("code_too_long", f"{len(code)} characters")
    ensured = ensure_f(code)
    return ensured if isinstance(ensured, Rejection) else ensured[0]
