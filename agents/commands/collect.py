"""`gta5drive collect`: record noisy-expert demonstrations with parallel workers into a store."""

from __future__ import annotations

import argparse
from pathlib import Path


def _hood(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--hood must be HEIGHTxWIDTH, e.g. 90x160; got {text!r}"
        ) from None
    return h, w


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``collect`` subcommand."""
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
    p.add_argument("--out", type=Path, required=True, help="store directory (appended to)")
    p.add_argument("--samples", type=int, required=True, help="samples to write in total")
    p.add_argument("--workers", type=int, default=1, help="recording processes (default 1)")
    p.add_argument(
        "--balance",
        choices=["v1", "v2", "v3", "v4"],
        default=None,
        help="balance each worker's stream and write only balanced sets (v2: --out/<output>)",
    )
    p.add_argument(
        "--require",
        choices=["seen", "all"],
        default="seen",
        help="balancer bins required: those seen so far (default) or all defined bins",
    )
    p.add_argument(
        "--warmup", type=int, default=1000, help="samples each balancer sees before its first set"
    )
    p.add_argument("--traffic", type=int, default=8, help="traffic cars per town (default 8)")
    p.add_argument(
        "--weather",
        default="random",
        help="clear, overcast, fog, dusk, night or random per episode (default)",
    )
    p.add_argument(
        "--noise",
        default="default",
        help=(
            "'default', 'recovery', 'off', or OUTPUT=PROB/MAGNITUDE/MIN-MAX[,...], e.g. "
            "'steering=0.03/0.3/5-20,throttle_brake=0.01/0.5/10-30'"
        ),
    )
    p.add_argument("--seed", type=int, default=0, help="episode g drives town SEED+g (default 0)")
    p.add_argument("--hood", type=_hood, default=(90, 160), help="hood HEIGHTxWIDTH (90x160)")
    p.add_argument("--cinematic", action="store_true", help="also record the chase camera")
    p.add_argument(
        "--episode-steps", type=int, default=3600, help="steps per episode/town (default 3600)"
    )
    p.add_argument(
        "--chunk", type=int, default=256, help="samples per chunk (the most a kill loses)"
    )
    p.add_argument("--max-gb", type=float, default=None, help="rotating cap on the store size")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Collect; print where the samples went and a one-line summary."""
    from imitation.collect import CollectConfig, collect
    from imitation.noise import NoiseConfig
    from imitation.storage import StorageConfig

    try:
        config = CollectConfig(
            out=args.out,
            samples=args.samples,
            workers=args.workers,
            balance=args.balance,
            require=args.require,
            warmup=args.warmup,
            noise=NoiseConfig.parse(args.noise),
            seed=args.seed,
            traffic=args.traffic,
            weather=args.weather,
            hood_size=args.hood,
            cinematic=args.cinematic,
            episode_steps=args.episode_steps,
            storage=StorageConfig(
                chunk_samples=args.chunk,
                max_bytes=None if args.max_gb is None else int(args.max_gb * 2**30),
            ),
        )
        result = collect(config, progress=not args.no_progress)
    except ValueError as exc:
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
