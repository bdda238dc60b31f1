"""The funnel mathematics of DOMAIN §8 (loudou.analytics): the worked examples, Wilson
intervals, rep vs team, shape, forecast, reverse funnel, Monte Carlo, and properties."""

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loudou.analytics.funnel import (
    StageInput,
    coverage,
    forecast,
    funnel,
    median_from_histogram,
    progress,
    reverse_funnel,
    run_rate,
    shape,
    velocity,
    weak_steps,
    wilson,
)
from loudou.analytics.montecarlo import close_within, simulate_period

# The autouse fixtures of tests/unit only change settings; they do not leak between
# hypothesis examples.
pure = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)

D_, C_, B_, A_ = 1, 2, 3, 4  # stage keys of the D/C/B/A pipeline, in pipeline order
DCBA = [(D_, "D"), (C_, "C"), (B_, "B"), (A_, "A")]
RATES = {D_: Decimal("0.10"), C_: Decimal("0.25"), B_: Decimal("0.50"), A_: Decimal("0.80")}


def stage_inputs(opportunities):
    """Count (furthest stage key, outcome) pairs into StageInputs and the number won, the
    way the query layer aggregates StageChange history."""
    inputs = []
    for key, name in DCBA:
        at = [outcome for furthest, outcome in opportunities if furthest == key]
        inputs.append(
            StageInput(
                key=key,
                name=name,
                open=at.count("open"),
                lost=at.count("lost"),
                won_furthest=at.count("won"),
            )
        )
    won = sum(1 for _, outcome in opportunities if outcome == "won")
    return inputs, won


# DOMAIN §8 conversion example, one line per opportunity: (furthest stage, outcome).
TEN_OPPORTUNITIES = [
    (D_, "lost"),  # (1) lost at D
    (D_, "lost"),  # (2) lost at D
    (D_, "open"),  # (3) open at D
    (C_, "lost"),  # (4) lost at C
    (C_, "open"),  # (5) open at C
    (B_, "lost"),  # (6) lost at B
    (A_, "won"),  # (7) won after jumping C→A: furthest stage A, B counts as passed
    (A_, "won"),  # (8) won
    (A_, "lost"),  # (9) lost at A
    (A_, "open"),  # (10) open at A
]


def example_funnel():
    inputs, won = stage_inputs(TEN_OPPORTUNITIES)
    return funnel(inputs, won)


# --- DOMAIN §8 conversion example -------------------------------------------------------


def test_conversion_example_entered():
    """In the ten-opportunity example, D, C, B and A were entered by 10, 7, 5 and 4."""
    assert [s.entered for s in example_funnel()] == [10, 7, 5, 4]


def test_conversion_example_conversion():
    """In the ten-opportunity example, conversion is D 7/9, C 5/6, B 4/5, A 2/3."""
    assert [s.conversion for s in example_funnel()] == [
        Fraction(7, 9),
        Fraction(5, 6),
        Fraction(4, 5),
        Fraction(2, 3),
    ]


def test_conversion_example_win_rate_from():
    """In the ten-opportunity example, the win rate from D, C, B, A is 2/7, 2/5, 2/4, 2/3."""
    assert [s.win_rate_from for s in example_funnel()] == [
        Fraction(2, 7),
        Fraction(2, 5),
        Fraction(2, 4),
        Fraction(2, 3),
    ]


def test_conversion_example_counts_resolved_only():
    """n counts advanced plus lost, leaving the open opportunities out: D 9, C 6, B 5, A 3."""
    assert [(s.n, s.advanced, s.lost, s.open) for s in example_funnel()] == [
        (9, 7, 2, 1),
        (6, 5, 1, 1),
        (5, 4, 1, 0),
        (3, 2, 1, 1),
    ]


def test_stage_with_nothing_resolved_has_no_conversion():
    """A stage holding only open opportunities has no conversion and no interval."""
    (stats,) = funnel([StageInput(key=1, name="D", open=4, lost=0)], won=0)
    assert (stats.n, stats.conversion, stats.ci_low, stats.ci_high) == (0, None, None, None)


