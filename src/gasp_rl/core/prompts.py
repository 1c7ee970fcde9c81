"""Chat prompts rendered from Jinja2 template files (``src/gasp_rl/prompts/*.j2``).

A prompt lives once, as a template file, never as a string literal in algorithm code.  One file
holds a whole chat: lines ``{# system #}``, ``{# user #}`` and ``{# assistant #}`` (Jinja comments,
so the file stays valid Jinja) start the messages.  Each message is rendered on its own, so text
inserted through a variable (a goalpost, model-written code) can never open a new message.

Every template contains ONE complete worked example as a prior user / assistant exchange: with a
plain instruction the 135M embedded model scores exactly 0 (MEASUREMENTS.md), with one example it
follows the format often enough for RL to learn.

Templates and their variables (``n_inputs`` defaults to 5 wherever it appears):

===========================  ================================================================
``lemma``                    ``goalpost`` (question text), ``axis`` (``io`` | ``f``)
``lift``                     ``lemma`` (``code``, ``io`` [``args``, ``output``], ``message``), ``axis``
``one_step``                 ``goalpost``, ``difficulty`` (``medium`` | ``hard``)
``azr_propose_induction``    ``references`` (programs with ``code`` and ``io``)
``azr_propose_deduction``    ``references``
``azr_propose_abduction``    ``references``
``induction``                ``message``, ``public`` (pairs with ``args`` and ``output``)
``deduction``                ``code``, ``args``
``abduction``                ``code``, ``output``
===========================  ================================================================

Objects are read by attribute or key, so dataclasses (:class:`~gasp_rl.core.tasks.ProgramTask`,
:class:`~gasp_rl.core.tasks.IOPair`) and plain dicts both work.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import jinja2

from gasp_rl.core.tasks import AbductionView, DeductionView, InductionView, ProgramTask
from gasp_rl.errors import GaspError

Message = dict[str, str]
Chat = list[Message]
Axis = Literal["io", "f"]

#: Where the packaged templates live.
TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "prompts"

#: The difficulty axes of method.md §3; their descriptions live in ``prompts/_axes.j2``.
AXES: tuple[str, ...] = ("io", "f")

_ROLE_LINE = re.compile(r"^\{#-?\s*(system|user|assistant)\s*-?#\}[ \t]*$", re.MULTILINE)


class PromptError(GaspError):
    """A template is missing, malformed, or rendered without a variable it needs."""


class PromptLibrary:
    """The chat templates of one directory (the packaged one by default).

    Files whose name starts with ``_`` are partials (macros for ``{% import %}``), not prompts.
    Pointing a library at another directory lets a user try their own prompts without code edits.
    """

    def __init__(self, directory: str | Path = TEMPLATE_DIR) -> None:
        self.directory = Path(directory)
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.directory)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._cache: dict[str, list[tuple[str, jinja2.Template]]] = {}

    @cached_property
    def names(self) -> tuple[str, ...]:
        """The prompt names available (file stems, partials excluded)."""
        return tuple(sorted(p.stem for p in self.directory.glob("*.j2") if not p.stem.startswith("_")))

    def _messages(self, name: str) -> list[tuple[str, jinja2.Template]]:
        if name not in self._cache:
            path = self.directory / f"{name}.j2"
            if name.startswith("_") or not path.is_file():
                raise PromptError(
                    f"no prompt template '{name}' in {self.directory} (available: {', '.join(self.names)})"
                )
            self._cache[name] = split_messages(path.read_text(encoding="utf-8"), self._env, str(path))
        return self._cache[name]

    def render(self, name: str, /, **variables: Any) -> Chat:
        """Render template ``name`` into a chat (a list of ``{"role", "content"}`` messages)."""
        chat: Chat = []
        for role, template in self._messages(name):
            try:
                content = template.render(**variables).strip()
            except jinja2.UndefinedError as e:
                raise PromptError(f"prompt '{name}': {e.message}") from None
            chat.append({"role": role, "content": content})
        return chat


def split_messages(
    source: str, env: jinja2.Environment, origin: str = "<string>"
) -> list[tuple[str, jinja2.Template]]:
    """Cut a template source at its role lines and compile each message body separately.

    Text before the first role line is a header (documentation comment, ``{% import %}`` lines):
    it is prepended to every message, so it must render to nothing but whitespace.  A template
    must end with a user message: the model continues after it.
    """
    marks = list(_ROLE_LINE.finditer(source))
    if not marks:
        raise PromptError(f"{origin}: no '{{# user #}}' style role line")
    header = source[: marks[0].start()]
    parts: list[tuple[str, jinja2.Template]] = []
    for k, m in enumerate(marks):
        end = marks[k + 1].start() if k + 1 < len(marks) else len(source)
        try:
            parts.append((m.group(1), env.from_string(header + source[m.end() : end])))
        except jinja2.TemplateSyntaxError as e:
            raise PromptError(f"{origin}: template syntax error: {e.message}") from None
    if parts[-1][0] != "user":
        raise PromptError(f"{origin}: the last message must be the user's")
    return parts


_DEFAULT: PromptLibrary | None = None


def default_library() -> PromptLibrary:
    """The packaged templates (created once)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = PromptLibrary()
    return _DEFAULT


