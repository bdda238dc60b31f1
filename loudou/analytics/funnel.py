"""Funnel mathematics of DOMAIN §8, as pure functions over plain numbers.

Conventions:

- Counts are ``int``; rates are ``Fraction`` (exact) and accepted as ``Fraction``,
  ``Decimal`` or ``int``. A ``float`` rate is refused (``TypeError``): 0.1 is not one
  tenth in binary, and these rates feed roundings (cents, ``ceil``) that must not depend
  on representation error.
- Money is ``Decimal``. Sums and products are carried exactly (as ``Fraction``) and
  rounded to cents, ROUND_HALF_UP, once at the end.
- Stages are given in pipeline order, first (top of the funnel) to last non-terminal
  stage; the won/lost outcomes are not stages here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction

__all__ = [
    "Z95",
    "StageInput",
    "StageStats",
    "coverage",
    "forecast",
    "funnel",
    "median_from_histogram",
    "progress",
    "resolved_rate",
    "reverse_funnel",
    "run_rate",
    "shape",
    "velocity",
    "weak_steps",
    "wilson",
]

#: The two-sided 95% normal quantile, Φ⁻¹(0.975).
Z95 = 1.959963984540054

# Divisions whose result is shown as a ratio (coverage, progress, W) use one fixed
# context, so the result does not depend on whatever context the calling thread has set.
_RATIO = Context(prec=28, rounding=ROUND_HALF_EVEN)


# --- exact helpers ----------------------------------------------------------------------


def _exact(value: Fraction | Decimal | int, what: str) -> Fraction:
    """``value`` as an exact ``Fraction``; floats and non-finite decimals are refused."""
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"{what} must be a Decimal, Fraction or int, not {value!r}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"{what} must be finite, not {value!r}")
    if not isinstance(value, Fraction | Decimal | int):
        raise TypeError(f"{what} must be a Decimal, Fraction or int, not {value!r}")
    return Fraction(value)


def _rate(value: Fraction | Decimal | int, what: str) -> Fraction:
    """An exact rate, checked to lie in [0, 1]."""
    rate = _exact(value, what)
    if not 0 <= rate <= 1:
        raise ValueError(f"{what} must be between 0 and 1, not {value!r}")
    return rate


def _cents(value: Fraction) -> Decimal:
    """``value`` rounded to cents, ROUND_HALF_UP (ties away from zero, as ``Decimal``)."""
    scaled = abs(value) * 100
    whole, rest = divmod(scaled.numerator, scaled.denominator)
    if 2 * rest >= scaled.denominator:
        whole += 1
    return Decimal(-whole if value < 0 else whole).scaleb(-2)


def _count(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative int, not {value!r}")
    return value


# --- conversion -------------------------------------------------------------------------


@dataclass(frozen=True)
class StageInput:
    """One non-terminal stage's counts by furthest stage (DOMAIN §8 "Furthest stage").

    ``open`` and ``lost`` count the open and lost opportunities whose furthest stage is
    this one. ``won_furthest`` is informational only: a won opportunity has passed every
    stage (DOMAIN §8), so :func:`funnel` uses the total ``won`` and ignores this field.
    """

    key: int
    name: str
    open: int
    lost: int
    won_furthest: int = 0


@dataclass(frozen=True)
class StageStats:
    """The DOMAIN §8 numbers of one stage over a set of opportunities.

    ``entered``/``advanced``/``lost``/``open`` and ``conversion`` are DOMAIN §8's
    entered_k, advanced_k, lost_k, open_k and c_k; ``n`` = advanced_k + lost_k;
    ``ci_low``/``ci_high`` the 95% Wilson interval of c_k; ``stable`` is n ≥ the
    threshold (20 by default). ``won_from``/``closed_from``/``win_rate_from`` give the
    "win rate from stage k": won / closed among opportunities with furthest stage ≥ k
    (or won).
    """

    key: int
    name: str
    entered: int
    advanced: int
    lost: int
    open: int
    n: int
    conversion: Fraction | None
    ci_low: float | None
    ci_high: float | None
    stable: bool
    won_from: int
    closed_from: int
    win_rate_from: Fraction | None


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes`` / ``n`` (DOMAIN §8 "Conversion": show a
    95% Wilson interval); ``None`` when ``n`` is 0.

    Uses the closed form (p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n). The bounds
    are exactly 0 when there are no successes and exactly 1 when all are successes (the
    formula gives those values; floating point may otherwise leave ±1e-17).
    """
    _count(successes, "successes")
    _count(n, "n")
    if successes > n:
        raise ValueError(f"successes ({successes}) cannot exceed n ({n})")
    if n == 0:
        return None
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half_width)
    high = 1.0 if successes == n else min(1.0, centre + half_width)
    return low, high