def test_conversion_is_stable_from_twenty_resolved():
    """A conversion is marked stable once n reaches 20, not at 19."""
    stages = [StageInput(key=1, name="D", open=0, lost=9), StageInput(2, "C", open=0, lost=1)]
    d, c = funnel(stages, won=10)
    assert (d.n, d.stable, c.n, c.stable) == (20, True, 11, False)
    assert [s.stable for s in funnel(stages, won=10, stable_at=11)] == [True, True]


def test_no_stages_no_stats():
    """A pipeline without non-terminal stages yields no statistics."""
    assert funnel([], won=3) == []


# --- Wilson interval --------------------------------------------------------------------


def wilson_by_quadratic(successes, n, z=1.959963984540054):
    """The Wilson bounds as the roots of (p̂ − x)² = z² x(1 − x) / n, i.e.
    (n + z²) x² − (2s + z²) x + s²/n = 0: an independent route to the same numbers."""
    a = n + z * z
    b = 2 * successes + z * z
    root = math.sqrt(b * b - 4 * a * successes * successes / n)
    return (b - root) / (2 * a), (b + root) / (2 * a)


@pytest.mark.parametrize("successes,n", [(7, 9), (0, 10), (10, 10), (3, 20), (81, 263)])
def test_wilson_matches_the_quadratic_roots(successes, n):
    """The Wilson interval agrees with the roots of its defining quadratic to 1e-12."""
    low, high = wilson(successes, n)
    expected_low, expected_high = wilson_by_quadratic(successes, n)
    assert low == pytest.approx(expected_low, abs=1e-12)
    assert high == pytest.approx(expected_high, abs=1e-12)


@pytest.mark.parametrize(
    "successes,n,expected",
    [(81, 263, (0.2553, 0.3662)), (15, 148, (0.0624, 0.1605)), (0, 20, (0.0, 0.1611))],
)
def test_wilson_matches_published_values(successes, n, expected):
    """The Wilson interval matches Newcombe (1998), Stat Med 17:857, Table II, method 3."""
    low, high = wilson(successes, n)
    assert (round(low, 4), round(high, 4)) == expected


def test_wilson_bounds_are_exact_at_the_extremes():
    """No successes gives a lower bound of exactly 0; all successes an upper bound of 1."""
    assert wilson(0, 10)[0] == 0.0
    assert wilson(10, 10)[1] == 1.0


def test_wilson_of_nothing_is_none():
    """With n = 0 there is no interval."""
    assert wilson(0, 0) is None


def test_wilson_refuses_more_successes_than_trials():
    """More successes than trials is an error, not an interval."""
    with pytest.raises(ValueError):
        wilson(5, 4)


# --- rep vs team ------------------------------------------------------------------------


def one_stage(won, lost, key=7):
    """Statistics of a one-stage funnel: ``won`` advanced, ``lost`` lost."""
    return funnel([StageInput(key=key, name="B", open=0, lost=lost)], won=won)


def test_weak_step_flagged_when_rep_interval_is_below_team_rate():
    """A rep converting 3/20 where the team pooled 60% has that stage as a weak step."""
    rep, team = one_stage(3, 17), one_stage(60, 40)
    assert rep[0].ci_high < 0.6
    assert weak_steps(rep, team) == [7]


def test_weak_step_needs_ten_resolved():
    """A rep with only 9 resolved at a stage is not flagged, even with a low interval."""
    rep, team = one_stage(1, 8), one_stage(60, 40)
    assert rep[0].ci_high < 0.6
    assert weak_steps(rep, team) == []


def test_weak_step_not_flagged_when_interval_reaches_team_rate():
    """A rep below the team rate whose interval still reaches it (10/20 vs 60%) is not
    flagged."""
    rep, team = one_stage(10, 10), one_stage(60, 40)
    assert weak_steps(rep, team) == []


def test_weak_step_needs_a_team_rate():
    """A stage the team has no resolved opportunities at is never a weak step."""
    rep, team = one_stage(0, 20), one_stage(0, 0)
    assert weak_steps(rep, team) == []


