"""The cold-start warm-up: demonstrations in the run's exact formats, correct, disjoint from the
held-out families, and cached by key."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from gasp_rl.algorithms import warmup
from gasp_rl.algorithms.warmup import build_demonstrations, cache_key, warm_up
from gasp_rl.config import load_config
from gasp_rl.core import parsing, prompts
from gasp_rl.core.families import FAMILIES, domain_of_signature, families
from gasp_rl.core.tasks import ProgramTask
from gasp_rl.eval.goalposts import load_goalposts
from gasp_rl.wiring import make_executor

SEEDS = Path(__file__).parent.parent / "src" / "gasp_rl" / "data" / "azr_seed_programs.jsonl"


@pytest.fixture(scope="module")
def executor():
    ex = make_executor(load_config(None, ["sandbox.workers=2"]))
    yield ex
    ex.close()


@pytest.fixture(scope="module")
def seeds():
    return [ProgramTask.from_dict(json.loads(line)) for line in SEEDS.read_text().splitlines()]


@pytest.fixture(scope="module")
def cfg():
    return load_config(None, [])


@pytest.fixture(scope="module")
def demos(cfg, executor, seeds):
    return build_demonstrations(cfg, executor, load_goalposts(cfg.gasp.goalposts), seeds)


def test_every_kind_is_there_in_the_configured_numbers(cfg, demos):
    counts = {k: sum(d.kind == k for d in demos) for k in warmup.KINDS}
    assert counts == {k: cfg.warmup.demos.get(k, 0) for k in warmup.KINDS}


def test_proposals_parse_as_the_run_parses_them(cfg, demos):
    n_io = cfg.gasp.n_public_io + cfg.gasp.n_private_io
    for d in demos:
        if d.kind not in ("lemma", "lift", "one_step", "azr"):
            continue
        if d.kind == "azr" and not d.prefill:  # AZR induction: inputs + message for the given program
            given = parsing.extract_code(d.chat[-1]["content"])
            parsed = parsing.parse_inputs_message(d.answer, given, cfg.azr.induction_inputs)
            assert isinstance(parsed, parsing.Proposal), (parsed, d.answer)
            assert len(set(parsed.inputs)) == cfg.azr.induction_inputs and parsed.message
            continue
        assert d.prefill == cfg.gasp.proposal_prefill  # the run writes it; the answer continues it
        n = 1 if d.kind == "azr" else n_io
        parsed = parsing.parse_proposal(d.prefill + d.answer, n_inputs=n)
        assert isinstance(parsed, parsing.Proposal), (d.kind, parsed, d.answer)
        assert len(set(parsed.inputs)) == n and parsed.message


def test_lemma_chats_are_the_lemma_template(cfg, demos):
    goalposts = load_goalposts(cfg.gasp.goalposts)
    n_io = cfg.gasp.n_public_io + cfg.gasp.n_private_io
    rendered = [prompts.lemma_prompt(g.prompt, axis, n_io) for g in goalposts for axis in prompts.AXES]
    for d in demos:
        if d.kind == "lemma":
            assert d.chat in rendered
        if d.kind == "one_step":
            assert any(
                d.chat == prompts.one_step_prompt(g.prompt, lv, n_io)
                for g in goalposts
                for lv in ("medium", "hard")
            )


def test_chats_come_from_the_run_templates(cfg, executor, seeds, monkeypatch):
    made: list = []
    for name in ("lemma_prompt", "lift_prompt", "one_step_prompt", "azr_proposer_prompt", "student_prompt"):
        real = getattr(prompts, name)

        def record(*a, _real=real, **kw):
            chat = _real(*a, **kw)
            made.append(chat)
            return chat

        monkeypatch.setattr(prompts, name, record)
    out = build_demonstrations(cfg, executor, load_goalposts(cfg.gasp.goalposts), seeds)
    assert all(any(d.chat is m for m in made) for d in out)


def test_student_answers_are_right_in_the_sandbox(cfg, executor):
    from gasp_rl.eval.grading import program_task_job

    # every student answer the builder writes for a program of its pool is graded right by the job
    # the training reward comes from
    pool = warmup.ProgramPool(executor, random.Random("0/warmup"), 5, cfg.warmup.programs_per_family)
    assert pool.tasks and all(t.meta["split"] == "warmup" for t in pool.tasks)
    rng = random.Random(3)
    jobs = []
    for t in pool.tasks[:60]:
        for tt in ("induction", "deduction", "abduction"):
            view = t.view(tt, rng, 2, 3)
            jobs.append(program_task_job(t, view, warmup.student_answer(t, view)))
    assert all(v.passed for v in executor.run(jobs))


def test_no_heldout_family_reaches_the_warmup(demos):
    held = families("heldout")
    assert {d.source for d in demos}.isdisjoint({f.name for f in held})
    bodies = {f.code.split("\n", 1)[1].split("{")[0].strip() for f in held}
    text = "\n".join(json.dumps(d.chat) + d.answer for d in demos)
    leaked = [b for b in bodies if len(b) > 12 and b in text]
    assert not leaked


def test_families_are_disjoint_and_named_once():
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names))
    assert len(families("heldout")) >= 12 and len(families("warmup")) >= 36


def test_goalpost_domain_comes_from_the_signature_only():
    assert domain_of_signature("def g(xs: List[int], k: int) -> int:\n    pass", "g") == "list_int"
    assert domain_of_signature("def g(s: str) -> bool:\n    '''>>> g([1])'''", "g") == "str"
    assert domain_of_signature("def g(a: int, b: int):\n    pass", "g") == "int2"
    assert domain_of_signature("def g(words: list[str]):\n    pass", "g") == "strs"
    assert domain_of_signature("not python (", "g") == "list"


class _Learner:
    def __init__(self):
        self.saved, self.loaded = [], []

    def save(self, path):
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "model.safetensors").write_text("w")
        self.saved.append(path)

    def load(self, path):
        self.loaded.append(path)


class _Finetuner:
    def __init__(self):
        self.calls = 0

    def sft(self, examples, settings):
        self.calls += 1
        return {"steps": len(examples) // settings.batch_size, "loss_first": 2.0, "loss_last": 0.5}


def test_second_warmup_loads_the_cache(tmp_path, executor, seeds):
    c = load_config(None, [f"model.cache_dir={tmp_path}", "warmup.demos={lemma: 4, induction: 4}"])
    goalposts = load_goalposts(c.gasp.goalposts)
    learner, ft = _Learner(), _Finetuner()
    first = warm_up(c, learner, ft, executor, goalposts, seeds, "embedded")
    assert not first.cached and ft.calls == 1 and learner.saved == [first.path]
    second = warm_up(c, learner, ft, executor, goalposts, seeds, "embedded")
    assert second.cached and ft.calls == 1 and learner.loaded == [first.path] and second.key == first.key
    other = load_config(
        None, [f"model.cache_dir={tmp_path}", "warmup.demos={lemma: 4, induction: 4}", "warmup.lr=1e-5"]
    )
    third = warm_up(other, learner, ft, executor, goalposts, seeds, "embedded")
    assert third.key != first.key and ft.calls == 2


def test_cache_key_depends_on_model_data_and_settings(demos):
    k = cache_key("embedded", demos, {"lr": 1e-4})
    assert k == cache_key("embedded", list(demos), {"lr": 1e-4})
    assert k != cache_key("other-model", demos, {"lr": 1e-4})
    assert k != cache_key("embedded", demos[:-1], {"lr": 1e-4})
    assert k != cache_key("embedded", demos, {"lr": 2e-4})


@pytest.fixture(scope="module")
def embedded_policy():
    from gasp_rl.backends.hf import HFPolicy

    return HFPolicy.from_config(load_config(None, []))


@pytest.mark.slow
def test_rows_are_tokenized_as_generation_tokenizes(embedded_policy, demos):
    from gasp_rl.backends.trl_finetune import TrlSFTFinetuner

    policy = embedded_policy
    sample = [d for d in demos if d.kind == "lemma"][:2] + [d for d in demos if d.kind == "deduction"][:2]
    rows, too_long = TrlSFTFinetuner(policy, Path("/tmp")).rows(sample, 4096)
    assert too_long == 0 and len(rows) == 4
    for d, r in zip(sample, rows):
        chat = [*d.chat, {"role": "assistant", "content": d.prefill}] if d.prefill else d.chat
        prompt = policy.encode_chat(chat)  # the ids the sampler starts from
        n = r["completion_mask"].index(1)
        assert r["input_ids"][:n] == prompt and set(r["completion_mask"][n:]) == {1}
        completion = r["input_ids"][n:]
        assert completion[-1] == policy.tokenizer.eos_token_id
        assert policy.tokenizer.decode(completion[:-1]) == d.answer


@pytest.mark.slow
def test_policy_finetuner_lowers_the_loss_of_its_examples(embedded_policy, demos):
    import copy

    from gasp_rl.backends.hf import HFPolicy
    from gasp_rl.backends.trl_finetune import PolicyFinetuner

    policy = HFPolicy(
        copy.deepcopy(embedded_policy.model), embedded_policy.tokenizer, embedded_policy.device
    )  # a private copy: the fixture's weights stay the base model's
    few = [d for d in demos if d.kind == "deduction"][:4]
    settings = load_config(None, ["warmup.batch_size=4", "warmup.epochs=3", "warmup.lr=1e-4"]).warmup
    metrics = PolicyFinetuner(policy, Path("/tmp")).sft(few, settings)
    assert metrics["steps"] == 3 and metrics["examples"] == 4
    assert metrics["loss_last"] < metrics["loss_first"]
