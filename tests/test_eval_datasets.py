"""Benchmark loaders on fixtures in the official formats, and their errors on bad data."""

from __future__ import annotations

import base64
import gzip
import json
import pickle
import zlib
from pathlib import Path

import pytest

from gasp_rl.errors import DataError
from gasp_rl.eval.datasets import (
    decode_lcb_tests,
    lcb_release_files,
    load_benchmark,
    load_evalplus,
    load_humaneval,
    load_livecodebench,
    pickle_string,
)

FIX = Path(__file__).parent / "fixtures"
HEP = FIX / "evalplus" / "HumanEvalPlus.jsonl.gz"
MBPP = FIX / "evalplus" / "MbppPlus.jsonl.gz"
LCB = FIX / "livecodebench"


# ------------------------------------------------------------------ HumanEval and the demo split


def test_humaneval_package_and_demo_split() -> None:
    everything = load_humaneval()
    assert len(everything) == 164
    train = load_benchmark("humaneval-train")
    held = load_benchmark("humaneval-heldout")
    assert len(train) == len(held) == 82
    assert train[0].problem_id == "HumanEval/0" and held[0].problem_id == "HumanEval/1"
    assert all(int(p.problem_id.split("/")[1]) % 2 == 0 for p in train)
    assert not {p.problem_id for p in train} & {p.problem_id for p in held}
    p = everything[3]
    assert (p.kind, p.entry_point, p.source) == ("check", "below_zero", "humaneval")
    assert "def check(candidate)" in p.check_code


def test_limit_and_unknown_benchmark() -> None:
    assert len(load_benchmark("humaneval", limit=5)) == 5
    with pytest.raises(DataError, match="unknown benchmark"):
        load_benchmark("humaneval-minus")


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_humaneval_file_errors_name_file_and_line(tmp_path: Path) -> None:
    good = json.dumps(
        {"task_id": "X/0", "prompt": "def f():\n", "entry_point": "f", "test": "def check(c): pass"}
    )
    f = _write_lines(tmp_path / "he.jsonl", [good, "{not json"])
    with pytest.raises(DataError, match=r"he\.jsonl:2: not valid JSON"):
        load_humaneval(f)
    f = _write_lines(tmp_path / "he2.jsonl", [good, "", json.dumps({"task_id": "X/1", "prompt": "p"})])
    with pytest.raises(DataError, match=r"he2\.jsonl:3: missing field 'entry_point'"):
        load_humaneval(f)
    f = _write_lines(tmp_path / "he3.jsonl", ["[1, 2]"])
    with pytest.raises(DataError, match=r"he3\.jsonl:1: expected a JSON object"):
        load_humaneval(f)
    with pytest.raises(DataError, match="file not found"):
        load_humaneval(tmp_path / "missing.jsonl")


# ------------------------------------------------------------------ EvalPlus


def test_humaneval_plus_fixture() -> None:
    problems = load_evalplus(HEP, "humaneval")
    assert [p.problem_id for p in problems] == ["HumanEval/0", "HumanEval/2", "HumanEval/32"]
    zero = problems[0]
    assert zero.kind == "check" and zero.source == "humaneval-plus"
    assert zero.meta["n_plus_inputs"] == 12 and zero.meta["n_base_inputs"] > 0
    assert "def check(candidate)" in zero.check_code and "_GASP_SPEC_JSON" in zero.check_code
    assert problems[2].meta["oracle"] == "poly_root"  # find_zero is graded by the root oracle
    assert load_benchmark("humaneval-plus", HEP)[1].entry_point == "truncate_number"


def test_mbpp_plus_fixture() -> None:
    problems = load_benchmark("mbpp-plus", MBPP)
    assert [p.problem_id for p in problems] == ["Mbpp/2", "Mbpp/3", "Mbpp/17"]
    assert problems[0].meta["oracle"] == "set_eq"
    assert problems[0].source == "mbpp-plus" and problems[0].prompt.startswith('"""')


def test_evalplus_needs_a_path_and_bad_rows_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="needs eval.path"):
        load_benchmark("mbpp-plus")
    with gzip.open(MBPP, "rt") as fh:
        rows = [json.loads(line) for line in fh]
    rows[1]["base_input"] = "not a list"
    bad = tmp_path / "MbppPlus.jsonl.gz"
    with gzip.open(bad, "wt") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"MbppPlus\.jsonl\.gz:2: field 'base_input' should be list"):
        load_evalplus(bad, "mbpp")
    rows[1]["base_input"] = [1, 2]
    with gzip.open(bad, "wt") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r":2: every item of 'base_input' must be a list"):
        load_evalplus(bad, "mbpp")
    corrupt = tmp_path / "broken.jsonl.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match="broken.jsonl.gz: cannot read"):
        load_evalplus(corrupt, "humaneval")


# ------------------------------------------------------------------ LiveCodeBench


def test_livecodebench_release_versions() -> None:
    assert lcb_release_files("release_v1") == ["test.jsonl"]
    assert lcb_release_files("release_v3") == ["test.jsonl", "test2.jsonl", "test3.jsonl"]
    assert lcb_release_files("v2") == ["test2.jsonl"]
    assert lcb_release_files("v1_v2") == ["test.jsonl", "test2.jsonl"]
    with pytest.raises(DataError, match="unknown LiveCodeBench release_version"):
        lcb_release_files("latest-please")
    assert [p.problem_id for p in load_livecodebench(LCB, "release_v1")] == ["abc900_a", "abc901_b"]
    assert [p.problem_id for p in load_livecodebench(LCB, "v2")] == ["9001", "9002"]
    with pytest.raises(DataError, match=r"needs test3\.jsonl"):
        load_livecodebench(LCB, "release_v3")