# --- shape ------------------------------------------------------------------------------


def test_shape_inverted_when_a_later_stage_holds_more_than_the_first():
    """Five open at C against three at D is an inverted funnel."""
    result = shape([3, 5, 1, 0])
    assert (result["inverted"], result["weak_follow_up"]) == (True, False)
    assert "too little prospecting" in result["reason"]


def test_shape_not_inverted_when_later_stages_only_equal_the_first():
    """A later stage equal to the first does not make the funnel inverted."""
    assert shape([5, 5, 1])["inverted"] is False


def test_shape_weak_follow_up_many_early_few_late_low_conversion():
    """20 open in the first half against 5, with first-stage conversion 1/5 below the
    team's 2/5, is weak follow-up."""
    result = shape([12, 8, 3, 2], [Fraction(1, 5)], team_first_conversion=Fraction(2, 5))
    assert (result["inverted"], result["weak_follow_up"]) == (False, True)
    assert "weak follow-up" in result["reason"]


def test_shape_no_weak_follow_up_when_early_conversion_matches_team():
    """The same counts are not weak follow-up when the first-stage conversion is the
    team's."""
    result = shape([12, 8, 3, 2], [Fraction(2, 5)], team_first_conversion=Fraction(2, 5))
    assert result["weak_follow_up"] is False


def test_shape_weak_follow_up_compares_with_one_half_without_team_figure():
    """Without a team figure, a first-stage conversion of 2/5 counts as low (below 1/2)."""
    assert shape([12, 8, 3, 2], [Fraction(2, 5)])["weak_follow_up"] is True
    assert shape([12, 8, 3, 2], [Fraction(1, 2)])["weak_follow_up"] is False


def test_shape_no_weak_follow_up_below_three_times():
    """A first half holding less than 3x the second half is not weak follow-up."""
    assert shape([8, 6, 3, 2], [Fraction(1, 5)])["weak_follow_up"] is False


def test_shape_middle_stage_of_an_odd_count_is_in_neither_half():
    """With five stages the middle one is left out: 6 + 6 against 2 + 2 is exactly 3x."""
    assert shape([6, 6, 50, 2, 2], [Fraction(1, 5)])["weak_follow_up"] is True


def test_shape_fine_funnel_has_no_reason():
    """A funnel narrowing gently with a good first-stage conversion raises nothing."""
    assert shape([10, 7, 5, 3], [Fraction(7, 10)]) == {
        "inverted": False,
        "weak_follow_up": False,
        "reason": "",
    }


# --- DOMAIN §8 forecast worked example --------------------------------------------------

TARGET = Decimal("1000000")
WEEK6_COMPLETED = Decimal("300000") + Decimal("20000")  # funnel wins + out-of-funnel
WEEK6_OPEN = {
    D_: Decimal("500000"),
    C_: Decimal("400000"),
    B_: Decimal("300000"),
    A_: Decimal("200000"),
}


def week7():
    """Apply DOMAIN §8's week-7 events to week 6; return (completed, open amounts)."""
    completed, open_amounts = WEEK6_COMPLETED, dict(WEEK6_OPEN)
    # An A deal of 100,000 is won.
    open_amounts[A_] -= Decimal("100000")
    completed += Decimal("100000")
    # A C deal of 50,000 moves to B.
    open_amounts[C_] -= Decimal("50000")
    open_amounts[B_] += Decimal("50000")
    # A new D deal of 40,000 is created.
    open_amounts[D_] += Decimal("40000")
    # A D deal of 30,000 is lost.
    open_amounts[D_] -= Decimal("30000")
    # Out-of-funnel orders +3,000.
    completed += Decimal("3000")
    return completed, open_amounts


def test_forecast_week6():
    """Week 6: weighted pipeline 460,000 and forecast 780,000."""
    assert forecast(WEEK6_COMPLETED, WEEK6_OPEN, RATES) == {
        "weighted_pipeline": Decimal("460000.00"),
        "forecast": Decimal("780000.00"),
    }


