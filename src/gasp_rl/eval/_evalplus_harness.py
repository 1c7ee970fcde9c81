# ruff: noqa: F821
"""EvalPlus differential test, run INSIDE THE SANDBOX as the ``test_code`` of a ``check`` job.

This file is never imported by gasp-rl: :func:`gasp_rl.eval.harness.evalplus_check_code` reads it
as text and prepends one line ``_GASP_SPEC_JSON = '...'`` holding the reference solution, inputs,
tolerance and oracle.  It runs with the standard library only (the sandbox interpreter starts
with ``-I -S``), after the candidate's code, in the candidate's namespace; every name here is
prefixed ``_gasp_`` except ``check``, which the sandbox calls as ``check(<entry_point>)``.

Semantics follow EvalPlus' ``unsafe_execute``: the expected output of an input is the reference
solution's output; a candidate output matches if it is equal, or -- when a tolerance applies
(``atol`` > 0, or the expected value is float(s), then ``atol`` = 1e-6) -- if it has the same type
(and length) and is element-wise within ``atol + 1e-7 * |expected|``.  Special oracles:
``poly_root`` (|poly(xs, out)| <= atol), ``set_eq``, ``not_none``, ``always``, ``zero_ok``.
"""

import copy as _gasp_copy
import json as _gasp_json
import math as _gasp_math

_GASP_SPEC = _gasp_json.loads(_GASP_SPEC_JSON)


def _gasp_is_floats(x):
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    return False


def _gasp_allclose(out, exp, atol):
    if isinstance(out, (list, tuple)) or isinstance(exp, (list, tuple)):
        if not (isinstance(out, (list, tuple)) and isinstance(exp, (list, tuple))) or len(out) != len(exp):
            return False
        return all(_gasp_allclose(a, b, atol) for a, b in zip(out, exp))
    if not isinstance(out, (int, float)) or not isinstance(exp, (int, float)):
        return False
    return abs(out - exp) <= atol + 1e-07 * abs(exp)


def _gasp_poly(xs, x):
    return sum(c * _gasp_math.pow(x, i) for i, c in enumerate(xs))


def _gasp_matches(out, exp, inp, atol, oracle):
    if oracle == "poly_root":
        return abs(_gasp_poly(*inp, out)) <= atol
    exact = out == exp
    if oracle == "set_eq":
        exact = set(out) == set(exp)
    elif oracle == "not_none":
        exact = out == exp if isinstance(out, bool) else exp == (out is not None)
    elif oracle == "always":
        exact = True
    elif oracle == "zero_ok":
        exact = exact or out == 0
    if atol == 0 and _gasp_is_floats(exp):
        atol = 1e-06
    if not exact and atol != 0:
        return type(out) is type(exp) and _gasp_allclose(out, exp, atol)
    return bool(exact)


def check(candidate):
    spec = _GASP_SPEC
    namespace = {"__name__": "_gasp_reference"}
    exec(spec["reference"], namespace)
    reference = namespace[spec["entry_point"]]
    graded = 0
    for i, inp in enumerate(spec["inputs"]):
        try:
            expected = reference(*_gasp_copy.deepcopy(inp))
        except Exception:
            continue  # an input the reference itself rejects cannot grade anything
        out = candidate(*_gasp_copy.deepcopy(inp))
        if not _gasp_matches(out, expected, inp, spec["atol"], spec["oracle"]):
            raise AssertionError(f"wrong output on input {i}")
        graded += 1
    if graded == 0:
        raise AssertionError("no input could be graded")
