"""The roadmap of seed 002 as DOMAIN §9 states it: the bands and standards a new
installation starts with (migration 0002 loads them; an admin edits them afterwards).

Stages are named by win rate, because no pipeline exists when the migration runs:
"intent confirmed" (确认客户意向) = a stage with a default win rate of at least 25% (C in
the D/C/B/A template, inquiry in the classic one), "approval won" (赢得客户认可) = at
least 50% (B, proposal).
"""

# (name, English name, training weeks, from month, to month, standards)
# standard: (metric, scope, comparison, value, value_max, min_probability, label, label_en)
INTENT = (25, "确认客户意向", "intent confirmed")
APPROVAL = (50, "赢得客户认可", "approval won")

BANDS = [
    ("培训期", "Training", 4, None, None, [
        ("accounts_researched", "goal", "at_least", 20, None, None, "", ""),
        ("potential_accounts", "goal", "at_least", 5, None, None, "", ""),
    ]),
    ("第 0–3 个月", "Months 0–3", None, 0, 3, [
        ("new_accounts", "weekly", "at_least", 10, None, None, "", ""),
        ("prospecting_hours", "weekly", "at_least", 8, None, None, "", ""),
        ("visit_hours", "weekly", "at_least", 10, None, None, "", ""),
        ("potential_accounts", "goal", "at_least", 15, None, None, "", ""),
        ("opportunities_at_stage", "goal", "at_least", 3, None, *INTENT),
        ("opportunities_at_stage", "goal", "at_least", 1, None, *APPROVAL),
    ]),
    ("第 3–6 个月", "Months 3–6", None, 3, 6, [
        ("visits", "weekly", "between", 6, 8, None, "", ""),
        ("prospecting_hours", "weekly", "at_least", 10, None, None, "", ""),
        ("coverage", "goal", "at_least", 45, None, None, "", ""),
        ("opportunities_at_stage", "goal", "at_least", 8, None, *INTENT),
        ("opportunities_at_stage", "goal", "at_least", 4, None, *APPROVAL),
        ("sales", "goal", "at_least", 1, None, None, "", ""),
    ]),
    ("第 6–9 个月", "Months 6–9", None, 6, 9, [
        ("visits", "weekly", "between", 10, 12, None, "", ""),
        ("prospecting_hours", "weekly", "at_least", 4, None, None, "", ""),
        ("coverage", "goal", "at_least", 75, None, None, "", ""),
        ("year_quota_done", "goal", "at_least", 50, None, None, "", ""),
    ]),
    ("第 9–12 个月", "Months 9–12", None, 9, 12, [
        ("coverage", "goal", "at_least", 150, None, None, "", ""),
        ("year_quota_done", "goal", "at_least", 100, None, None, "", ""),
    ]),
]  # fmt: skip


def install(band_model, standard_model) -> None:
    """Create the default bands and standards (used by the migration and by tests)."""
    for index, (name, name_en, weeks, start, end, standards) in enumerate(BANDS):
        band = band_model.objects.create(
            name=name, name_en=name_en, position=(index + 1) * 10, is_training=weeks is not None,
            duration_weeks=weeks, from_month=start, to_month=end,
        )  # fmt: skip
        for position, row in enumerate(standards):
            metric, scope, comparison, value, value_max, probability, label, label_en = row
            standard_model.objects.create(
                band=band, metric=metric, scope=scope, comparison=comparison, value=value,
                value_max=value_max, min_probability=probability, label=label,
                label_en=label_en, position=(position + 1) * 10,
            )  # fmt: skip