def test_coverage_week6():
    """Week 6: coverage of the 1,000,000 target is 78%."""
    week6 = forecast(WEEK6_COMPLETED, WEEK6_OPEN, RATES)["forecast"]
    assert coverage(week6, TARGET) == Decimal("0.78")


def test_completed_week7():
    """Week 7: completed revenue is 423,000."""
    completed, _ = week7()
    assert completed == Decimal("423000")


def test_forecast_week7():
    """Week 7: weighted pipeline 393,500 and forecast 816,500."""
    completed, open_amounts = week7()
    assert forecast(completed, open_amounts, RATES) == {
        "weighted_pipeline": Decimal("393500.00"),
        "forecast": Decimal("816500.00"),
    }


def test_progress_week7():
    """Week 7: forecast change 36,500, sales change 103,000, progress 13.95%."""
    completed, open_amounts = week7()
    before = forecast(WEEK6_COMPLETED, WEEK6_OPEN, RATES)["forecast"]
    now = forecast(completed, open_amounts, RATES)["forecast"]
    assert progress(now, before, completed, WEEK6_COMPLETED, TARGET) == {
        "progress": Decimal("0.1395"),
        "forecast_delta": Decimal("36500.00"),
        "sales_delta": Decimal("103000"),
    }


def test_progress_without_target_keeps_the_terms():
    """Without a target there is no progress figure, but both terms are still given."""
    result = progress(Decimal("10"), Decimal("4"), Decimal("3"), Decimal("1"), None)
    assert result == {"progress": None, "forecast_delta": Decimal("6"), "sales_delta": Decimal("2")}


@pytest.mark.parametrize("target", [None, Decimal("0"), Decimal("-5")])
def test_coverage_needs_a_positive_target(target):
    """Coverage is None without a positive target."""
    assert coverage(Decimal("780000"), target) is None


def test_forecast_rounds_once_at_the_end():
    """Three half-cent weighted amounts make 0.015 → 0.02, not 3 × 0.01 = 0.03."""
    open_amounts = {1: Decimal("0.01"), 2: Decimal("0.01"), 3: Decimal("0.01")}
    rates = {1: Decimal("0.5"), 2: Decimal("0.5"), 3: Decimal("0.5")}
    assert forecast(Decimal("0"), open_amounts, rates)["weighted_pipeline"] == Decimal("0.02")


def test_forecast_takes_exact_fractions():
    """A win rate of exactly 1/3 weighs 100.00 as 33.33."""
    result = forecast(Decimal("0"), {1: Decimal("100.00")}, {1: Fraction(1, 3)})
    assert result["weighted_pipeline"] == Decimal("33.33")


def test_forecast_needs_a_rate_for_every_open_stage():
    """Open amounts at a stage without a win rate are an error, not silently zero."""
    with pytest.raises(ValueError):
        forecast(Decimal("0"), {1: Decimal("10")}, {})


def test_forecast_refuses_float_rates():
    """A float win rate is refused: 0.1 is not one tenth in binary."""
    with pytest.raises(TypeError):
        forecast(Decimal("0"), {1: Decimal("10")}, {1: 0.1})


def test_run_rate_extends_to_date_over_the_rest_of_the_period():
    """23,000 after 7 of 13 weeks runs on to 23,000 ÷ 7/13 × 6/13 = 19,714.29."""
    assert run_rate(Decimal("23000"), Fraction(7, 13), Fraction(6, 13)) == Decimal("19714.29")


def test_run_rate_is_zero_before_the_period_starts():
    """With no time elapsed the run rate is 0."""
    assert run_rate(Decimal("500"), Fraction(0), Fraction(1)) == Decimal("0.00")


# --- reverse funnel ---------------------------------------------------------------------

PLAN_CONVERSIONS = [Decimal("0.40"), Decimal("0.50"), Decimal("0.60"), Decimal("0.75")]


def test_reverse_funnel_example():
    """DOMAIN §8: remaining 577,000, W = 7.2125, needed D 81, C 33, B 17, A 10."""
    completed, _ = week7()
    result = reverse_funnel(TARGET, completed, Decimal("80000"), PLAN_CONVERSIONS, [0, 0, 0, 0])
    assert (result["remaining"], result["wins_needed"], result["needed"]) == (
        Decimal("577000"),
        Decimal("7.2125"),
        [81, 33, 17, 10],
    )


