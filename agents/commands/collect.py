"""`gta5drive collect`: record noisy-expert demonstrations with parallel workers into a store."""

from __future__ import annotations

import argparse
from pathlib import Path

from agents.flags import add_config_flags, config_from_args
from imitation.balance import REQUIRE_MODES, SCHEMES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``collect`` subcommand (flags, help and defaults from :class:`CollectConfig`)."""
    from imitation.collect import CollectConfig
    from imitation.dagger import TakeoverConfig
    from imitation.storage import StorageConfig

    p = subparsers.add_parser(
        "collect",
        help="record expert demonstrations with K parallel workers (noise, balancing on the fly)",
        description=(
            "Drive towns of the embedded world with the built-in expert, perturbing its executed "
            "actions (labels stay clean, so the data holds recoveries), and write one sample per "
            "1/30 s into the store at --out. Workers drive disjoint towns; Ctrl-C stops cleanly "
            "(workers flush), a killed worker loses at most its chunk in flight, rerunning on "
            "the same --out appends. Details: docs/data.md."
        ),
    )
    add_config_flags(
        p,
        CollectConfig,
        only=(
            "out",
            "samples",
            "workers",
            "balance",
            "require",
            "warmup",
            "traffic",
            "weather",
            "seed",
            "hood_size",
            "cinematic",
            "episode_steps",
        ),
        names={"hood_size": "hood"},
        required=("out", "samples"),
        choices={"balance": sorted(SCHEMES), "require": REQUIRE_MODES},
    )
    p.add_argument(
        "--noise",
        default="default",
        help=(
            "'default', 'recovery', 'off', or OUTPUT=PROB/MAGNITUDE/MIN-MAX[,...], e.g. "
            "'steering=0.03/0.3/5-20,throttle_brake=0.01/0.5/10-30'"
        ),
    )
    p.add_argument(
        "--driver",
        type=Path,
        default=None,
        metavar="CHECKPOINT",
        help=(
            "DAgger: a checkpoint file or run folder that drives instead of the expert, which "
            "still labels every sample and takes over when the model is stuck or off its route "
            "(use --noise off)"
        ),
    )
    add_config_flags(
        p,
        TakeoverConfig,
        prefix="takeover_",
        names={f: f"takeover_{f}" for f in ("patience", "deviation_m", "steps", "go", "still_ms")},
    )
    add_config_flags(
        p,
        StorageConfig,
        prefix="storage_",
        only=("chunk_samples",),
        names={"chunk_samples": "chunk"},
    )
    p.add_argument("--max-gb", type=float, default=None, help="rotating cap on the store size")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Collect; print where the samples went and a one-line summary."""
    from imitation.collect import CollectConfig, collect
    from imitation.dagger import TakeoverConfig
    from imitation.noise import NoiseConfig
    from imitation.storage import StorageConfig, StoreWriteError

    try:
        driver = None
        if args.driver is not None:
            import functools

            from agents.bc import BCAgent
            from agents.evaluate import agent_factory

            try:  # a checkpoint that does not load: one line, now, not in every worker
                agent_factory(str(args.driver))
            except ValueError as exc:
                raise ValueError(str(exc).replace("--agent", "--driver", 1)) from None
            driver = functools.partial(BCAgent.from_checkpoint, args.driver)
        storage = config_from_args(
            args,
            StorageConfig,
            prefix="storage_",
            max_bytes=None if args.max_gb is None else int(args.max_gb * 2**30),
        )
        config = config_from_args(
            args,
            CollectConfig,
            noise=NoiseConfig.parse(args.noise),
            storage=storage,
            driver=driver,
            takeover=config_from_args(args, TakeoverConfig, prefix="takeover_"),
        )
        result = collect(config, progress=not args.no_progress)
    except (ValueError, StoreWriteError) as exc:
        raise SystemExit(f"gta5drive collect: {exc}") from None
    for w in result.workers:
        if w.error:
            print(f"worker {w.worker} failed:\n{w.error}")
        elif w.exitcode and w.exitcode < 0:
            print(
                f"worker {w.worker} was killed (signal {-w.exitcode}); its committed chunks are "
                f"kept ({w.committed} samples), at most one chunk in flight was lost"
            )
    for store in result.stores:
        print(f"store: {store}")
    print(f"run log: {result.out / 'collect.jsonl'}")
    print(result.line())
    return 0 if result.ok else 1