def test_livecodebench_rows_and_compressed_private_tests() -> None:
    problems = {p.problem_id: p for p in load_livecodebench(LCB, "release_v2")}
    stdin = problems["abc900_a"]
    assert stdin.kind == "stdin" and stdin.entry_point == ""
    assert [(t.input, t.output) for t in stdin.public_tests] == [("1 2\n", "3\n")]
    assert len(stdin.private_tests) == 2
    two_sum = problems["9001"]  # its private tests are base64 + zlib + pickle compressed
    assert two_sum.kind == "functional" and two_sum.entry_point == "twoSum"
    assert [(t.input, t.output) for t in two_sum.private_tests] == [
        ("[3, 2, 4], 6", "[1, 2]"),
        ("[3, 3], 6", "[0, 1]"),
    ]
    assert two_sum.starter_code.startswith("class Solution")
    assert two_sum.meta["platform"] == "leetcode" and two_sum.contest_date.startswith("2024-12-15")
    assert problems["9002"].public_tests[0].input == "'banana'"


def test_livecodebench_date_windows() -> None:
    ids = [p.problem_id for p in load_benchmark("livecodebench", LCB, release_version="release_v2")]
    assert ids == ["abc900_a", "abc901_b", "9001", "9002"]
    train = load_benchmark("livecodebench-train", LCB, release_version="release_v2")
    assert [p.problem_id for p in train] == ["abc900_a"]  # 2023-05 .. 2024-08
    v5 = load_benchmark("livecodebench-v5", LCB, release_version="release_v2")
    assert [p.problem_id for p in v5] == ["abc901_b", "9001", "9002"]  # 2024-10 .. 2025-02
    window = load_benchmark(
        "livecodebench", LCB, release_version="release_v2", start_date="2024-12-01", end_date="2024-12-31"
    )
    assert [p.problem_id for p in window] == ["9001"]
    with pytest.raises(DataError, match="no problems"):
        load_benchmark("livecodebench", LCB, release_version="release_v1", start_date="2030-01-01")


def _lcb_rows() -> list[dict]:
    return [json.loads(line) for line in (LCB / "test.jsonl").read_text().splitlines()]


def test_livecodebench_malformed_rows(tmp_path: Path) -> None:
    rows = _lcb_rows()
    del rows[1]["contest_date"]
    f = _write_lines(tmp_path / "test.jsonl", [json.dumps(r) for r in rows])
    with pytest.raises(DataError, match=r"test\.jsonl:2: missing field 'contest_date'"):
        load_livecodebench(f)
    rows = _lcb_rows()
    rows[0]["public_test_cases"] = "%%% neither json nor base64 %%%"
    f = _write_lines(tmp_path / "test.jsonl", [json.dumps(r) for r in rows])
    with pytest.raises(DataError, match=r"test\.jsonl:1: public_test_cases: test cases are neither JSON"):
        load_livecodebench(f)
    rows = _lcb_rows()
    rows[0]["private_test_cases"] = json.dumps([{"input": "1", "output": "2", "testtype": "carrier-pigeon"}])
    f = _write_lines(tmp_path / "test.jsonl", [json.dumps(r) for r in rows])
    with pytest.raises(DataError, match=r"test\.jsonl:1: private_test_cases\[0\]: unknown testtype"):
        load_livecodebench(f)
    rows = _lcb_rows()
    rows[1]["contest_date"] = "last tuesday"
    f = _write_lines(tmp_path / "test.jsonl", [json.dumps(r) for r in rows])
    with pytest.raises(DataError, match=r"test\.jsonl:2: contest_date 'last tuesday'"):
        load_livecodebench(f)


class _Boom:
    """An object whose unpickling would run code (os.system): must never be unpickled."""

    def __reduce__(self):  # noqa: ANN204
        import os

        return (os.system, ("echo pwned > /tmp/gasp-should-not-exist",))


def test_compressed_tests_are_never_unpickled() -> None:
    evil = base64.b64encode(zlib.compress(pickle.dumps(_Boom()))).decode()
    with pytest.raises(DataError, match="opcode .*refusing to unpickle"):
        decode_lcb_tests(evil, "row 7")
    assert not Path("/tmp/gasp-should-not-exist").exists()
    # a pickle of a list of strings is not "one string" either
    two = base64.b64encode(zlib.compress(pickle.dumps(["[]", "[]"]))).decode()
    with pytest.raises(DataError, match="opcode|one pickled string"):
        decode_lcb_tests(two, "row 8")
    not_zlib = base64.b64encode(b"plain bytes").decode()
    with pytest.raises(DataError, match="not zlib data"):
        decode_lcb_tests(not_zlib, "row 9")


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_pickled_strings_of_every_protocol_decode(protocol: int) -> None:
    text = json.dumps([{"input": "é" * 300_000, "output": "1", "testtype": "stdin"}])
    assert pickle_string(pickle.dumps(text, protocol=protocol), "x") == text