def funnel(stages: Sequence[StageInput], won: int, *, stable_at: int = 20) -> list[StageStats]:
    """Per-stage conversion and win rate (DOMAIN §8), stages in pipeline order.

    With furthest stages as input (DOMAIN §8 "Furthest stage"; a won opportunity has
    passed every stage):

    - entered_k = opportunities whose furthest stage ≥ k, or won
      = won + Σ_{j≥k} (open_j + lost_j);
    - advanced_k = those whose furthest stage > k, or won, so advanced_k = entered_{k+1}
      and the last stage's advanced is ``won``;
    - conversion c_k = advanced_k / (advanced_k + lost_k), ``None`` while nothing at the
      stage is resolved (our choice in DOMAIN §8: open opportunities do not count);
    - win rate from k = won / (won + Σ_{j≥k} lost_j), ``None`` when nothing is closed.
      Because every win counts at every stage, it never decreases down the funnel.

    ``stable`` marks n ≥ ``stable_at`` (DOMAIN §8: "not yet stable" while n < 20).
    """
    _count(won, "won")
    _count(stable_at, "stable_at")
    result: list[StageStats] = []
    entered_next = won  # entered_{k+1}; past the last stage only the won remain
    lost_from_next = 0  # Σ_{j>k} lost_j
    for stage in reversed(stages):
        _count(stage.open, f"stage {stage.key} open")
        _count(stage.lost, f"stage {stage.key} lost")
        _count(stage.won_furthest, f"stage {stage.key} won_furthest")
        advanced = entered_next
        entered = advanced + stage.open + stage.lost
        n = advanced + stage.lost
        interval = wilson(advanced, n)
        lost_from = lost_from_next + stage.lost
        closed_from = won + lost_from
        result.append(
            StageStats(
                key=stage.key,
                name=stage.name,
                entered=entered,
                advanced=advanced,
                lost=stage.lost,
                open=stage.open,
                n=n,
                conversion=Fraction(advanced, n) if n else None,
                ci_low=interval[0] if interval else None,
                ci_high=interval[1] if interval else None,
                stable=n >= stable_at,
                won_from=won,
                closed_from=closed_from,
                win_rate_from=Fraction(won, closed_from) if closed_from else None,
            )
        )
        entered_next = entered
        lost_from_next = lost_from
    result.reverse()
    return result


def resolved_rate(successes: int, failures: int, *, stable_at: int = 20) -> dict:
    """A conversion counted over resolved cases only, like the stage conversion of
    DOMAIN §8: rate = successes / (successes + failures) with n, the 95% Wilson interval
    and the "not yet stable" mark. Used for lead conversion by source (leads converted
    against disqualified; opportunities won against lost)."""
    _count(successes, "successes")
    _count(failures, "failures")
    n = successes + failures
    interval = wilson(successes, n)
    return {
        "rate": Fraction(successes, n) if n else None,
        "n": n,
        "ci_low": interval[0] if interval else None,
        "ci_high": interval[1] if interval else None,
        "stable": n >= stable_at,
    }


def weak_steps(
    rep: Sequence[StageStats], team: Sequence[StageStats], *, min_n: int = 10
) -> list[int]:
    """Keys of the rep's weak steps (DOMAIN §8 "Rep vs team"), in the rep's stage order.

    A stage is weak when the rep has n ≥ ``min_n`` resolved opportunities there and the
    upper end of the rep's 95% Wilson interval is below the team's pooled conversion at
    the same stage (matched by key). A stage the team has no conversion for is never
    flagged.
    """
    team_rates = {stats.key: (stats.conversion, float(stats.conversion))
                  for stats in team if stats.conversion is not None}  # fmt: skip
    weak = []
    for stats in rep:
        team_rate = team_rates.get(stats.key)
        if stats.n < min_n or team_rate is None or stats.ci_high is None:
            continue
        exact, approx = team_rate
        # float vs Fraction compares exactly, but slowly: only when the floats are close
        if abs(stats.ci_high - approx) > 1e-9 * max(1.0, abs(approx)):
            below = stats.ci_high < approx
        else:
            below = stats.ci_high < exact
        if below:
            weak.append(stats.key)
    return weak