def test_reverse_funnel_alerts_stages_holding_fewer_than_needed():
    """Stages holding fewer open opportunities than needed raise the replenish alert."""
    result = reverse_funnel(
        TARGET, Decimal("423000"), Decimal("80000"), PLAN_CONVERSIONS, [90, 30, 17, 5]
    )
    assert result["replenish"] == [False, True, False, True]


def test_reverse_funnel_ceil_is_exact():
    """9 wins through 60% then 75% needs exactly 20 at the first stage (float says 21)."""
    result = reverse_funnel(
        Decimal("720000"),
        Decimal("0"),
        Decimal("80000"),
        [Decimal("0.6"), Decimal("0.75")],
        [20, 12],
    )
    assert result["needed"] == [20, 12]
    assert result["replenish"] == [False, False]


def test_reverse_funnel_stops_at_a_zero_conversion():
    """A stage converting 0 makes it and every earlier stage unplannable (None, no alert)."""
    conversions = [Decimal("0.4"), Decimal("0"), Decimal("0.6"), Decimal("0.75")]
    result = reverse_funnel(TARGET, Decimal("423000"), Decimal("80000"), conversions, [0] * 4)
    assert result["needed"] == [None, None, 17, 10]
    assert result["replenish"] == [False, False, True, True]


def test_reverse_funnel_target_already_met():
    """Once completed passes the target nothing remains and no stage needs anything."""
    result = reverse_funnel(
        TARGET, Decimal("1200000"), Decimal("80000"), PLAN_CONVERSIONS, [0, 0, 0, 0]
    )
    assert (result["remaining"], result["wins_needed"], result["needed"]) == (
        Decimal("0"),
        Decimal("0"),
        [0] * 4,
    )


def test_reverse_funnel_without_won_deals():
    """Without an average won deal, W and the needed counts are unknown."""
    result = reverse_funnel(TARGET, Decimal("0"), Decimal("0"), PLAN_CONVERSIONS, [1, 1, 1, 1])
    assert (result["wins_needed"], result["needed"]) == (None, [None] * 4)


# --- velocity and medians ---------------------------------------------------------------


def test_velocity_per_day():
    """10 open × 1,000 × 1/3 won ÷ 30 days is 111.11 a day."""
    assert velocity(10, Decimal("1000"), Fraction(1, 3), Decimal("30")) == Decimal("111.11")


def test_velocity_needs_a_cycle_length():
    """Without a positive sales-cycle length there is no velocity."""
    assert velocity(10, Decimal("1000"), Fraction(1, 3), Decimal("0")) is None


def test_median_of_an_even_count_is_the_lower_one():
    """Stays of 1, 2, 3 and 4 days have median 2 (the lower median)."""
    assert median_from_histogram({4: 1, 1: 1, 3: 1, 2: 1}) == 2.0


def test_median_of_an_odd_count_is_the_middle_one():
    """Stays 5, 5, 5, 9, 9 have median 5."""
    assert median_from_histogram({9: 2, 5: 3}) == 5.0


def test_median_of_nothing_is_none():
    """No stays, no median."""
    assert median_from_histogram({}) is None
    assert median_from_histogram({3: 0}) is None


# --- Monte Carlo ------------------------------------------------------------------------


def test_simulation_with_certain_wins_is_exact():
    """When every opportunity is certain to close, p10 = p90 = completed + Σ n × amount."""
    groups = [(3, Decimal("1234.56"), 1.0), (2, Decimal("0.07"), 1.0)]
    result = simulate_period(groups, completed=Decimal("320000.00"), runs=500)
    assert result["p10"] == result["p50"] == result["p90"] == Decimal("323703.82")
    assert (result["mean"], result["runs"]) == (Decimal("323703.82"), 500)


