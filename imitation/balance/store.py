"""Balancing a stored dataset into a new store: :func:`balance_store`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imitation.balance.schemes import Balancer
from imitation.balance.sets import BalanceResult

__all__ = ["StoreBalanceReport", "balance_store"]


@dataclass(frozen=True)
class StoreBalanceReport:
    """What :func:`balance_store` did.

    Attributes:
        result: The balanced sets (indices into the source store).
        outputs: Where samples were written: output name (None for one store) -> directory.
        plots: The histogram PNGs written.
    """

    result: BalanceResult
    outputs: dict[str | None, Path] = field(default_factory=dict)
    plots: tuple[Path, ...] = ()


def balance_store(
    store: Any,
    balancer: Balancer,
    *,
    out_dir: str | Path | None = None,
    plots_dir: str | Path | None = None,
    writer_config: Any = None,
    batch_size: int = 256,
    progress: bool = True,
) -> StoreBalanceReport:
    """Balance a stored dataset and optionally copy the balanced samples into a new store.

    Args:
        store: A :class:`imitation.storage.SampleStore`.
        balancer: The scheme to apply.
        out_dir: Where to write the balanced store. v2 writes one store per output into
            ``out_dir/<output>`` (its sets train one output each); other schemes one store.
        plots_dir: Where to write the before/after histograms (None: none).
        writer_config: A :class:`imitation.storage.StorageConfig` for the output.
        batch_size: Samples copied per read.
        progress: Show a progress bar while copying.

    Returns:
        The sets, output directories and plots.
    """
    from tqdm import tqdm

    from imitation.storage import SampleWriter

    actions = store.column("action")
    result = balancer.balance(actions)
    outputs: dict[str | None, Path] = {}
    if out_dir is not None:
        out_dir = Path(out_dir)
        per_output = balancer.spec.own_output_sets
        groups: Iterable[str | None] = result.outputs if per_output else [None]
        for output in groups:
            idx = result.indices(output if per_output else ...)
            target = out_dir / output if output is not None else out_dir
            with (
                SampleWriter(target, config=writer_config) as writer,
                tqdm(
                    total=len(idx), desc=f"writing {target}", unit="sample", disable=not progress
                ) as bar,
            ):
                for s in range(0, len(idx), batch_size):
                    part = idx[s : s + batch_size]
                    writer.append_batch(store.read_batch(part))
                    bar.update(len(part))
            outputs[output] = target
    plots: tuple[Path, ...] = ()
    if plots_dir is not None:
        plots = balancer.plot(actions, result, plots_dir)
    return StoreBalanceReport(result=result, outputs=outputs, plots=plots)
