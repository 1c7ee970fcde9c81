"""Static capability check of proposed programs (method.md §5: "uses a forbidden capability").

A task program must be a pure, deterministic function of its arguments.  :func:`check_code`
rejects, before anything runs, code that reaches for the outside world or for interpreter
internals.  This is a *validity* filter that keeps proposals meaningful and records a precise
reason; it is NOT the security boundary.  Model code only ever runs in the sandbox executor
(isolated process, rlimits, namespaces, seccomp), which stays safe even for code that slips past
this check.  The check reads the code with ``ast.parse`` and never runs or compiles it.

What is forbidden
-----------------
1. **Imports** of any module outside :data:`ALLOWED_MODULES` (pure computation only: math,
   itertools, functools, operator, collections, heapq, bisect, string, re, typing, dataclasses,
   enum, fractions, decimal, statistics, copy, numbers, abc, textwrap, unicodedata, json, array,
   calendar, cmath, __future__).  This excludes the file system (os, pathlib, shutil, io, glob,
   tempfile), processes (subprocess, multiprocessing, signal), the network (socket, http, urllib,
   ssl), randomness (random, secrets, uuid), time (time, datetime), threads (threading, _thread,
   asyncio, concurrent), native code (ctypes, cffi) and introspection / code loading (sys,
   inspect, gc, importlib, builtins, pickle, marshal, types, code, ...).  Relative imports are
   forbidden.
2. **Builtins** in :data:`FORBIDDEN_BUILTINS`, by name or as ``builtins.X``: code execution
   (exec, eval, compile, __import__), namespace access (globals, locals, vars), input / files
   (open, input), process control (exit, quit, breakpoint, help) and ``id`` (an address, differs
   between runs).
3. **Dunder attributes** (``x.__class__``) except the harmless data-model methods in
   :data:`ALLOWED_DUNDER_ATTRIBUTES`, and frame / code object attributes (``f_globals``,
   ``gi_frame``, ``co_code``, ...): the classic ways out of a restricted namespace.
4. **Dunder names** other than ``__name__`` and ``__doc__`` (``__builtins__``, ``__loader__``...).
5. ``getattr`` / ``setattr`` / ``delattr`` / ``hasattr`` whose attribute is not a string literal,
   or is a literal starting with ``_``: a computed attribute name defeats rule 3.
6. **String literals mentioning an escape dunder** (``"{0.__class__}"``, ``"__globals__"``):
   they feed ``str.format`` field access or computed ``getattr``.

Determinism hazards that are not capabilities (iteration order of sets of strings across
processes, ``hash`` of strings) are caught later by running ``f`` twice in fresh interpreters.
"""

from __future__ import annotations

import ast

ALLOWED_MODULES: frozenset[str] = frozenset(
    {
        "__future__",
        "abc",
        "array",
        "bisect",
        "calendar",
        "cmath",
        "collections",
        "copy",
        "dataclasses",
        "decimal",
        "enum",
        "fractions",
        "functools",
        "heapq",
        "itertools",
        "json",
        "math",
        "numbers",
        "operator",
        "re",
        "statistics",
        "string",
        "textwrap",
        "typing",
        "unicodedata",
    }
)

FORBIDDEN_BUILTINS: frozenset[str] = frozenset(
    {
        "__import__",
        "breakpoint",
        "compile",
        "eval",
        "exec",
        "exit",
        "globals",
        "help",
        "id",
        "input",
        "locals",
        "open",
        "quit",
        "vars",
    }
)

ALLOWED_DUNDER_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "__init__",
        "__name__",
        "__doc__",
        "__len__",
        "__iter__",
        "__next__",
        "__contains__",
        "__getitem__",
        "__setitem__",
        "__eq__",
        "__ne__",
        "__lt__",
        "__le__",
        "__gt__",
        "__ge__",
        "__hash__",
        "__repr__",
        "__str__",
        "__add__",
        "__sub__",
        "__mul__",
    }
)

ALLOWED_DUNDER_NAMES: frozenset[str] = frozenset({"__name__", "__doc__"})

