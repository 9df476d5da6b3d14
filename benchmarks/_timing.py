"""Side-by-side timing shared by the speed benchmarks (not a test helper).

Three things make a kit-vs-Keras ratio trustworthy on a small, shared
machine, and every speed benchmark here does all three:

- **Blocks, not single calls.** One optimizer step takes 1-10 ms, about the
  size of the scheduler's and the allocator's hiccups; each sample is a
  block of calls lasting at least `MIN_BLOCK_S`.
- **Interleaved, rotating order.** The contenders run one block each per
  round, in an order that rotates every round, so drift of the machine
  (other processes, clock, caches) hits all of them alike and no one
  always runs first. The ratio is the median of the per-round ratios.
- **An A/A control.** A second, identical copy of the Keras built-in runs
  in the same rounds; its ratio to the first copy is what two *identical*
  contenders measure here. A kit ratio above 1.00 by less than the control's
  distance from 1.00 is not a measured slowdown: `verdict` says "noise"
  then, "ok" at or below 1.00, and "SLOWER" only beyond the noise.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

MIN_BLOCK_S = 0.05


def calls_per_block(fn: Callable[[], object], min_seconds=MIN_BLOCK_S) -> int:
    """How many calls of `fn` (already warm) last at least `min_seconds`."""
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-6)
    return max(1, int(min_seconds / once + 0.999))


def interleaved(fns: dict, rounds: int, calls: int = 1) -> dict:
    """Seconds per call of each function, one block each per round.

    The order rotates every round (a, b, c / b, c, a / c, a, b ...).
    """
    keys = list(fns)
    times = {key: [] for key in keys}
    for r in range(rounds):
        shift = r % len(keys)
        for key in keys[shift:] + keys[:shift]:
            fn = fns[key]
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[key].append((time.perf_counter() - start) / calls)
    return times


def paired(times: dict, a, b) -> float:
    """Median over rounds of `times[a] / times[b]`."""
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def verdict(ratio: float, control: float) -> str:
    """'ok' (<= 1.00), 'noise' (above 1.00 by less than the A/A control's
    distance from 1.00) or 'SLOWER'."""
    if ratio <= 1.0:
        return "ok"
    if ratio - 1.0 <= abs(control - 1.0):
        return "noise"
    return "SLOWER"
