"""Imported by verl itself (``actor_rollout_ref.model.external_lib``) in every process that builds
a model config: registers gasp-rl's TRR++ advantage estimator and reward manager with verl's
registries there.  Importing this module is its whole purpose.
"""

from gasp_rl.scale.verl_adapter import register_verl_estimators, verl_reward_manager_cls

register_verl_estimators()
verl_reward_manager_cls()