def shape(
    open_now: Sequence[int],
    conversions: Sequence[Fraction | None] = (),
    team_first_conversion: Fraction | None = None,
) -> dict:
    """The shape of a rep's funnel (DOMAIN §8 "Shape"): open opportunities per stage.

    Returns ``{"inverted": bool, "weak_follow_up": bool, "reason": str}``.

    - inverted (DOMAIN §8): some later stage holds more open opportunities than the first
      stage: too little prospecting.
    - weak follow-up, "many early, few late, with low early conversion": DOMAIN §8 gives
      no numbers, so this is **our choice**: the first half of the stages holds at least
      3× the open opportunities of the second half (and at least one), AND the first
      stage's conversion ``conversions[0]`` is below ``team_first_conversion`` (below 1/2
      when there is no team figure). With an odd number of stages the middle stage
      belongs to neither half. Without a first-stage conversion it is never flagged.
    - reason: an English sentence per flag raised, empty when the shape is fine.
    """
    counts = [_count(value, "open count") for value in open_now]
    reasons = []

    inverted = False
    if counts:
        first, later_max = counts[0], max(counts[1:], default=0)
        inverted = later_max > first
        if inverted:
            reasons.append(
                f"A later stage holds more open opportunities ({later_max}) than the first "
                f"stage ({first}): too little prospecting."
            )

    half = len(counts) // 2
    early, late = sum(counts[:half]), sum(counts[len(counts) - half :])
    first_conversion = conversions[0] if conversions else None
    reference = team_first_conversion if team_first_conversion is not None else Fraction(1, 2)
    weak_follow_up = (
        early > 0
        and early >= 3 * late
        and first_conversion is not None
        and first_conversion < reference
    )
    if weak_follow_up:
        whose = "the team's" if team_first_conversion is not None else "50%"
        reasons.append(
            f"The first half of the stages holds {early} open opportunities against {late} "
            f"in the second half, and the first-stage conversion "
            f"({float(first_conversion):.0%}) is below {whose} "
            f"({float(reference):.0%}): weak follow-up."
        )
    return {"inverted": inverted, "weak_follow_up": weak_follow_up, "reason": " ".join(reasons)}


# --- forecast ---------------------------------------------------------------------------


def forecast(
    completed: Decimal,
    open_amounts: Mapping[int, Decimal],
    win_rates: Mapping[int, Decimal | Fraction],
) -> dict:
    """The forecast 销售预计 (DOMAIN §8 "Forecast"): completed revenue in the period plus the
    weighted pipeline Σ over open opportunities (amount × stage win rate).

    ``open_amounts`` maps stage key → summed amount of the open opportunities at that
    stage; ``win_rates`` maps stage key → win rate as a fraction (``Decimal("0.25")``).
    Returns ``{"weighted_pipeline": Decimal, "forecast": Decimal}``, computed exactly and
    rounded to cents (ROUND_HALF_UP) at the end only. A stage with open amounts but no
    win rate is an error.
    """
    weighted = Fraction(0)
    for key, amount in open_amounts.items():
        if key not in win_rates:
            raise ValueError(f"no win rate for stage {key}")
        weighted += _exact(amount, f"open amount of stage {key}") * _rate(
            win_rates[key], f"win rate of stage {key}"
        )
    total = _exact(completed, "completed") + weighted
    return {"weighted_pipeline": _cents(weighted), "forecast": _cents(total)}


def coverage(forecast: Decimal, target: Decimal | None) -> Decimal | None:
    """Coverage (DOMAIN §8): forecast / target as a fraction (``Decimal("0.78")`` for 78%):
    are there enough opportunities? ``None`` without a positive target."""
    if target is None or target <= 0:
        return None
    return _RATIO.divide(forecast, target)


def progress(
    forecast_now: Decimal,
    forecast_before: Decimal,
    sales_now: Decimal,
    sales_before: Decimal,
    quarter_target: Decimal | None,
) -> dict:
    """Sales progress 销售进展 (DOMAIN §8), exactly as defined:
    [(this week's forecast − last week's) + (this week's cumulative sales − last week's)]
    / this quarter's target.

    Returns ``{"progress": Decimal | None, "forecast_delta": Decimal,
    "sales_delta": Decimal}``. The two terms are returned separately because the forecast
    already contains booked sales, so a win counts in both (DOMAIN §8). ``progress`` is
    ``None`` without a positive target.
    """
    forecast_delta = forecast_now - forecast_before
    sales_delta = sales_now - sales_before
    value = None
    if quarter_target is not None and quarter_target > 0:
        value = _RATIO.divide(forecast_delta + sales_delta, quarter_target)
    return {"progress": value, "forecast_delta": forecast_delta, "sales_delta": sales_delta}


