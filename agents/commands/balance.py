"""`gta5drive balance`: balance a stored dataset with scheme v1-v4 into a new store."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``balance`` subcommand."""
    p = subparsers.add_parser(
        "balance",
        help="balance a demonstration store (v1-v4) into a new store, with histograms",
        description=(
            "Read the store at --in, build every balanced set the scheme allows, copy those "
            "samples into --out (v2: one store per output in --out/<output>) and draw "
            "before/after histograms. Schemes are documented in imitation/balance/__init__.py."
        ),
    )
    p.add_argument(
        "--scheme",
        choices=["v1", "v2", "v3", "v4"],
        default="v3",
        help="v2 writes one store per output into --out/<output>: train on --out itself",
    )
    p.add_argument("--in", dest="src", type=Path, required=True, help="store to balance")
    p.add_argument("--out", type=Path, required=True, help="where to write the balanced store")
    p.add_argument("--plots", type=Path, default=None, help="histogram folder (default: --out)")
    p.add_argument("--seed", type=int, default=0, help="seed choosing among plentiful samples")
    p.add_argument(
        "--require",
        choices=["seen", "all"],
        default="seen",
        help="seen: bins empty in the data are not required (continuous experts rarely hit "
        "exact values such as steering 0); all: every bin of the scheme must be filled",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Balance --in into --out; print set counts and where everything went."""
    import numpy as np

    from imitation.balance import balance_store, make_balancer, require_single_store
    from imitation.storage import SampleStore

    try:
        require_single_store(args.src, what="gta5drive balance --in")
    except ValueError as exc:
        raise SystemExit(f"--in {exc}") from None
    if args.out.resolve() == args.src.resolve():
        raise SystemExit("--out must differ from --in (balancing writes a new store)")
    if any(args.out.glob("*.g5c")):
        raise SystemExit(f"--out {args.out} already holds chunks; choose an empty directory")
    store = SampleStore(args.src)
    report = store.report()
    print(f"input: {report.samples} samples in {report.chunks} chunks from {args.src}")
    for problem in report.corrupt:
        print(f"  skipped corrupt chunk {problem.name}: {problem.reason}")
    balancer = make_balancer(
        args.scheme, rng=np.random.default_rng(args.seed), require=args.require
    )
    result = balance_store(
        store,
        balancer,
        out_dir=args.out,
        plots_dir=args.plots or args.out,
        progress=not args.no_progress,
    )
    sets = result.result.sets_per_output()
    kept = sum(len(s) for s in result.result.sets)
    print(f"{args.scheme}: {len(result.result.sets)} balanced sets, {kept} samples")
    for output, count in sets.items():
        print(f"  {output or 'all outputs'}: {count} sets")
    if not result.result.sets:
        print("  no complete set: some bin is empty (see the before histogram)")
    for output, path in result.outputs.items():
        print(f"store{'' if output is None else f' ({output})'}: {path}")
    for png in result.plots:
        print(f"histogram: {png}")
    return 0
