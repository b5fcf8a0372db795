"""`GTA5DriveVectorEnv`: N embedded towns in one process, rendered in one pass."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from gta_env.config import EnvConfig
from gta_env.env import GTA5DriveEnv, action_space_for, make_sim_game, observation_space_for
from gta_env.sim.render import TiledRenderer

_MODES = {
    "next_step": AutoresetMode.NEXT_STEP,
    "same_step": AutoresetMode.SAME_STEP,
    "disabled": AutoresetMode.DISABLED,
}


class GTA5DriveVectorEnv(VectorEnv[dict[str, np.ndarray], np.ndarray, np.ndarray]):
    """## Description

    ``num_envs`` copies of `GTA5Drive-v0`'s embedded world in one process, as a native
    `gymnasium.vector.VectorEnv`::

        envs = gym.make_vec("GTA5Drive-v0", num_envs=64, vectorization_mode="vector_entry_point")

    Each town has its own scene graph, Bullet world, traffic, walkers, RNG and episode state
    (one `GTA5DriveEnv` each, so rewards, unstuck, info and termination are exactly the single
    env's); only the graphics engine is shared: every town's hood (and cinematic) camera draws
    into its own tile of **one** offscreen buffer (`gta_env.sim.render.TiledRenderer`), so a
    step is N physics steps, **one render pass and one readback**. The observations are those of
    ``num_envs`` single envs with the same seeds, bit for bit on the software renderer
    (``tests/gta_env/test_vector.py``).

    ## Spaces

    ``single_observation_space`` / ``single_action_space`` are the single env's;
    ``observation_space`` / ``action_space`` are them batched (a leading ``num_envs`` axis).

    ## Autoreset

    ``autoreset_mode="next_step"`` (the default, Gymnasium's ``NEXT_STEP``): the step that ends a
    town's episode returns its last observation with ``terminated``/``truncated`` set; the
    **next** step ignores that town's action, resets it (a new town from its RNG) and returns
    the reset observation with reward 0 and both flags False. ``"same_step"`` (``SAME_STEP``,
    what CleanRL's PPO uses): the ending step already returns the reset observation; the last
    one is in ``info["final_obs"]`` (an object array, None where no episode ended) and the
    last info in ``info["final_info"]``, as `SyncVectorEnv` does; a step on which some town
    ends renders a second pass for the reset towns. ``"disabled"``: nothing resets by itself;
    call ``reset(options={"reset_mask": mask})`` for the towns that ended.

    ## Info

    Gymnasium's vector convention: every key of the single env's info becomes an array over
    towns (numbers as numeric arrays, anything else as object arrays) with a boolean ``_key``
    mask of the towns that reported it.

    ## Arguments

    ``num_envs``, ``max_episode_steps`` (``gym.make_vec`` passes the registration's 3,600; None:
    no limit), ``autoreset_mode``, and every `EnvConfig` keyword as for ``gym.make``.
    ``backend`` must be ``"sim"`` or ``"auto"`` (which means the embedded world here: a game
    bridge drives one car).

    ## Version History

    * v0: initial release.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": [], "render_fps": 30}

    def __init__(
        self,
        *,
        num_envs: int,
        max_episode_steps: int | None = None,
        autoreset_mode: str | AutoresetMode = "next_step",
        config: EnvConfig | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if max_episode_steps is not None and (
            isinstance(max_episode_steps, bool)
            or not isinstance(max_episode_steps, int)
            or max_episode_steps < 1
        ):
            raise ValueError(
                f"max_episode_steps must be a positive integer or None, got {max_episode_steps!r}"
            )
        if kwargs.get("render_mode") is not None:
            raise ValueError("GTA5DriveVectorEnv has no render_mode; use cinematic=True")
        kwargs.pop("render_mode", None)
        mode = autoreset_mode.value if isinstance(autoreset_mode, AutoresetMode) else autoreset_mode
        if mode not in _MODES:
            raise ValueError(f"autoreset_mode must be one of {sorted(_MODES)}, got {mode!r}")
        if config is not None and kwargs:
            raise ValueError("pass either config= or keyword settings, not both")
        cfg = config or EnvConfig.from_kwargs(**kwargs)
        if cfg.backend == "gta5":
            raise ValueError(
                "GTA5DriveVectorEnv batches the embedded world; backend='gta5' drives one game "
                "car (use gym.make and a SyncVectorEnv of one)"
            )
        self.config = cfg
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.autoreset_mode = _MODES[mode]
        self.metadata = {
            **self.metadata,
            "autoreset_mode": self.autoreset_mode,
            "render_fps": 30 / cfg.frame_skip,
        }
        self.render_mode = None
        cameras = ("hood", "cinematic") if cfg.cinematic else ("hood",)
        sizes = {"hood": cfg.hood_size, "cinematic": cfg.cinematic_size}
        self.tiles = TiledRenderer(
            renderer=cfg.renderer, slots=num_envs, cameras={c: sizes[c] for c in cameras}
        )
        self.envs = [
            GTA5DriveEnv(config=cfg, game=make_sim_game(cfg, cameras, renderer=self.tiles.slot(i)))
            for i in range(num_envs)
        ]
        self.single_observation_space = observation_space_for(cfg)
        self.single_action_space = action_space_for(cfg)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._keys = tuple(self.single_observation_space.spaces)
        self._obs = {
            k: np.zeros((num_envs, *s.shape), s.dtype)  # type: ignore[misc]
            for k, s in self.single_observation_space.spaces.items()
        }
        self._rewards = np.zeros(num_envs, np.float64)
        self._terminations = np.zeros(num_envs, bool)
        self._truncations = np.zeros(num_envs, bool)
        self._autoreset = np.zeros(num_envs, bool)
        self._elapsed = np.zeros(num_envs, np.int64)
        self._started = False

    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset every town (or those of ``options["reset_mask"]``); seeds as `SyncVectorEnv`:
        an int ``s`` seeds town ``i`` with ``s + i``; a list gives one per town."""
        n = self.num_envs
        if seed is None:
            seeds: list[int | None] = [None] * n
        elif isinstance(seed, int):
            seeds = [seed + i for i in range(n)]
        else:
            seeds = list(seed)
            if len(seeds) != n:
                raise ValueError(f"seed list must have {n} entries, got {len(seeds)}")
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if mask is None:
            mask = np.ones(n, bool)
        else:
            mask = np.asarray(mask)
            if mask.shape != (n,) or mask.dtype != bool:
                raise ValueError(f"options['reset_mask'] must be a bool array of shape ({n},)")
            if not self._started and not mask.all():
                raise ValueError("the first reset must reset every town (reset_mask all True)")
        for i in np.flatnonzero(mask):
            self.envs[i]._start(seed=seeds[i], options=options)
            self._elapsed[i] = 0
        self._autoreset[mask] = False
        self._started = True
        infos, _ = self._observe_all(mask, [[] for _ in range(n)])
        return self._copy_obs(), infos

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every town (resetting those that ended last step, see *Autoreset*)."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions)
        expected = (self.num_envs, *self.single_action_space.shape)  # type: ignore[misc]
        if actions.shape != expected:
            raise ValueError(f"actions must have shape {expected}, got {actions.shape}")
        events: list[list[dict[str, Any]]] = [[] for _ in range(self.num_envs)]
        for i, env in enumerate(self.envs):
            if self._autoreset[i]:
                env._start(seed=None, options=None)
                self._elapsed[i] = 0
                self._rewards[i] = 0.0
                self._terminations[i] = self._truncations[i] = False
                continue
            reward, terminated, truncated, events[i] = env._advance(actions[i])
            self._elapsed[i] += 1
            if self.max_episode_steps is not None and self._elapsed[i] >= self.max_episode_steps:
                truncated = True
            self._rewards[i] = reward
            self._terminations[i] = terminated
            self._truncations[i] = truncated
        infos, singles = self._observe_all(np.ones(self.num_envs, bool), events)
        ended = self._terminations | self._truncations
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._autoreset = ended
        elif self.autoreset_mode == AutoresetMode.SAME_STEP and ended.any():
            infos = self._reset_ended(ended, infos, singles)
        return (
            self._copy_obs(),
            self._rewards.copy(),
            self._terminations.copy(),
            self._truncations.copy(),
            infos,
        )

    def close_extras(self, **kwargs: Any) -> None:
        """Close every town, then the shared graphics engine."""
        for env in self.envs:
            env.close()
        self.tiles.close()

    # -- internals -------------------------------------------------------------------------------
    def _observe_all(
        self, mask: np.ndarray, events: list[list[dict[str, Any]]]
    ) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
        """One render pass for every town, then the observations and infos of ``mask``.

        Returns:
            The batched info, and each observed town's own info.
        """
        self.tiles.render()
        infos: dict[str, Any] = {}
        singles: dict[int, dict[str, Any]] = {}
        for i in np.flatnonzero(mask):
            env = self.envs[i]
            obs = env._observe()
            for k in self._keys:
                self._obs[k][i] = obs[k]
            singles[int(i)] = info = env._info(events[i])
            infos = self._add_info(infos, info, int(i))
        return infos, singles

    def _reset_ended(
        self, ended: np.ndarray, infos: dict[str, Any], singles: dict[int, dict[str, Any]]
    ) -> dict[str, Any]:
        """SAME_STEP: keep the ended towns' last observation and info, reset them, observe
        them again (a second render pass) and put their reset info in their place, as
        `SyncVectorEnv` does."""
        for i in np.flatnonzero(ended):
            final_obs = {k: self._obs[k][i].copy() for k in self._keys}
            infos = self._add_info(
                infos, {"final_obs": final_obs, "final_info": singles[int(i)]}, int(i)
            )
            self.envs[i]._start(seed=None, options=None)
            self._elapsed[i] = 0
        _, reset_infos = self._observe_all(ended, [[] for _ in range(self.num_envs)])
        for j, info in reset_infos.items():
            infos = self._add_info(infos, info, j)
        return infos

    def _copy_obs(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self._obs.items()}

    def __repr__(self) -> str:
        return f"GTA5DriveVectorEnv(num_envs={self.num_envs}, renderer={self.config.renderer!r})"
