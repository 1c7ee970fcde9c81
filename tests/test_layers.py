"""The layers of ARCHITECTURE.md, checked on the source: the module import graph of ``gasp_rl``
(every ``import``, at module level or inside a function, absolute or relative) has no cycle, and
``gasp_rl.algorithms``, ``gasp_rl.core`` and ``gasp_rl.eval`` never import ``gasp_rl.backends`` or
``gasp_rl.sandbox`` (the wiring module builds those and hands them in as seams).

Imports under ``if TYPE_CHECKING:`` are counted like any other: none is needed, the seam
protocols live in :mod:`gasp_rl.seams`.  An edge is an explicit import only: that a package's
``__init__`` runs before its submodules is not an edge (a package re-exporting its own submodules
is no cycle), but ``from gasp_rl.pkg import name`` is an edge to ``gasp_rl.pkg`` (its
``__init__``) when ``name`` is not a submodule."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "gasp_rl"
#: Layers that receive seams and must not import a concrete backend or the sandbox.
SEAM_USERS = ("gasp_rl.algorithms", "gasp_rl.core", "gasp_rl.eval")
CONCRETE = ("gasp_rl.backends", "gasp_rl.sandbox")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The ``gasp_rl`` module an imported name refers to (``a.b.c`` -> module ``a.b`` when ``c``
    is a name defined in it)."""
    while target:
        if target in modules:
            return target
        target = target.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    """module -> the ``gasp_rl`` modules it imports (anywhere in its body)."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        package = mod if is_pkg else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = package.split(".")
                    if node.level > 1:
                        base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts)
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for t in targets:
                if not _within(t, PACKAGE):
                    continue
                dep = _resolve(t, modules)
                if dep is not None and dep != mod:
                    graph[mod].add(dep)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    assert "gasp_rl.config" in graph["gasp_rl.runs"]
    assert len(graph) > 50


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_algorithms_core_and_eval_receive_backends_and_sandbox_as_seams():
    bad = [
        f"{mod} imports {dep}"
        for mod, deps in sorted(import_graph().items())
        if any(_within(mod, layer) for layer in SEAM_USERS)
        for dep in sorted(deps)
        if any(_within(dep, c) for c in CONCRETE)
    ]
    assert not bad, "\n".join(bad)


def test_no_module_is_over_700_lines_except_the_stdlib_only_zygote() -> None:
    src = Path(__file__).resolve().parents[1] / "src" / "gasp_rl"
    long = {
        str(p.relative_to(src)): n
        for p in src.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 700 and p.name != "_zygote.py"
    }
    assert not long, f"split these modules (CONTRIBUTING.md): {long}"