def render_chat(name: str, /, **variables: Any) -> Chat:
    """Render a packaged prompt template; see the module docstring for names and variables."""
    return default_library().render(name, **variables)


# ---------------------------------------------------------------- typed helpers for the loops


def _check_axis(axis: str) -> None:
    if axis not in AXES:
        raise PromptError(f"difficulty axis must be one of {AXES}, got {axis!r}")


def lemma_prompt(goalpost: str, axis: str, n_inputs: int = 5, references: Sequence[ProgramTask] = ()) -> Chat:
    """Teacher, lemma phase: shown the goalpost and the axis, propose an easier induction task.

    ``references``: accepted tasks the proposal must differ from (``gasp.teacher_references``,
    beyond the paper); with none the prompt is the paper's."""
    _check_axis(axis)
    return render_chat("lemma", goalpost=goalpost, axis=axis, n_inputs=n_inputs, references=list(references))


def lift_prompt(
    lemma: ProgramTask, axis: str, n_inputs: int = 5, references: Sequence[ProgramTask] = ()
) -> Chat:
    """Teacher, lift phase: shown only the accepted lemma, propose a harder task on the same axis
    (``references`` as in :func:`lemma_prompt`)."""
    _check_axis(axis)
    return render_chat("lift", lemma=lemma, axis=axis, n_inputs=n_inputs, references=list(references))


def one_step_prompt(goalpost: str, difficulty: Literal["medium", "hard"], n_inputs: int = 5) -> Chat:
    """Teacher of the one-step ablations: shown the goalpost, propose a medium or hard task."""
    if difficulty not in ("medium", "hard"):
        raise PromptError(f"one-step difficulty must be 'medium' or 'hard', got {difficulty!r}")
    return render_chat("one_step", goalpost=goalpost, difficulty=difficulty, n_inputs=n_inputs)


def azr_proposer_prompt(task_type: str, references: Sequence[ProgramTask], n_inputs: int = 5) -> Chat:
    """AZR proposer for ``task_type``, shown ``references`` (K programs drawn from its buffer)."""
    if task_type not in ("induction", "deduction", "abduction"):
        raise PromptError(f"unknown task type {task_type!r}")
    return render_chat(f"azr_propose_{task_type}", references=list(references), n_inputs=n_inputs)


def student_prompt(view: InductionView | DeductionView | AbductionView) -> Chat:
    """The student question for a task view (template chosen by ``view.type``).

    Only what the student may see is passed: the private I/O pairs of an induction view and the
    answer of a deduction / abduction view never reach the template.
    """
    if isinstance(view, InductionView):
        return render_chat("induction", message=view.message, public=view.public)
    if isinstance(view, DeductionView):
        return render_chat("deduction", code=view.code, args=view.args)
    if isinstance(view, AbductionView):
        return render_chat("abduction", code=view.code, output=view.output)
    raise PromptError(f"not a student view: {type(view).__name__}")
