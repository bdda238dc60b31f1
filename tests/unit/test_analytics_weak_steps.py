"""funnel.weak_steps compares each rep's upper Wilson bound with the team's conversion
exactly (a float against a Fraction), though it decides most cases on floats: for any
counts, including bounds that equal or nearly equal the team's rate, it flags exactly the
steps an all-exact comparison flags."""

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from loudou.analytics.funnel import StageInput, StageStats, funnel, weak_steps


def exact_weak_steps(rep, team, *, min_n: int = 10) -> list[int]:
    """DOMAIN §8's rule with every comparison made on Fractions."""
    rates = {s.key: s.conversion for s in team}
    return [
        s.key
        for s in rep
        if s.n >= min_n and rates.get(s.key) is not None and s.ci_high is not None
        and Fraction(s.ci_high) < rates[s.key]
    ]  # fmt: skip


COUNTS = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=1, max_size=6)


@given(rep=COUNTS, team=COUNTS, won=st.integers(0, 80), team_won=st.integers(0, 400))
def test_weak_steps_equal_the_exact_comparison(rep, team, won, team_won):
    """Random rep and team funnels: the same weak steps as the all-Fraction rule."""
    size = min(len(rep), len(team))
    rep_stats = funnel([StageInput(k, "s", o, lost) for k, (o, lost) in enumerate(rep[:size])],
                       won)  # fmt: skip
    team_stats = funnel(
        [StageInput(k, "s", o * 7, lost * 7) for k, (o, lost) in enumerate(team[:size])], team_won
    )
    assert weak_steps(rep_stats, team_stats) == exact_weak_steps(rep_stats, team_stats)


def _stats(key, n, ci_high, conversion=None):
    return StageStats(key=key, name="s", entered=n, advanced=0, lost=n, open=0, n=n,
                      conversion=conversion, ci_low=0.0, ci_high=ci_high, stable=True,
                      won_from=0, closed_from=n, win_rate_from=None)  # fmt: skip


def test_a_bound_a_hair_from_the_team_rate_is_compared_exactly():
    """A bound equal to the float nearest the team's rate (1/3), just below it and just
    above it: flagged exactly when the bound is below the true 1/3."""
    third = Fraction(1, 3)
    nearest = float(third)  # 0.333…33 (below 1/3: flagged)
    team = [_stats(1, 30, 0.5, third)]
    below = nearest - 1e-17
    above = float.fromhex("0x1.5555555555556p-2")  # the next float up: above 1/3
    assert Fraction(nearest) < third < Fraction(above)
    assert weak_steps([_stats(1, 20, nearest)], team) == [1]
    assert weak_steps([_stats(1, 20, below)], team) == [1]
    assert weak_steps([_stats(1, 20, above)], team) == []
