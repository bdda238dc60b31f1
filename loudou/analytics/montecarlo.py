"""Monte Carlo estimates around the DOMAIN §8 forecast: how widely the period's revenue
may spread, and how likely an opportunity is to close before the period ends.

The §8 forecast is an expected value (completed + Σ amount × win rate); these functions
add the spread around it (our choice; DOMAIN is silent on ranges). They are pure:
plain numbers in, plain numbers out, seeded so the same input gives the same answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from numpy.random import PCG64, Generator

__all__ = ["close_within", "simulate_period"]

_CENT = Decimal("0.01")


def _revenue(simulated: float, completed: Decimal) -> Decimal:
    """Completed + a simulated float amount, in cents (ROUND_HALF_UP)."""
    # Decimal(float) is the float's exact binary value; only the rounding is decided here.
    won = Decimal(float(simulated)).quantize(_CENT, rounding=ROUND_HALF_UP)
    return (completed + won).quantize(_CENT, rounding=ROUND_HALF_UP)


def simulate_period(
    groups: Sequence[tuple[int, Decimal, float]],
    *,
    completed: Decimal,
    runs: int = 2000,
    seed: int = 0,
) -> dict:
    """Simulated revenue for the period: completed revenue plus the open opportunities
    that are won and close within the period (the DOMAIN §8 forecast as a distribution).

    ``groups`` holds ``(n, mean amount, p)``: n opportunities of about the same amount,
    each won and closed within the period with probability p (for example a stage's win
    rate × :func:`close_within`). Per run, the wins of a group are Binomial(n, p), drawn
    with ``Generator(PCG64(seed))`` for all runs at once; revenue = completed +
    Σ wins × amount.

    Returns ``{"p10", "p50", "p90", "mean": Decimal, "runs": int}``: percentiles by
    numpy's 'linear' method, rounded to cents (ROUND_HALF_UP). The simulated part is in
    floating point (a simulation is an estimate; float64 holds cents exactly up to
    tens of billions); ``completed`` is added in ``Decimal`` so it is never perturbed.
    """
    if runs < 1:
        raise ValueError(f"runs must be at least 1, not {runs}")
    counts = np.array([n for n, _, _ in groups], dtype=np.int64)
    amounts = np.array([float(amount) for _, amount, _ in groups], dtype=np.float64)
    probabilities = np.array([p for _, _, p in groups], dtype=np.float64)
    if (counts < 0).any() or (amounts < 0).any():
        raise ValueError("group sizes and amounts must not be negative")
    if ((probabilities < 0) | (probabilities > 1) | np.isnan(probabilities)).any():
        raise ValueError("probabilities must be between 0 and 1")

    rng = Generator(PCG64(seed))
    wins = rng.binomial(counts, probabilities, size=(runs, len(counts)))
    won_revenue = wins @ amounts  # one total per run
    p10, p50, p90 = np.percentile(won_revenue, [10, 50, 90], method="linear")
    return {
        "p10": _revenue(p10, completed),
        "p50": _revenue(p50, completed),
        "p90": _revenue(p90, completed),
        "mean": _revenue(won_revenue.mean(), completed),
        "runs": runs,
    }


def close_within(
    stays_by_stage: Sequence[Sequence[float]],
    start: int,
    days_left: float,
    *,
    samples: int = 4000,
    seed: int = 0,
) -> float:
    """The probability that an opportunity entering stage ``start`` gets through the last
    stage within ``days_left`` days, from the empirical time in stage (DOMAIN §8 "Time in
    stage": days per completed stay).

    Each sample adds one stay per stage j ≥ ``start``, drawn with replacement from
    ``stays_by_stage[j]``; the answer is the share of samples with a total ≤ ``days_left``.
    1.0 when ``days_left`` is infinite. A stage with no recorded stays (our choice) takes
    the mean of the other stages' mean stays, or 0 days when no stage has any.
    """
    if samples < 1:
        raise ValueError(f"samples must be at least 1, not {samples}")
    if not 0 <= start <= len(stays_by_stage):
        raise ValueError(f"start {start} is not a stage index")
    if math.isinf(days_left) and days_left > 0:
        return 1.0
    stays = [np.asarray(stage, dtype=np.float64) for stage in stays_by_stage]
    means = [float(stage.mean()) for stage in stays if stage.size]
    fallback = sum(means) / len(means) if means else 0.0

    rng = Generator(PCG64(seed))
    totals = np.zeros(samples, dtype=np.float64)
    for stage in stays[start:]:
        if stage.size:
            totals += stage[rng.integers(0, stage.size, size=samples)]
        else:
            totals += fallback
    return float(np.count_nonzero(totals <= days_left)) / samples
