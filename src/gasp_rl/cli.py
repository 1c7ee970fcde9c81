"""The ``gasp`` command line.  Every command takes an optional YAML config followed by dotted
overrides: ``gasp train configs/x.yaml trainer.lr=1e-6 gasp.iterations=2``.

Commands import their algorithm lazily so that ``gasp --help`` and ``gasp exec`` stay fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from gasp_rl.config import Config, ConfigError, load_config

app = typer.Typer(
    name="gasp",
    help="gasp-rl: guided asymmetric self-play (GASP), Absolute Zero, RLVR and Sol-Ver for coding LLMs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _entry() -> None:
    """Runs before every command: library progress bars only on a terminal, dependency warnings we
    cannot act on filtered (gasp_rl._quiet)."""
    from gasp_rl import _quiet

    _quiet.configure()


_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}
ArgsOpt = typer.Argument(None, help="[CONFIG.yaml] [key.sub=value ...]", show_default=False)


def _config(args: list[str] | None) -> Config:
    args = list(args or [])
    path = None
    if args and "=" not in args[0]:
        path = args.pop(0)
    bad = [a for a in args if "=" not in a]
    if bad:
        _fail(f"expected key=value overrides after the config file, got {bad}")
    try:
        return load_config(path, args)
    except ConfigError as e:
        _fail(str(e))
        raise  # unreachable


def _run(fn, args: list[str] | None, resume: Path | None) -> None:
    """A run command: a new run from the config, or ``--resume RUN_DIR`` with the run's own config
    plus the overrides a resumed run may change (``gasp_rl.runs.RESUMABLE_KEYS``)."""
    if resume is None:
        _guard(fn, _config(args))
        return
    overrides = list(args or [])
    not_overrides = [a for a in overrides if "=" not in a]
    if not_overrides:
        _fail(f"a resumed run uses its own config.yaml; give only key=value overrides, got {not_overrides}")
    _guard(fn, None, resume=resume, overrides=overrides)


def _fail(msg: str, code: int = 2) -> None:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _guard(fn, *a, **kw):
    """Run a command body; known user errors become one clear line instead of a traceback."""
    from gasp_rl.errors import GaspError

    try:
        return fn(*a, **kw)
    except (GaspError, ConfigError) as e:
        _fail(str(e), 1)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        raise typer.Exit(130)


@app.command(context_settings=_EXTRA)
def train(
    args: list[str] | None = ArgsOpt,
    resume: Path | None = typer.Option(None, "--resume", help="Continue the run in this directory."),
) -> None:
    """GASP self-play (default), the AZR baseline, an ablation, or GASP + real-data RL (mode=...)."""
    from gasp_rl.driver import run_training

    _run(run_training, args, resume)


@app.command(context_settings=_EXTRA)
def warmup(args: list[str] | None = ArgsOpt) -> None:
    """Cold start for small models: SFT on demonstrations of every role, cached (warmup.*)."""
    from gasp_rl.driver import run_warmup

    path = _guard(run_warmup, _config(args))
    typer.echo(f"warmed weights: {path}  (use model.name_or_path={path} warmup.enabled=false)")


@app.command(context_settings=_EXTRA)
def rlvr(
    args: list[str] | None = ArgsOpt,
    resume: Path | None = typer.Option(None, "--resume", help="Continue the run in this directory."),
) -> None:
    """Plain RL with verifiable rewards (GRPO) on real problems."""
    from gasp_rl.driver import run_rlvr

    _run(run_rlvr, args, resume)


@app.command("solver-verifier", context_settings=_EXTRA)
def solver_verifier(
    args: list[str] | None = ArgsOpt,
    resume: Path | None = typer.Option(None, "--resume", help="Continue the run in this directory."),
) -> None:
    """Sol-Ver: solver/verifier self-play with SFT then DPO."""
    from gasp_rl.driver import run_solver_verifier

    _run(run_solver_verifier, args, resume)


@app.command("eval", context_settings=_EXTRA)
def eval_(
    args: list[str] | None = ArgsOpt,
    run_dir: list[Path] = typer.Option(
        [], "--run", help="Evaluate every checkpoint of this run (repeatable)."
    ),
    checkpoint: list[str] = typer.Option(
        [], "--checkpoint", help="A checkpoint dir or model path (repeatable)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Where results go (default: <run>/eval or eval-out)."
    ),
) -> None:
    """pass@k of a model, checkpoints of runs, or an OpenAI-compatible endpoint."""
    cfg = _config(args)
    from gasp_rl.eval.command import run_eval
    from gasp_rl.wiring import DEFAULT

    _guard(run_eval, cfg, run_dirs=run_dir, checkpoints=checkpoint, out=out, wiring=DEFAULT)


@app.command(context_settings=_EXTRA)
def goalposts(
    args: list[str] | None = ArgsOpt,
    checkpoint: list[str] = typer.Option(
        [], "--checkpoint", help="Extra filter stage: a checkpoint (repeatable)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Goalpost file to write (default: goalposts.output)."
    ),
) -> None:
    """Identify goalposts: training questions no stage solves at pass@k (method.md §7)."""
    cfg = _config(args)
    from gasp_rl.eval.goalposts import run_goalposts
    from gasp_rl.wiring import DEFAULT

    _guard(run_goalposts, cfg, checkpoints=checkpoint, out=out, wiring=DEFAULT)


@app.command()
def report(
    run_dirs: list[Path] = typer.Argument(..., help="One or more run directories."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o"),
) -> None:
    """Write one self-contained HTML report for one or several runs."""
    from gasp_rl.report.html import write_report

    path = _guard(write_report, run_dirs, out)
    typer.echo(f"wrote {path}")


@app.command("exec", context_settings=_EXTRA)
def exec_(
    target: Path = typer.Argument(..., help="A .py program, or a JSONL of tasks/problems/jobs."),
    args: list[str] | None = ArgsOpt,
    call: list[str] = typer.Option(
        [], "--call", help="For a .py file: call f with these literal args (repeatable)."
    ),
    stdin: list[str] = typer.Option([], "--stdin", help="For a .py file: run as a script with this stdin."),
    entry_point: str = typer.Option("f", "--entry-point"),
    as_json: bool = typer.Option(False, "--json", help="Print verdicts as JSON lines."),
) -> None:
    """Run a program or a JSONL of tasks through the sandbox and print verdicts."""
    cfg = _config(args)
    from gasp_rl.sandbox.cli import exec_command

    code = _guard(exec_command, cfg, target, call=call, stdin=stdin, entry_point=entry_point, as_json=as_json)
    raise typer.Exit(code or 0)


@app.command()
def config(
    args: list[str] | None = ArgsOpt,
    plain: bool = typer.Option(False, "--plain", help="Bare YAML, without the field descriptions."),
) -> None:
    """Print the resolved config (defaults + file + overrides) as YAML, each key under a comment
    that describes it."""
    from gasp_rl.config import dump_config

    typer.echo(dump_config(_config(args), describe=not plain), nl=False)


@app.command()
def info(args: list[str] | None = ArgsOpt) -> None:
    """What this machine offers: sandbox isolation layers, the precision the policy computes in (and
    why), optional extras.  Takes the same [CONFIG.yaml] [key=value ...] as the run commands."""
    from gasp_rl.precision import describe as describe_precision
    from gasp_rl.sandbox.isolation import describe_isolation

    cfg = _config(args)
    typer.echo(describe_isolation())
    for line in describe_precision(cfg):
        typer.echo(f"precision: {line}")
    import importlib.util

    for mod in (
        "torch",
        "transformers",
        "trl",
        "peft",
        "vllm",
        "verl",
        "ray",
        "llama_cpp",
        "tensorboard",
        "wandb",
    ):
        typer.echo(f"{mod:>14}: {'available' if importlib.util.find_spec(mod) else 'not installed'}")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