def run_rate(to_date: Decimal, elapsed_fraction: Fraction, remaining_fraction: Fraction) -> Decimal:
    """The out-of-funnel run-rate line (DOMAIN §8 "Out-of-funnel sales", our choice):
    to date ÷ elapsed fraction × remaining fraction of the period, in cents (ROUND_HALF_UP).
    0 when no time has elapsed."""
    elapsed = _rate(elapsed_fraction, "elapsed fraction")
    remaining = _rate(remaining_fraction, "remaining fraction")
    if elapsed == 0:
        return _cents(Fraction(0))
    return _cents(_exact(to_date, "to_date") / elapsed * remaining)


# --- planning ---------------------------------------------------------------------------


def reverse_funnel(
    target: Decimal,
    completed: Decimal,
    avg_deal: Decimal,
    conversions: Sequence[Fraction | Decimal],
    open_now: Sequence[int],
) -> dict:
    """The reverse funnel (DOMAIN §8 "Reverse funnel"): how many opportunities each stage
    needs to reach the target.

    remaining = target − completed (not below 0); W = remaining ÷ average won deal;
    needed_k = ceil(W ÷ Π_{j≥k} c_j), computed exactly so that e.g. W ÷ 0.45 lands on the
    right integer; replenish_k = open_k < needed_k (DOMAIN §8: "replenish this stage").
    ``conversions`` and ``open_now`` are in pipeline order.

    Returns ``{"remaining": Decimal, "wins_needed": Decimal | None,
    "needed": [int | None], "replenish": [bool]}``.

    Edge cases (our choice): a stage whose conversion is 0 or ``None`` cannot be planned
    through, so needed is ``None`` for it and every earlier stage (their products include
    it) and they raise no alert; when nothing remains, every stage needs 0; without a
    positive average deal (no won deals yet) W and every needed are ``None``.
    """
    if len(conversions) != len(open_now):
        raise ValueError("conversions and open_now must have one entry per stage")
    counts = [_count(value, "open count") for value in open_now]
    remaining = max(target - completed, Decimal(0))

    if avg_deal is None or avg_deal <= 0:
        return {
            "remaining": remaining,
            "wins_needed": None,
            "needed": [None] * len(counts),
            "replenish": [False] * len(counts),
        }

    rates = [
        None if rate is None else _rate(rate, f"conversion of stage {k}")
        for k, rate in enumerate(conversions)
    ]
    wins = _exact(remaining, "remaining") / _exact(avg_deal, "avg_deal")
    needed: list[int | None] = [None] * len(counts)
    product: Fraction | None = Fraction(1)  # Π_{j≥k} c_j, None once a c_j is 0 or unknown
    for k in range(len(counts) - 1, -1, -1):
        if wins == 0:
            needed[k] = 0
        elif product is not None and rates[k]:
            product *= rates[k]
            needed[k] = math.ceil(wins / product)
        else:
            product = None
    replenish = [n is not None and open_ < n for open_, n in zip(counts, needed, strict=True)]
    return {
        "remaining": remaining,
        "wins_needed": _RATIO.divide(remaining, avg_deal),
        "needed": needed,
        "replenish": replenish,
    }


def velocity(
    open_count: int,
    avg_won_amount: Decimal,
    win_rate: Fraction,
    avg_cycle_days: Decimal,
) -> Decimal | None:
    """Sales velocity, revenue per day: open opportunities × average won amount × win
    rate ÷ average sales-cycle days, in cents (ROUND_HALF_UP).

    Not defined in DOMAIN §8 (our choice, the usual sales-velocity formula); it combines
    §8's win rate with the open pipeline. ``None`` without a positive cycle length.
    """
    _count(open_count, "open_count")
    days = _exact(avg_cycle_days, "avg_cycle_days")
    if days <= 0:
        return None
    value = (
        open_count * _exact(avg_won_amount, "avg_won_amount") * _rate(win_rate, "win_rate") / days
    )
    return _cents(value)


def median_from_histogram(buckets: Mapping[int, int]) -> float | None:
    """The median of values given as a histogram (value → count), for DOMAIN §8 "Time in
    stage: mean and median days per completed stay" when the database returns stays
    grouped by whole days.

    For an even number of values this is the **lower** median (the ⌊(N−1)/2⌋-th value in
    sorted order, 0-based), so the result is always a value that occurs; ``None`` when
    there are no values.
    """
    total = sum(_count(count, "bucket count") for count in buckets.values())
    if total == 0:
        return None
    index = (total - 1) // 2
    seen = 0
    for value in sorted(buckets):
        seen += buckets[value]
        if seen > index:
            return float(value)
    raise AssertionError("unreachable: the counts add up to total")