def test_simulation_without_open_opportunities_is_completed():
    """With nothing open, every percentile is the completed revenue."""
    result = simulate_period([], completed=Decimal("5.00"), runs=10)
    assert (result["p10"], result["p90"]) == (Decimal("5.00"), Decimal("5.00"))


def test_simulation_mean_is_near_the_expected_value():
    """Over 20,000 runs the mean is within 1% of completed + Σ n × amount × p."""
    groups = [(40, Decimal("1000"), 0.25), (10, Decimal("5000"), 0.5)]
    result = simulate_period(groups, completed=Decimal("0"), runs=20000, seed=3)
    assert abs(result["mean"] - Decimal("35000")) < Decimal("350")


def test_close_within_constant_stays():
    """Stays of exactly 2 and 3 days close within 5 days always and within 4.9 never."""
    assert close_within([[2.0], [3.0]], 0, 5.0) == 1.0
    assert close_within([[2.0], [3.0]], 0, 4.9) == 0.0


def test_close_within_counts_only_the_stages_from_start():
    """From the second stage only its 3 days remain."""
    assert close_within([[100.0], [3.0]], 1, 3.0) == 1.0


def test_close_within_fills_an_empty_stage_with_the_mean_of_the_others():
    """A stage with no recorded stays counts as the mean of the others' means (3 days)."""
    stays = [[2.0], [], [4.0]]
    assert close_within(stays, 0, 9.0) == 1.0
    assert close_within(stays, 0, 8.9) == 0.0


def test_close_within_infinite_time_is_certain():
    """With no deadline the opportunity certainly closes in time."""
    assert close_within([[30.0, 40.0]], 0, math.inf) == 1.0


def test_close_within_half_of_the_stays():
    """Stays of 1 or 10 days, equally likely, fit in 5 days about half of the time."""
    assert close_within([[1.0, 10.0]], 0, 5.0, samples=20000) == pytest.approx(0.5, abs=0.02)


# --- properties -------------------------------------------------------------------------

stage_counts = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=1, max_size=6)
money = st.decimals(min_value=0, max_value=10_000_000, places=2)
rate = st.fractions(min_value=0, max_value=1, max_denominator=200)


def build(counts, won):
    stages = [
        StageInput(key=k, name=str(k), open=o, lost=lost) for k, (o, lost) in enumerate(counts)
    ]
    return funnel(stages, won)


@pure
@given(stage_counts, st.integers(0, 40))
def test_property_conversion_between_zero_and_one(counts, won):
    """Every conversion lies in [0, 1] and inside its own Wilson interval."""
    for stats in build(counts, won):
        if stats.conversion is not None:
            assert 0 <= stats.ci_low <= stats.conversion <= stats.ci_high <= 1


@pure
@given(stage_counts, st.integers(0, 40))
def test_property_entered_never_increases(counts, won):
    """Fewer (or as many) opportunities enter each later stage."""
    entered = [s.entered for s in build(counts, won)]
    assert entered == sorted(entered, reverse=True)


@pure
@given(stage_counts, st.integers(0, 40))
def test_property_advanced_enter_the_next_stage(counts, won):
    """What advances from a stage is what enters the next; past the last, the won."""
    stats = build(counts, won)
    assert [s.advanced for s in stats] == [s.entered for s in stats[1:]] + [won]


@pure
@given(stage_counts, st.integers(0, 40))
def test_property_every_opportunity_enters_the_first_stage(counts, won):
    """The first stage is entered by every opportunity: open, lost and won."""
    assert build(counts, won)[0].entered == sum(o + lost for o, lost in counts) + won


@pure
@given(stage_counts, st.integers(0, 40))
def test_property_win_rate_from_never_decreases(counts, won):
    """The win rate from stage k never decreases down the funnel: every win counts at
    every stage while the losses counted shrink; once undefined it stays undefined."""
    rates = [s.win_rate_from for s in build(counts, won)]
    defined = [r for r in rates if r is not None]
    assert rates == defined + [None] * (len(rates) - len(defined))
    assert defined == sorted(defined)


