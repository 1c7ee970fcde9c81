"""Evaluation (method.md §8) and goalposts (method.md §7).

- :mod:`~gasp_rl.eval.datasets`  benchmark loaders (HumanEval and its demo split, EvalPlus,
  LiveCodeBench, the Hugging Face cache, goalpost files) -> :class:`~gasp_rl.core.tasks.Problem`
- :mod:`~gasp_rl.eval.grading`   answer -> program -> sandbox job
- :mod:`~gasp_rl.eval.runner`    n samples + greedy, resumable per-problem records, pass@k
- :mod:`~gasp_rl.eval.command`   ``gasp eval`` over models, checkpoints and runs; selection
- :mod:`~gasp_rl.eval.goalposts` ``gasp goalposts`` (and :func:`load_goalposts`, from datasets)
- :mod:`~gasp_rl.eval.progress`  goalpost progress of runs (per seed, union, first solve)
- :mod:`~gasp_rl.eval.test_generation`  a verifier's test-generation accuracy (Sol-Ver)

The commands receive their policy and sandbox from :mod:`gasp_rl.wiring` (a
:class:`~gasp_rl.seams.SeamSource`); nothing here imports a backend or the sandbox.
"""
