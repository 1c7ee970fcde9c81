"""Every config field is documented, and ``gasp config`` shows the documentation (issue 16)."""

from __future__ import annotations

from collections.abc import Iterator

import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from gasp_rl.cli import app
from gasp_rl.config import Config, load_config


def _fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str | None]]:
    """(dotted key, description) of every field of ``model`` and of every section below it."""
    for name, field in model.model_fields.items():
        yield prefix + name, field.description
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            yield from _fields(sub, prefix + name + ".")


def _normalised(text: str) -> str:
    return " ".join(text.split())


def _comment_text(output: str) -> str:
    """All ``#`` comment lines of ``gasp config``'s output, joined into one normalised string."""
    parts = [line.strip()[1:] for line in output.splitlines() if line.strip().startswith("#")]
    return _normalised(" ".join(parts))


def test_the_walk_reaches_nested_sections() -> None:
    keys = {k for k, _ in _fields(Config)}
    assert {"gasp.lemma_reward.a", "gasp.lift_reward.b", "trainer.clip_low", "run.seed"} <= keys
    assert len(keys) > 150


def test_every_config_field_has_a_description() -> None:
    missing = [key for key, desc in _fields(Config) if not (desc and desc.strip())]
    assert not missing, f"config fields without a description: {missing}"


def test_gasp_config_prints_every_description_and_stays_loadable_yaml() -> None:
    res = CliRunner().invoke(app, ["config", "gasp.iterations=3"])
    assert res.exit_code == 0, res.output
    comments = _comment_text(res.output)
    absent = [key for key, desc in _fields(Config) if _normalised(desc or "") not in comments]
    assert not absent, f"descriptions missing from `gasp config`: {absent}"
    # the commented output is still a config: it loads back to the same values
    assert Config.model_validate(yaml.safe_load(res.output)) == load_config(None, ["gasp.iterations=3"])


def test_gasp_config_puts_each_description_right_above_its_key() -> None:
    out = CliRunner().invoke(app, ["config"]).output.splitlines()
    lr = next(i for i, line in enumerate(out) if line == "  lr: 1.0e-05")
    above = []
    for line in reversed(out[:lr]):
        if not line.strip().startswith("#"):
            break
        above.insert(0, line.strip()[1:])
    assert _normalised(" ".join(above)) == _normalised(
        Config.model_fields["trainer"].annotation.model_fields["lr"].description
    )


def test_gasp_config_plain_is_the_bare_yaml() -> None:
    res = CliRunner().invoke(app, ["config", "--plain"])
    assert res.exit_code == 0
    assert "#" not in res.output
    assert Config.model_validate(yaml.safe_load(res.output)) == Config()