#: Attributes of frames, generators, coroutines, tracebacks and code objects.
FORBIDDEN_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_back",
        "f_code",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "cr_code",
        "ag_frame",
        "ag_code",
        "tb_frame",
        "tb_next",
        "co_code",
        "func_globals",
        "mro",
    }
)

_ATTRIBUTE_BUILTINS = frozenset({"getattr", "setattr", "delattr", "hasattr"})

#: Dunder names whose mere mention in a string literal is treated as an escape attempt.
ESCAPE_DUNDERS: tuple[str, ...] = (
    "__class__",
    "__bases__",
    "__base__",
    "__mro__",
    "__subclasses__",
    "__globals__",
    "__builtins__",
    "__code__",
    "__closure__",
    "__dict__",
    "__getattribute__",
    "__import__",
    "__loader__",
    "__spec__",
    "__reduce__",
    "__reduce_ex__",
    "__self__",
    "__func__",
    "__module__",
)


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _import_problem(module: str | None, level: int) -> str | None:
    if level:
        return "relative import"
    if module is None or module.split(".")[0] not in ALLOWED_MODULES:
        return f"import of module '{module}'"
    return None


def _call_problem(node: ast.Call) -> str | None:
    func = node.func
    name = func.id if isinstance(func, ast.Name) else None
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "builtins":
        name = func.attr
    if name in _ATTRIBUTE_BUILTINS:
        if len(node.args) < 2:
            return f"{name}() without a literal attribute name"
        attr = node.args[1]
        if not (isinstance(attr, ast.Constant) and isinstance(attr.value, str)):
            return f"{name}() with a computed attribute name"
        if attr.value.startswith("_"):
            return f"{name}() of private attribute '{attr.value}'"
    return None


def _node_problem(node: ast.AST) -> str | None:
    """The capability one AST node uses, or None."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            problem = _import_problem(alias.name, 0)
            if problem:
                return problem
    elif isinstance(node, ast.ImportFrom):
        return _import_problem(node.module, node.level)
    elif isinstance(node, ast.Name):
        if node.id in FORBIDDEN_BUILTINS:
            return f"use of builtin '{node.id}'"
        if _is_dunder(node.id) and node.id not in ALLOWED_DUNDER_NAMES:
            return f"use of name '{node.id}'"
    elif isinstance(node, ast.Attribute):
        if (_is_dunder(node.attr) and node.attr not in ALLOWED_DUNDER_ATTRIBUTES) or (
            node.attr in FORBIDDEN_ATTRIBUTES
        ):
            return f"access to attribute '{node.attr}'"
        if (
            isinstance(node.value, ast.Name)
            and node.value.id == "builtins"
            and node.attr in FORBIDDEN_BUILTINS
        ):
            return f"use of builtin '{node.attr}'"
    elif isinstance(node, ast.Call):
        return _call_problem(node)
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        for dunder in ESCAPE_DUNDERS:
            if dunder in node.value:
                return f"string literal mentioning '{dunder}'"
    return None


def check_code(code: str) -> str | None:
    """Why ``code`` is not an acceptable task program, or ``None`` if it passes.

    The reason is a short human-readable phrase naming the first forbidden construct in
    source order (for example ``"import of module 'os'"`` or ``"use of builtin 'open'"``).
    Code that does not parse gets ``"syntax error: ..."``.
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError) as e:
        return f"syntax error: {getattr(e, 'msg', str(e))}"
    except (MemoryError, RecursionError):
        return "syntax error: code nested too deeply"
    try:
        nodes = sorted(
            ast.walk(tree),
            key=lambda n: (
                getattr(n, "lineno", 0),
                getattr(n, "col_offset", 0),
                getattr(n, "end_lineno", 0),
                getattr(n, "end_col_offset", 0),
            ),
        )
    except RecursionError:
        return "syntax error: code nested too deeply"
    for node in nodes:
        problem = _node_problem(node)
        if problem:
            return problem
    return None
