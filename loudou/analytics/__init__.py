"""The funnel's numbers (DOMAIN §8) as pure functions.

Nothing here touches the database: the query layer fetches aggregates (counts per
furthest stage, sums of amounts) and hands plain numbers to these functions, so every
formula can be tested against the worked examples in DOMAIN.md and with property tests.

- :mod:`loudou.analytics.funnel`: conversion, Wilson intervals, weak steps, shape,
  forecast, coverage, sales progress, run rate, reverse funnel, velocity, medians.
  Exact arithmetic only (``int``, ``Decimal``, ``Fraction``); floats are refused where
  money or a rate enters a rounding decision.
- :mod:`loudou.analytics.montecarlo`: the spread of the period's revenue and the chance
  an opportunity closes in time, by simulation (numpy).
"""
