"""The config tree (:class:`Config`), loading it from YAML + dotted overrides, and dumping it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from gasp_rl.config.base import ConfigError, _Section
from gasp_rl.config.engine import GenerationConfig, ModelConfig, RunConfig, SandboxConfig, TrainerConfig
from gasp_rl.config.methods import (
    AzrConfig,
    EvalConfig,
    GaspConfig,
    GoalpostConfig,
    RlvrConfig,
    SolverVerifierConfig,
    WarmupConfig,
)


class Config(_Section):
    """The whole tree.  ``gasp <command> [config.yaml] [key.sub=value ...]``."""

    model: ModelConfig = Field(ModelConfig(), description="Which policy to load and where it runs.")
    generation: GenerationConfig = Field(
        GenerationConfig(), description="Sampling of training rollouts (teacher and student)."
    )
    trainer: TrainerConfig = Field(
        TrainerConfig(), description="The clipped policy-gradient learner (method.md 6)."
    )
    sandbox: SandboxConfig = Field(SandboxConfig(), description="Limits and isolation of the code executor.")
    gasp: GaspConfig = Field(GaspConfig(), description="GASP self-play and its ablations (method.md 3-5).")
    azr: AzrConfig = Field(AzrConfig(), description="The Absolute Zero baseline, mode=azr (method.md 4).")
    rlvr: RlvrConfig = Field(
        RlvrConfig(), description="Real-data RL with GRPO: gasp rlvr and mode=gasp_plus_rl."
    )
    eval: EvalConfig = Field(
        EvalConfig(), description="gasp eval: pass@k and held-out reasoning (method.md 8)."
    )
    goalposts: GoalpostConfig = Field(
        GoalpostConfig(), description="gasp goalposts: goalpost identification (method.md 7)."
    )
    solver_verifier: SolverVerifierConfig = Field(
        SolverVerifierConfig(), description="gasp solver-verifier: Sol-Ver (method.md 9)."
    )
    warmup: WarmupConfig = Field(
        WarmupConfig(), description="Cold-start fine-tune for small models (not in the paper)."
    )
    run: RunConfig = Field(RunConfig(), description="Run directory, seed, time budget and loggers.")


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key '{key}'")
        else:
            lines.append(f"bad value for '{key}': {e['msg']} (got {e.get('input')!r})")
    return f"invalid config ({source}): " + "; ".join(lines)


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override '{item}' must look like key.sub=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{item}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each ``a.b.c=value`` (value parsed as YAML) into a nested dict, in place."""
    for item in overrides:
        path, value = _parse_override(item)
        # `mode=azr` is the documented short form of `gasp.mode=azr`
        if path == ["mode"]:
            path = ["gasp", "mode"]
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override '{item}': '{part}' is not a section")
            node = child
        node[path[-1]] = value
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a config from an optional YAML file plus dotted overrides.  Raises :class:`ConfigError`."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise ConfigError(f"config file {p} is not valid YAML: {e}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {p} must hold a mapping at the top level")
        data = loaded
    if overrides:
        apply_overrides(data, overrides)
        source += " + command line"
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(e, source)) from None


def dump_config(cfg: Config, describe: bool = False) -> str:
    """The resolved config as YAML (written into every run directory).

    ``describe=True`` (what ``gasp config`` prints) puts each field's description as ``#`` comment
    lines above its key; the text is still YAML that loads back to the same config."""
    data = cfg.model_dump(mode="json")
    if not describe:
        return yaml.safe_dump(data, sort_keys=False)
    lines: list[str] = []
    _describe_into(lines, type(cfg), data, 0)
    return "\n".join(lines) + "\n"


def _describe_into(lines: list[str], model: type[BaseModel], data: dict[str, Any], indent: int) -> None:
    pad = " " * indent
    for name, field in model.model_fields.items():
        for chunk in textwrap.wrap(
            " ".join((field.description or "").split()),
            width=max(40, 98 - indent),
            break_on_hyphens=False,
            break_long_words=False,
        ):
            lines.append(f"{pad}# {chunk}")
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            lines.append(f"{pad}{name}:")
            _describe_into(lines, sub, data[name], indent + 2)
        elif isinstance(data[name], str) and "\n" in data[name]:
            # a JSON string is a YAML double-quoted scalar: one line, whatever the indentation
            lines.append(f"{pad}{name}: {json.dumps(data[name])}")
        else:
            text = yaml.safe_dump({name: data[name]}, sort_keys=False).rstrip("\n")
            lines.extend(pad + line for line in text.splitlines())
