"""`gta5drive export-minari`: write a demonstration store as a local Minari dataset."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export-minari`` subcommand."""
    p = subparsers.add_parser(
        "export-minari",
        help="export a demonstration store to a local Minari dataset (Farama format)",
        description=(
            "Write the store in DIR as a Minari dataset (one episode per town and episode, "
            "lossless frames) under --datasets, for offline-RL/IL tools. Nothing is downloaded. "
            'Needs pip install "gta5drive[minari]".'
        ),
    )
    p.add_argument("dir", type=Path, help="the store directory")
    p.add_argument("--id", required=True, help="dataset id, e.g. gta5drive/sim/expert-v0")
    p.add_argument(
        "--datasets",
        type=Path,
        default=None,
        help="folder holding Minari datasets (default: Minari's own, MINARI_DATASETS_PATH)",
    )
    p.add_argument("--description", default=None, help="dataset description")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export; print where the dataset went."""
    from imitation.minari_io import export_minari
    from imitation.storage import SampleStore

    if not args.dir.is_dir():
        raise SystemExit(f"{args.dir}: no such store directory")
    store = SampleStore(args.dir)
    try:
        dataset = export_minari(
            store,
            args.id,
            datasets_path=args.datasets,
            description=args.description,
            progress=not args.no_progress,
        )
    except (ImportError, ValueError) as exc:
        raise SystemExit(f"gta5drive export-minari: {exc}") from None
    path = getattr(getattr(dataset, "spec", None), "data_path", None)
    print(
        f"exported {len(store)} samples in {dataset.total_episodes} episodes as {args.id!r}"
        + (f" to {path}" if path else "")
    )
    return 0
