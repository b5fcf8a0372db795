"""Reinforcement learning on `GTA5Drive-v0`: fine-tuning behaviour-cloning models with
Stable-Baselines3 (extra ``rl``), and examples of the env in other training loops.

* :mod:`agents.rl.policies`: SB3 features extractor and policies built from a BC model,
  :func:`~agents.rl.policies.bc_to_sb3` and :func:`~agents.rl.policies.export_driving_model`;
* :mod:`agents.rl.finetune`: ``gta5drive finetune`` (vectorised envs, critic warm-up, held-out
  evaluation, BC-format checkpoints);
* :mod:`agents.rl.cleanrl_ppo`: a CleanRL-style single-file PPO using the env by its id.

Nothing here is imported by ``import agents``: SB3 is optional.
"""
