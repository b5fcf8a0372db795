"""Balancing regression demonstrations: schemes v1, v2, v3 (the original's) and v4 (new).

Driving data is dominated by "straight on, steady throttle". A balancer turns a skewed stream or
dataset into *balanced sets*: groups of samples in which each bin of an output (or each
combination of bins) appears exactly once, or ``per_bin`` times. Every scheme works in two modes
behind one interface, :class:`Balancer`:

- **stream** (collector side): :meth:`Balancer.add` takes samples one at a time, keeps them in
  per-bin queues (bounded by ``max_per_bin``; the oldest sample of an overfull bin is dropped) and
  returns the balanced sets completed by that sample;
- **dataset**: :meth:`Balancer.balance` takes all actions of a dataset (e.g.
  ``SampleStore.column("action")``) and returns every balanced set it can build, as indices;
  :func:`balance_store` also copies them into a new store and draws the histograms.

Outputs
-------
Actions are ``[throttle_brake, steering]`` (N, 2) as recorded, or ``[throttle, brake,
steering]`` (N, 3) from the environment's 3-output mode. Schemes v1 and v2 bin accelerate and
brake as separate outputs: from 2-column actions ``accel = max(a, 0)`` and ``brake = max(-a, 0)``.
Schemes v3 and v4 merge them into one output ``throttle_brake`` (``throttle - brake`` for 3-column
actions).

Bins
----
All comparisons are made in float32 against float32 edges (so the float32 value 0.2 lies in
``[0.2, 0.8)``). Signed outputs are binned by magnitude and mirrored, so closedness is symmetric
about zero.

- ``PEDAL_V1`` (5 bins, SEED.md): ``[0]``, ``(0, .2)``, ``[.2, .8)``, ``[.8, 1)``, ``[1]``.
- ``SIGNED_V1`` (9 bins, v1 steering; v4's sub-bins): ``[-1]``, ``(-1, -.8]``, ``(-.8, -.2]``,
  ``(-.2, 0)``, ``[0]``, ``(0, .2)``, ``[.2, .8)``, ``[.8, 1)``, ``[1]``.
- ``PEDAL_V2`` (12 bins): ``[0]``, ``(0, .1)``, ``[.1, .2)``, ..., ``[.9, 1)``, ``[1]`` -- ten
  0.1-wide bins plus the exact values "released" and "floored".
- ``SIGNED_V2`` (21 bins): ``[-1, -.9]``, ``(-.9, -.8]``, ..., ``(-.1, 0)``, ``[0]``, ``(0, .1)``,
  ``[.1, .2)``, ..., ``[.9, 1]`` -- twenty 0.1-wide bins plus exact zero.

SEED.md gives v2 only as "0.1-wide bins, 12 + 21 bins"; the edges above are our reading that
yields exactly those counts.

Schemes
-------
- **v1** (:class:`BalancerV1`): bins every combination of (accel ``PEDAL_V1``, brake ``PEDAL_V1``,
  steering ``SIGNED_V1``): 5 x 5 x 9 = 225 combinations; a balanced set holds one sample of every
  combination -> 225-sample sets for 3-column actions. With 2-column actions accel and brake are
  never both non-zero, so only the 9 x 9 = 81 reachable combinations (accel bin ``[0]`` or brake
  bin ``[0]``) are required -> 81-sample sets.
- **v2** (:class:`BalancerV2`): each output balanced on its own: accel and brake ``PEDAL_V2`` (12
  bins), steering ``SIGNED_V2`` (21 bins). Sets are separate per output (the original kept one
  buffer per output): a set for ``steering`` has one sample per steering bin and is meant to
  train the steering output only. A sample may appear in one set of each output.
- **v3** (:class:`BalancerV3`): outputs ``throttle_brake`` and ``steering``, both ``SIGNED_V2``.
  A set for output *o* has one sample per bin of *o*, and its samples keep all outputs (one
  buffer trains every head), so a sample is used at most once over all sets. When picking from a
  bin, v3 takes a sample whose bin in the *other* output is the most plentiful, to spare rare
  samples for the other output's sets.
- **v4** (:class:`BalancerV4`, new): like v3, but a set holds ``per_bin`` (default 9) samples of
  every bin of the balanced output, chosen to sub-balance the other output over its 9
  ``SIGNED_V1`` bins: each pick goes to the sub-bin picked least so far in that bin (ties: the
  most plentiful sub-bin), i.e. one of each available sub-bin before any repeats. When the data
  lacks some sub-bins, the rest fill the set, so sets are as flat as the data allows.

In dataset mode v1 and v2 give exactly ``min(count)`` sets (per output for v2); v3 and v4 first
queue everything, then build sets alternating between the outputs until no output can complete
one.

Required bins (continuous experts)
----------------------------------
By default (``require="all"``) a set needs every bin (or v1 combination) the scheme defines. A
continuous controller such as the embedded world's autopilot rarely or never produces some of
them: measured over 4,500 expert samples with traffic, steering was never exactly 0 and never
beyond -0.7, and throttle_brake was exactly 0 in 5.6 % of samples. Under ``"all"`` such data
yields no set at all. ``require="seen"`` keeps the bins as defined but requires only those the
data has shown:

- **dataset mode**: a bin (v1: a combination) that is empty in the dataset is not required;
  every non-empty one is. With every bin present this is exactly ``"all"``.
- **stream mode**: a bin becomes required the first time a sample falls in it and stays
  required from then on (a rare bin, once seen, slows the sets down to its rate, as balancing
  should). No set is emitted before ``warmup`` samples were added, so that the first sets are
  not built from the handful of bins seen in the first seconds.

:meth:`Balancer.fill` reports the queued samples per bin and which bins are required (the
collector's progress bar shows it).

Modules
-------
:mod:`.bins` (intervals, the four bin sets, actions -> outputs), :mod:`.sets` (what balancing
returns), :mod:`.engines` (the queueing engines), :mod:`.schemes` (one frozen
:class:`SchemeSpec` per scheme and the :class:`Balancer` classes) and :mod:`.store`
(:func:`balance_store`). Import the public names from here.
"""

from imitation.balance.bins import PEDAL_V1, PEDAL_V2, SIGNED_V1, SIGNED_V2, Bins
from imitation.balance.schemes import (
    REQUIRE_MODES,
    SCHEMES,
    Balancer,
    BalancerV1,
    BalancerV2,
    BalancerV3,
    BalancerV4,
    SchemeSpec,
    make_balancer,
)
from imitation.balance.sets import BalancedSet, BalanceResult, BinFill
from imitation.balance.store import StoreBalanceReport, balance_store
from imitation.balance.stores import (
    V2_OUTPUTS,
    PerOutputStore,
    open_samples,
    per_output_dirs,
    require_single_store,
)

__all__ = [
    "PEDAL_V1",
    "PEDAL_V2",
    "REQUIRE_MODES",
    "SCHEMES",
    "SIGNED_V1",
    "SIGNED_V2",
    "V2_OUTPUTS",
    "BalanceResult",
    "BalancedSet",
    "Balancer",
    "BalancerV1",
    "BalancerV2",
    "BalancerV3",
    "BalancerV4",
    "BinFill",
    "Bins",
    "PerOutputStore",
    "SchemeSpec",
    "StoreBalanceReport",
    "balance_store",
    "make_balancer",
    "open_samples",
    "per_output_dirs",
    "require_single_store",
]
