"""`gta5drive dataset-info`: counts, sizes, corrupt chunks and action histograms of a store."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``dataset-info`` subcommand."""
    p = subparsers.add_parser(
        "dataset-info",
        help="describe a demonstration store: counts, bytes/sample, corrupt chunks, histograms",
        description=(
            "Print samples, chunks, episodes, towns, bytes per sample and skipped (corrupt or "
            "truncated), duplicated and missing chunks of the store in DIR, and draw action "
            "histograms. Exit status 1 when a chunk was skipped or is missing."
        ),
    )
    p.add_argument("dir", type=Path, help="the store directory")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="histogram folder (default: DIR-info beside the store, not the current folder)",
    )
    p.add_argument("--verify", action="store_true", help="also decode every frame (slow)")
    p.set_defaults(func=run)


def default_out(store_dir: Path) -> Path:
    """``<DIR>-info`` beside the store: wherever the command runs, plots land by their data."""
    store_dir = store_dir.resolve()
    return store_dir.parent / f"{store_dir.name}-info"


def run(args: argparse.Namespace) -> int:
    """Print the store report and write actions.png."""
    import warnings

    from imitation.plots import save_value_histograms
    from imitation.storage import CorruptChunkWarning, SampleStore

    if not args.dir.is_dir():
        raise SystemExit(f"{args.dir}: no such store directory")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorruptChunkWarning)  # listed in the report below
        store = SampleStore(args.dir)
        report = store.verify() if args.verify else store.report()
    print(report)
    if report.samples:
        out = args.out or default_out(args.dir)
        action = store.column("action")
        executed = store.column("executed_action")
        try:
            png = save_value_histograms(
                out / "actions.png",
                {
                    "throttle_brake (label)": action[:, 0],
                    "steering (label)": action[:, 1],
                    "throttle_brake (executed)": executed[:, 0],
                    "steering (executed)": executed[:, 1],
                },
                title=f"{args.dir.name}: {report.samples} samples",
            )
        except OSError as exc:
            png = None
            print(f"  histograms not written to {out}: {exc.strerror or exc} (give --out)")
        speed = store.column("speed")[:, 0]
        print(f"  speed: mean {speed.mean():.1f} m/s, max {speed.max():.1f} m/s")
        if png is not None:
            print(f"histograms: {png}")
    return 0 if report.ok else 1
