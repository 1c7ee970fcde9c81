"""``gasp report``: the HTML report of run directories, checked as data and in headless Chromium."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from _require import importorskip, missing
from gasp_rl.errors import GaspError
from gasp_rl.report.data import load_run, load_runs, parse_progress, read_jsonl
from gasp_rl.report.html import json_for_script, render_report, write_report
from gasp_rl.report.plots import REQUIRED_TRAINING

HOSTILE_CODE = 'def f(x):\n    return "</script><script>window.__pwned = 1</script>"\n'
HOSTILE_MESSAGE = '<img src=x onerror="window.__pwned = 2"> & </textarea><!--'
REASONS = ("syntax_error", "out_of_band", "novelty_code")


# ---------------------------------------------------------------- a run directory in the records schema


def _proposal(it: int, phase: str, n: int, **kw: Any) -> dict[str, Any]:
    rec = {
        "id": f"it{it}-{phase}-s0-{n}",
        "iteration": it,
        "phase": phase,
        "step": 0,
        "goalpost_id": None,
        "goalpost_title": None,
        "axis": "io",
        "parent_id": None,
        "task_type": "induction",
        "code": f"def f(x):\n    return x + {n}\n",
        "inputs": ["1", "2", "3", "4", "5"],
        "outputs": [str(i + n) for i in range(1, 6)],
        "message": f"add {n}",
        "raw": "```python\n...\n```",
        "valid": True,
        "rejection_reason": None,
        "detail": "",
        "pass_rate": 0.5,
        "n_student": 8,
        "reward": 1.0,
        "accepted": True,
        "similarity_question": 0.3,
        "similarity_code": 0.4,
        "tokens": 80,
    }
    rec.update(kw)
    return rec


def _metrics(it: int, mode: str) -> dict[str, Any]:
    return {
        "iteration": it,
        "mode": mode,
        "time": {
            "lemma": 10.0 + it,
            "lift": 8.0,
            "solver": 5.0,
            "update": 20.0,
            "exec": 1.5,
            "novelty": 0.5,
            "total": 43.0 + it,
        },
        "proposals": {"attempted": 6, "accepted": 3, "by_reason": {"syntax_error": 1, "out_of_band": 2}},
        "acceptance_rate": 0.5,
        "teacher_reward": {"lemma": 0.2 * it, "lift": 0.1 * it},
        "student_reward": {"induction": 0.1, "deduction": 0.2 + 0.1 * it, "abduction": 0.3, "all": 0.2},
        "pass_rate_hist": {"lemma": [0, 1, 2, 0, 0, 1, 0, 0, 0, 0], "lift": [3, 1, 0, 0, 0, 0, 0, 0, 0, 0]},
        "buffer_dissimilarity": {"question": 0.5 - 0.1 * it, "code": None if it == 0 else 0.4},
        "tokens": {"teacher": 1000, "student": 2000},
        "learner": {"loss": 0.1 / (it + 1), "grad_norm": 1.0},
    }


def write_jsonl(path: Path, records: list[Any], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail, encoding="utf-8")


def make_run(
    root: Path, name: str, mode: str = "gasp", seed: int = 0, iterations: int = 3, evals: bool = True
) -> Path:
    """A small run directory written in the records schema of notes/records.md."""
    run = root / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(
        f"gasp:\n  mode: {mode}\n  lemma_band: [0.1, 0.9]\n  lift_band: [0.0625, 0.75]\nrun:\n  seed: {seed}\n"
    )
    meta = {
        "command": "train",
        "mode": mode,
        "seed": seed,
        "created": "2025-01-01T00:00:00",
        "status": "done",
    }
    (run / "run.json").write_text(json.dumps({**meta, "last_iteration": iterations - 1}))
    props, students = [], []
    for it in range(iterations):
        if mode == "azr":
            for n in range(3):
                props.append(
                    _proposal(it, "azr", n, axis=None, task_type=("induction", "deduction", "abduction")[n])
                )
            continue
        for g in range(2):
            gid, title = f"HumanEval/{10 + g}", f"goalpost {g} <b>title</b>"
            lemma = _proposal(it, "lemma", g, goalpost_id=gid, goalpost_title=title, pass_rate=0.25 + 0.1 * g)
            bad = _proposal(
                it,
                "lemma",
                10 + g,
                goalpost_id=gid,
                goalpost_title=title,
                code=None,
                valid=False,
                accepted=False,
                rejection_reason=REASONS[(it + g) % 3],
                pass_rate=None,
                reward=-1.0,
                raw=HOSTILE_MESSAGE,
            )
            lift = _proposal(
                it,
                "lift",
                g,
                parent_id=lemma["id"],
                goalpost_id=gid,
                pass_rate=0.125,
                reward=0.9,
                code=HOSTILE_CODE if g == 0 else "def f(x):\n    return x * 2\n",
                message=HOSTILE_MESSAGE,
            )
            props += [lemma, bad, lift]
            students.append(
                {
                    "iteration": it,
                    "phase": "solver",
                    "source_id": lift["id"],
                    "source_phase": "lift",
                    "task_type": "deduction",
                    "n": 4,
                    "rewards": [1, 0, 0, 1],
                    "mean_reward": 0.5,
                }
            )
    write_jsonl(run / "proposals.jsonl", props, tail='{"torn": ')
    write_jsonl(run / "students.jsonl", students)
    write_jsonl(run / "metrics.jsonl", [_metrics(it, mode) for it in range(iterations)], tail="not json\n")
    if evals:
        (run / "eval").mkdir()
        for it in range(iterations):
            for bench in ("humaneval-heldout", "mbpp-plus"):
                res = {
                    "checkpoint": f"iter_{it:06d}",
                    "iteration": it,
                    "benchmark": bench,
                    "n": 4,
                    "temperature": 0.6,
                    "ks": [1, 4],
                    "pass_at_k": {"1": 0.1 + 0.02 * it, "4": 0.2 + 0.03 * it},
                    "greedy_pass_at_1": 0.12,
                    "n_problems": 20,
                }
                (run / "eval" / f"iter_{it:06d}__{bench}.json").write_text(json.dumps(res))
        (run / "eval" / "broken__x.json").write_text("{ nope")
        (run / "goalposts").mkdir()
        checkpoints = [
            {
                "checkpoint": f"iter_{it:06d}",
                "iteration": it,
                "solved": ["HumanEval/10"] if it >= seed + 1 else [],
            }
            for it in range(iterations)
        ]
        progress = {"n_goalposts": 2, "checkpoints": checkpoints}
        (run / "goalposts" / "progress.json").write_text(json.dumps(progress))
    return run


# ---------------------------------------------------------------- data layer


def test_read_jsonl_skips_torn_and_malformed_lines(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl"
    p.write_text('{"a": 1}\nnot json\n[1, 2]\n\n{"a": 2}\n{"a": ')
    records, bad = read_jsonl(p)
    assert records == [{"a": 1}, {"a": 2}]
    assert bad == 3
    assert read_jsonl(tmp_path / "missing.jsonl") == ([], 0)


def test_load_run_notes_damage_instead_of_failing(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path, "r"))
    assert len(run.metrics) == 3 and len(run.proposals) == 18
    assert any("metrics.jsonl: 1 malformed" in n for n in run.notes)
    assert any("broken__x.json" in n for n in run.notes)
    assert {e.benchmark for e in run.evals} == {"humaneval-heldout", "mbpp-plus"}
    assert run.progress is not None and run.progress.first_solved == {"HumanEval/10": 1}
    assert run.progress.solved_curve() == [(0, 0), (1, 1), (2, 1)]


def test_not_a_run_directory_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(GaspError, match="no such run directory"):
        load_run(tmp_path / "nope")
    with pytest.raises(GaspError, match="not a gasp-rl run directory"):
        load_run(tmp_path)
    with pytest.raises(GaspError):
        load_runs([])


def test_progress_variants() -> None:
    a = parse_progress({"first_solved": {"g1": 3, "g2": {"iteration": 1}, "g3": "iter_000005"}})
    assert a is not None and a.first_solved == {"g1": 3, "g2": 1, "g3": 5}
    b = parse_progress({"checkpoints": {"iter_000002": {"solved": {"g1": 0.0, "g2": 0.01}}}, "total": 7})
    assert b is not None and b.first_solved == {"g2": 2} and b.n_goalposts == 7
    assert parse_progress({"something": "else"}) is None
    assert parse_progress([1, 2]) is None


def test_json_for_script_cannot_close_the_script_element() -> None:
    data = {"code": "</script><script>alert(1)</script>", "m": "<!-- & \u2028"}
    text = json_for_script(data)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == data


# ---------------------------------------------------------------- rendered page (static checks)


def _plot_keys(html: str) -> set[str]:
    return set(re.findall(r'data-plot="([a-z_]+)"', html))


def test_report_has_every_section_and_plot_and_escapes_model_text(tmp_path: Path) -> None:
    runs = [
        make_run(tmp_path, "gasp0"),
        make_run(tmp_path, "gasp1", seed=1),
        make_run(tmp_path, "azr0", mode="azr", evals=False),
    ]
    out = write_report(runs, tmp_path / "sub" / "report.html")
    html = out.read_text()
    for section in ("runs", "training", "evaluation", "explorer"):
        assert f'<section id="{section}">' in html
    assert set(REQUIRED_TRAINING) | {"pass_at_k", "goalposts", "learner"} <= _plot_keys(html)
    # figures are inline SVG data URIs, and they decode
    uris = re.findall(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(uris) == len(_plot_keys(html))
    assert all(base64.b64decode(u).lstrip().startswith(b"<?xml") for u in uris)
    # untrusted text never appears raw: not in the page, not in the JSON block
    assert "<script>window.__pwned" not in html
    assert "<img src=x onerror" not in html
    assert "<b>title</b>" not in html
    assert html.count("<script") == 2  # the JSON block and the explorer, nothing else
    data = json.loads(html.split('<script type="application/json" id="gasp-data">')[1].split("</script>")[0])
    assert [r["label"] for r in data["runs"]] == ["gasp s0", "gasp s1", "azr s0"]
    lifts = [p for p in data["runs"][0]["proposals"] if p["phase"] == "lift"]
    assert lifts[0]["code"] == HOSTILE_CODE and lifts[0]["parent_id"] == "it0-lemma-s0-0"
    # the AZR run has no evaluation: the page says so instead of failing
    assert "azr s0: no evaluation yet" in html
    # the union of two gasp seeds is reported next to each seed
    assert "gasp s0: 1, gasp s1: 1" in html


def test_report_of_an_empty_run_renders_with_notes(tmp_path: Path) -> None:
    run = tmp_path / "fresh"
    run.mkdir()
    (run / "run.json").write_text('{"mode": "gasp", "seed": 3, "status": "running"}')
    html = render_report(load_runs([run]))
    assert "No data yet for teacher rewards" in html
    assert "no proposals.jsonl records yet" in html
    assert "gasp s3: no evaluation yet" in html
    assert _plot_keys(html) == set()


def test_cli_report(tmp_path: Path) -> None:
    run = make_run(tmp_path, "r", iterations=2)
    out = tmp_path / "r.html"
    proc = subprocess.run(["gasp", "report", str(run), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.exists() and "wrote" in proc.stdout
    bad = subprocess.run(["gasp", "report", str(tmp_path / "missing")], capture_output=True, text=True)
    assert bad.returncode == 1 and "no such run directory" in bad.stderr and "Traceback" not in bad.stderr


# ---------------------------------------------------------------- in a real browser, on fake-model runs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
PWNED_CODE = 'def f(x):\n    return "</script><script>window.__pwned = 1</script>" * x\n'


@pytest.fixture(scope="module")
def fake_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A GASP run (3 iterations, evaluated by ``gasp eval`` on two benchmarks) and an AZR run
    (never evaluated) of the fake-model loop, plus one lift whose text is hostile HTML/JS, as a
    model could write it."""
    from gasp_rl.config import load_config
    from gasp_rl.core.tasks import write_jsonl as write_tasks
    from gasp_rl.driver import run_training
    from gasp_rl.eval.command import run_eval
    from gasp_rl.eval.datasets import load_humaneval
    from gasp_rl.wiring import DEFAULT

    root = tmp_path_factory.mktemp("fake-runs")
    goalposts = root / "goalposts.jsonl"
    write_tasks(goalposts, load_humaneval(parity="even")[:4])
    common = [
        "model.backend=fake",
        "gasp.embedder=hash",
        f"gasp.goalposts={goalposts}",
        "gasp.lemmas_per_step=6",
        "sandbox.workers=2",
    ]
    gasp = run_training(
        load_config(None, [*common, f"run.dir={root / 'gasp'}", "mode=gasp", "gasp.iterations=3"])
    )
    azr = run_training(
        load_config(None, [*common, f"run.dir={root / 'azr'}", "mode=azr", "gasp.iterations=2"])
    )
    evals = [[], [f"eval.path={goalposts}"]]
    for bench, extra in zip(("humaneval-heldout", "goalposts"), evals):
        overrides = [*common, f"eval.benchmark={bench}", "eval.limit=3", "eval.n=2", "eval.ks=[1,2]", *extra]
        run_eval(load_config(None, overrides), run_dirs=[gasp], checkpoints=[], out=None, wiring=DEFAULT)
    proposals, _ = read_jsonl(gasp / "proposals.jsonl")
    lemma = next(p for p in proposals if p["phase"] == "lemma" and p["accepted"])
    hostile = {**lemma, "id": "hostile-lift", "phase": "lift", "parent_id": lemma["id"], "code": PWNED_CODE}
    hostile["message"] = HOSTILE_MESSAGE
    with open(gasp / "proposals.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(hostile) + "\n")
    return {"gasp": gasp, "azr": azr, "lemma": lemma, "proposals": proposals}


@pytest.fixture
def browser(tmp_path: Path):
    webdriver = importorskip("selenium.webdriver", "needs selenium (pip install -e '.[dev]')")
    if not (CHROMIUM and CHROMEDRIVER):
        missing("needs Debian packages chromium and chromium-driver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1400,1000",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def test_fake_loop_runs_in_headless_chromium(tmp_path: Path, fake_runs: dict[str, Any], browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    out = write_report([fake_runs["gasp"], fake_runs["azr"]], tmp_path / "report.html")
    browser.get(out.as_uri())
    wait = WebDriverWait(browser, 20)

    for section in ("runs", "training", "evaluation", "explorer"):
        assert browser.find_element(By.ID, section).is_displayed()
    # every plot is there and its SVG decoded into an image
    figures = browser.find_elements(By.CSS_SELECTOR, "figure.plot")
    keys = {f.get_attribute("data-plot") for f in figures}
    assert set(REQUIRED_TRAINING) | {"pass_at_k", "goalposts"} <= keys, keys
    for fig in figures:
        img = fig.find_element(By.TAG_NAME, "img")
        assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 100
    evaluation = browser.find_element(By.ID, "evaluation").text
    assert "humaneval-heldout" in evaluation and "goalposts" in evaluation
    assert "azr s0: no evaluation yet" in evaluation  # the unevaluated run is named, not fatal

    # pick the goalpost, open a lemma: its lift appears (built lazily, on opening)
    lemma = fake_runs["lemma"]
    gid = lemma["goalpost_id"]
    wait.until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, f'#gp-list button[data-goalpost="{gid}"]'))
    ).click()
    node_sel = f'#tree details[data-id="{lemma["id"]}"]'
    node = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, node_sel)))
    lift_sel = f'{node_sel} details[data-id="hostile-lift"]'
    assert not browser.find_elements(By.CSS_SELECTOR, lift_sel)
    node.find_element(By.TAG_NAME, "summary").click()
    lift = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, lift_sel)))
    assert lemma["code"].splitlines()[0] in node.text
    lift.find_element(By.TAG_NAME, "summary").click()
    wait.until(lambda d: "window.__pwned" in lift.text)  # hostile code is shown as text ...
    assert browser.execute_script("return window.__pwned") is None  # ... and never runs

    # filters: "accepted only" leaves exactly the accepted lemmas of the goalpost
    roots = [p for p in fake_runs["proposals"] if p["goalpost_id"] == gid and p["phase"] == "lemma"]
    top = "#tree > details.node"
    assert len(browser.find_elements(By.CSS_SELECTOR, top)) == len(roots)
    browser.find_element(By.ID, "f-accepted").click()
    n_accepted = sum(1 for p in roots if p["accepted"])
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, top)) == n_accepted)
    browser.find_element(By.ID, "f-accepted").click()
    # text search: only the goalpost holding the match is listed, and the match is revealed
    browser.find_element(By.ID, "f-text").send_keys("__pwned")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#gp-list button")) == 1)
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, lift_sel)))

    browser.execute_script("document.getElementById('explorer').scrollIntoView()")
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def test_time_bars_stack_only_the_phases_so_they_add_up_to_the_iteration_total() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from types import SimpleNamespace

    import matplotlib.pyplot as plt

    from gasp_rl.report.plots import _draw_times

    # update, exec and novelty are timed inside lemma / solver: drawing them as bars double-counts
    t = {
        "lemma": 6.0,
        "solver": 3.0,
        "checkpoint": 1.0,
        "update": 4.0,
        "exec": 0.5,
        "novelty": 0.1,
        "total": 10.0,
    }
    fig, ax = plt.subplots()
    assert _draw_times(ax, SimpleNamespace(metrics=[{"iteration": 0, "time": t}]))
    assert sum(p.get_height() for p in ax.patches) == pytest.approx(10.0)
    assert {ln.get_label() for ln in ax.lines} >= {"of which update", "of which exec"}
    plt.close(fig)
