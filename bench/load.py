"""A lean closed-loop load generator: `concurrency` asyncio tasks, each sending its next
request as soon as the previous one answered, until a duration or a request count is reached.
Latencies come from time.perf_counter; percentiles are computed here, no numpy needed."""
from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

# One request: gets a sequence number unique within the run, returns an outcome label
# ("ok", or an HTTP status / error name). Only "ok" latencies count in the percentiles.
Request = Callable[[int], Awaitable[str]]
OK = "ok"


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) of already sorted values, linearly interpolated between
    closest ranks (numpy's default), or None when there are no values."""
    if not sorted_values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    rank = (len(sorted_values) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    if low == high:
        return sorted_values[low]
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


@dataclass
class LoadResult:
    """What one closed-loop run measured; latencies in seconds."""

    concurrency: int
    elapsed: float
    latencies: list[float] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> int:
        return self.outcomes[OK]

    @property
    def errors(self) -> int:
        return sum(count for outcome, count in self.outcomes.items() if outcome != OK)

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    def summary(self) -> dict:
        """The JSON shape of this result: rates, latency percentiles in ms, error breakdown."""
        ordered = sorted(self.latencies)
        return {
            "concurrency": self.concurrency,
            "elapsed_s": round(self.elapsed, 3),
            "ok": self.ok,
            "errors": self.errors,
            "outcomes": dict(self.outcomes),
            "per_second": round(self.rate, 1),
            **latency_summary(ordered),
        }


def latency_summary(sorted_seconds: Sequence[float]) -> dict:
    """p50/p95/p99/max in milliseconds of sorted latencies in seconds."""
    def ms(value):
        return None if value is None else round(value * 1000, 2)

    return {"p50_ms": ms(percentile(sorted_seconds, 50)), "p95_ms": ms(percentile(sorted_seconds, 95)),
            "p99_ms": ms(percentile(sorted_seconds, 99)),
            "max_ms": ms(sorted_seconds[-1] if sorted_seconds else None)}


async def closed_loop(request: Request, concurrency: int, *, duration: float | None = None,
                      total: int | None = None, first: int = 0) -> LoadResult:
    """Run `request` from `concurrency` tasks until `duration` seconds passed or `total`
    requests were sent (whichever is given first). Sequence numbers start at `first`."""
    if duration is None and total is None:
        raise ValueError("closed_loop needs a duration or a total")
    numbers = itertools.count(first)
    limit = None if total is None else first + total
    result = LoadResult(concurrency, 0.0)
    started = time.perf_counter()
    deadline = None if duration is None else started + duration

    async def worker():
        while True:
            if deadline is not None and time.perf_counter() >= deadline:
                return
            number = next(numbers)
            if limit is not None and number >= limit:
                return
            sent = time.perf_counter()
            try:
                outcome = await request(number)
            except Exception as error:  # a failed request is a data point, not the end of the run
                outcome = type(error).__name__
            if outcome == OK:
                result.latencies.append(time.perf_counter() - sent)
            result.outcomes[outcome] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - started
    return result


def median_run(runs: Sequence[dict]) -> dict:
    """Of several runs of one measurement, the one with the median `per_second` (the lower
    of the middle two for an even count), with its own latencies, and `rounds`: how many."""
    ordered = sorted(runs, key=lambda run: run["per_second"])
    return {**ordered[(len(ordered) - 1) // 2], "rounds": len(ordered)}
