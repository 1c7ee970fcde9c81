"""Pulling code out of model text.

A tiny model wraps code in fences inconsistently: a ```python block, a bare ``` block, two blocks
(the function, then a usage example), a block cut off by the token limit, or no fence at all.
:func:`extract_code` picks one block by a fixed, documented preference so the same text always
gives the same code.  Nothing here runs or evaluates model text: ``ast.parse`` only checks syntax.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

#: Fence info strings accepted as Python (lower-cased, the first word only).  An untagged fence
#: counts too: the tiny model often writes a bare ``` block for code.
PYTHON_FENCE_TAGS = frozenset({"", "python", "py", "python3", "py3"})

#: Texts longer than this are cut before parsing so a runaway generation cannot make parsing slow.
MAX_TEXT_CHARS = 20_000

_FENCE = "```"
_CODE_START = re.compile(r"^(?:def|async\s+def|class|import|from|@)\b")


@dataclass(frozen=True)
class _Block:
    """One fenced block: its info tag, its (dedented) body, and whether it had a closing fence."""

    tag: str
    body: str
    closed: bool


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
        blocks.append(_Block(tag=tag, body=textwrap.dedent(body).strip("\n"), closed=closed))
        if not closed:
            break
        pos = end + len(_FENCE)
    return blocks


def parses(code: str) -> bool:
    """Whether ``code`` is syntactically valid Python (checked with ``ast.parse``, never run)."""
    try:
        ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def _defines_function(code: str) -> bool:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in tree.body)


def _unfenced_code(text: str) -> str | None:
    """The longest run of lines that parses as Python, starts like code and defines a function.

    A run starts at a column-0 line beginning with ``def``/``class``/``import``/``from``/``@`` and
    extends as far as the lines still parse together (prose after the code ends it).  Requiring a
    top-level ``def`` keeps plain sentences (which can parse as expressions) from counting as code.
    Ties go to the later run.  Trailing top-level bare expressions that are not calls are cut:
    a sentence such as ``that is it`` happens to parse as a comparison.
    """
    lines = text.split("\n")
    best: str | None = None
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
                if _defines_function(chunk) and (best is None or len(chunk) >= len(best)):
                    best = chunk
                break
        i = max(stop, i + 1)
    return best


def _trim_trailing_prose(code: str) -> str:
    """Drop trailing top-level expression statements that are not calls (prose that parsed)."""
    tree = ast.parse(code)
    lines = code.split("\n")
    while tree.body and isinstance(tree.body[-1], ast.Expr) and not isinstance(tree.body[-1].value, ast.Call):
        lines = lines[: tree.body[-1].lineno - 1]
        tree.body.pop()
    return "\n".join(lines).rstrip()


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
    text = text[:MAX_TEXT_CHARS]
    candidates = [b.body for b in fenced_blocks(text) if b.tag in PYTHON_FENCE_TAGS and b.body.strip()]
    if candidates:
        ranked = sorted(
            range(len(candidates)),
            key=lambda k: (parses(candidates[k]), _defines_function(candidates[k]), k),
        )
        return candidates[ranked[-1]]
    return _unfenced_code(text)