@pure
@given(st.lists(st.tuples(money, rate), min_size=1, max_size=5), money, st.data())
def test_property_winning_never_lowers_the_forecast(stages, completed, data):
    """Moving an open amount (or part of it) into completed never lowers the forecast."""
    open_amounts = {k: amount for k, (amount, _) in enumerate(stages)}
    rates = {k: r for k, (_, r) in enumerate(stages)}
    k = data.draw(st.sampled_from(sorted(open_amounts)))
    won = data.draw(st.decimals(min_value=0, max_value=open_amounts[k], places=2))
    before = forecast(completed, open_amounts, rates)["forecast"]
    after_open = {**open_amounts, k: open_amounts[k] - won}
    assert forecast(completed + won, after_open, rates)["forecast"] >= before


@pure
@given(st.lists(st.tuples(money, rate), min_size=1, max_size=5), money, st.data())
def test_property_forecast_monotone_in_amounts(stages, completed, data):
    """Raising an open amount never lowers the forecast."""
    open_amounts = {k: amount for k, (amount, _) in enumerate(stages)}
    rates = {k: r for k, (_, r) in enumerate(stages)}
    k = data.draw(st.sampled_from(sorted(open_amounts)))
    extra = data.draw(money)
    before = forecast(completed, open_amounts, rates)["forecast"]
    raised = {**open_amounts, k: open_amounts[k] + extra}
    assert forecast(completed, raised, rates)["forecast"] >= before


@pure
@given(
    money,
    money,
    st.decimals(min_value="0.01", max_value=1_000_000, places=2),
    st.lists(st.fractions(min_value=Fraction(1, 100), max_value=1), min_size=1, max_size=6),
)
def test_property_reverse_funnel_run_forward_reaches_the_target(
    target, completed, avg_deal, conversions
):
    """Running each stage's needed count forward reaches the remaining target, and one
    opportunity fewer would not."""
    result = reverse_funnel(target, completed, avg_deal, conversions, [0] * len(conversions))
    remaining = Fraction(result["remaining"])
    for k, needed in enumerate(result["needed"]):
        through = math.prod(conversions[k:], start=Fraction(1)) * Fraction(avg_deal)
        assert needed * through >= remaining
        if needed:
            assert (needed - 1) * through < remaining


groups = st.lists(
    st.tuples(
        st.integers(0, 30),
        st.decimals(min_value=0, max_value=1_000_000, places=2),
        st.floats(min_value=0, max_value=1),
    ),
    max_size=5,
)


@pure
@given(groups, money, st.integers(0, 2**32))
def test_property_simulation_percentiles_ordered_above_completed(groups, completed, seed):
    """p10 ≤ p50 ≤ p90, and none falls below the completed revenue."""
    result = simulate_period(groups, completed=completed, runs=200, seed=seed)
    assert completed <= result["p10"] <= result["p50"] <= result["p90"]


@pure
@given(groups, money, st.integers(0, 2**32))
def test_property_simulation_same_seed_same_result(groups, completed, seed):
    """The same seed gives the same simulation."""
    first = simulate_period(groups, completed=completed, runs=200, seed=seed)
    assert simulate_period(groups, completed=completed, runs=200, seed=seed) == first


@pure
@given(
    st.lists(st.tuples(st.integers(0, 30), st.decimals(0, 1_000_000, places=2)), max_size=5),
    money,
)
def test_property_simulation_certain_wins(pairs, completed):
    """With every probability 1, p10 = p90 = completed + Σ n × amount exactly."""
    result = simulate_period([(n, a, 1.0) for n, a in pairs], completed=completed, runs=50)
    expected = completed + sum((n * a for n, a in pairs), Decimal(0))
    assert result["p10"] == result["p90"] == expected


@pure
@given(
    st.lists(st.lists(st.floats(0, 100), max_size=5), min_size=1, max_size=4),
    st.floats(0, 300),
    st.floats(0, 300),
)
def test_property_close_within_grows_with_time_left(stays, days, more):
    """More time left never makes closing in time less likely (same seed)."""
    sooner = close_within(stays, 0, days, samples=200)
    later = close_within(stays, 0, days + more, samples=200)
    assert 0.0 <= sooner <= later <= 1.0
