"""``loudou report funnel|reps|forecast|reverse|breakdown|leads|backtest``: the funnel
reports as JSON or a table, the same numbers as the pages and the API.
``loudou report rebuild`` recomputes the maintained summaries behind them from the
history (after a bulk load that did not)."""

import json
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from loudou.analytics import reports
from loudou.analytics.periods import containing, parse_period
from loudou.analytics.scope import Everyone, ScopeError, build_scope


def _date(text):
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"not a date (YYYY-MM-DD): {text}") from exc


def _amount(text):
    try:
        return Decimal(text.replace(",", ""))
    except InvalidOperation as exc:
        raise CommandError(f"not an amount: {text}") from exc


class Command(BaseCommand):
    help = (
        "Funnel reports: funnel, reps, forecast, reverse, breakdown, leads, backtest; "
        "rebuild: recompute the summaries behind them."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="report", required=True)
        sub.add_parser("rebuild", help="recompute the funnel summaries from the history")
        for name in ("funnel", "reps", "forecast", "reverse", "backtest", "breakdown", "leads"):
            p = sub.add_parser(name)
            p.add_argument("--pipeline", help="pipeline name (中文 or English) or id")
            p.add_argument("--team", help="team name or id (its whole subtree)")
            p.add_argument("--owner", help="username")
            p.add_argument("--product-line", type=int)
            p.add_argument("--format", choices=["json", "table"], default="table")
            if name in ("funnel", "reps", "leads"):
                p.add_argument("--from", dest="date_from", type=_date, help="created on/after")
                p.add_argument("--to", dest="date_to", type=_date, help="created on/before")
            if name == "forecast":
                p.add_argument("--period", help="2026Q4, 2026-11, 2026W47 or 2026")
                p.add_argument("--as-of", type=_date)
                p.add_argument("--target", type=_amount, help="default: the scope's target")
                p.add_argument("--run-rate", action="store_true",
                               help="add the out-of-funnel run-rate to the forecast")  # fmt: skip
                p.add_argument("--runs", type=int, default=2000)
            if name == "reverse":
                p.add_argument("--target", type=_amount, help="default: the scope's target")
                p.add_argument("--avg-deal", type=_amount)
                p.add_argument("--period", help="the period whose completed sales count")
            if name == "breakdown":
                p.add_argument("--by", choices=reports.DIMENSIONS, default="region")
                p.add_argument("--period", help="2026Q4, 2026-11, 2026W47 or 2026")
            if name == "backtest":
                p.add_argument("--periods", type=int, default=4)
                p.add_argument("--kind", choices=["month", "quarter"], default="quarter")
                p.add_argument("--runs", type=int, default=1000)

    def handle(self, *args, report, **o):
        if report == "rebuild":
            _rebuild(self.stdout)
            return
        try:
            scope = build_scope(
                Everyone(), pipeline=o.get("pipeline"), date_from=o.get("date_from"),
                date_to=o.get("date_to"), team=o.get("team"), owner=o.get("owner"),
                product_line=o.get("product_line"),
            )  # fmt: skip
            if report == "funnel":
                result = reports.funnel_report(scope)
            elif report == "reps":
                result = reports.reps_report(scope)
            elif report == "forecast":
                period = (parse_period(o["period"]) if o.get("period")
                          else containing("quarter", timezone.localdate()))  # fmt: skip
                as_of = None
                if o.get("as_of"):
                    as_of = datetime.combine(
                        o["as_of"], time.max, tzinfo=timezone.get_current_timezone()
                    )
                result = reports.forecast_report(
                    scope, period, as_of=as_of, target=o.get("target"), runs=o["runs"],
                    run_rate=o["run_rate"],
                )  # fmt: skip
            elif report == "reverse":
                period = parse_period(o["period"]) if o.get("period") else None
                result = reports.reverse_report(scope, o.get("target"), avg_deal=o.get("avg_deal"),
                                                period=period)  # fmt: skip
            elif report == "leads":
                result = reports.leads_report(scope)
            elif report == "breakdown":
                period = (parse_period(o["period"]) if o.get("period")
                          else containing("quarter", timezone.localdate()))  # fmt: skip
                result = reports.breakdown_report(scope, o["by"], period)
            else:
                periods = reports.last_periods(o["kind"], o["periods"])
                result = reports.backtest(scope, periods, runs=o["runs"])
        except (ScopeError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        if o["format"] == "json":
            self.stdout.write(json.dumps(result, ensure_ascii=False, indent=2))
        else:
            self.stdout.write(render_table(report, result))


def _pct(value):
    return "—" if value is None else f"{value * 100:.1f}%"


def render_table(report: str, result: dict) -> str:
    """A plain-text table for a terminal."""
    lines = [f"{result.get('pipeline', '')}"]
    if report == "funnel":
        lines.append(f"{'stage':<16}{'entered':>8}{'advanced':>9}{'lost':>6}{'open':>6}"
                     f"{'conv':>8}{'95% CI':>16}{'win from':>9}{'open amount':>15}")  # fmt: skip
        for s in result["stages"]:
            ci = (
                "—" if s["ci_low"] is None else f"{s['ci_low'] * 100:.0f}–{s['ci_high'] * 100:.0f}%"
            )
            mark = "" if s["stable"] else " *"
            lines.append(
                f"{s['name'][:15]:<16}{s['entered']:>8}{s['advanced']:>9}{s['lost']:>6}{s['open']:>6}"
                f"{_pct(s['conversion']) + mark:>8}{ci:>16}{_pct(s['win_rate_from']):>9}"
                f"{s['open_amount']:>15}"
            )  # fmt: skip
        lines.append(
            f"won {result['won']}  lost {result['lost']}  open {result['open']}"
            f"   (* not yet stable: fewer than {result['stable_at']} resolved)"
        )
    elif report == "reverse":
        lines.append(f"remaining {result['remaining']}  wins needed {result['wins_needed']}")
        for s in result["stages"]:
            flag = "  ← replenish" if s["replenish"] else ""
            lines.append(
                f"{s['name'][:15]:<16} needed {s['needed']!s:>6}  open {s['open']:>6}{flag}"
            )
    elif report == "breakdown":
        lines.append(f"{result['dimension']} · {result['period']} (vs {result['previous']}, "
                     f"{result['year_ago']})")  # fmt: skip
        for r in result["rows"]:
            lines.append(f"{r['key'][:15]:<16}{r['won']:>5}{r['amount']:>15}"
                         f"{_pct(r['growth_previous']):>9}{_pct(r['growth_year']):>9}")  # fmt: skip
    elif report == "leads":
        lines.append(f"{'source':<16}{'leads':>7}{'conv':>7}{'lead→opp':>10}{'opps':>7}"
                     f"{'won':>6}{'lost':>6}{'opp→won':>9}{'won amount':>15}")  # fmt: skip
        for r in [*result["sources"], result["total"]]:
            lines.append(
                f"{r['name'][:15]:<16}{r['leads']:>7}{r['converted']:>7}"
                f"{_pct(r['lead_conversion']):>10}{r['opportunities']:>7}{r['won']:>6}"
                f"{r['lost']:>6}{_pct(r['win_rate']):>9}{r['won_amount']:>15}"
            )  # fmt: skip
    elif report == "reps":
        for rep in result["reps"]:
            weak = [s["name"] for s in rep["stages"] if s["weak"]]
            lines.append(f"{rep['name']:<12} won {rep['won']:>5}  weak: {', '.join(weak) or '—'}"
                         f"  shape: {rep['shape'].get('reason', '')}")  # fmt: skip
    else:
        lines += [f"{k}: {v}" for k, v in result.items() if k != "periods"]
        for row in result.get("periods", []):
            lines.append(f"  {row}")
    return "\n".join(lines)


def _rebuild(stdout) -> None:
    import time as clock

    from loudou.pipeline import summaries
    from loudou.pipeline.models import FunnelCount, StayCount

    started = clock.monotonic()
    summaries.rebuild_summaries()
    stdout.write(
        f"Rebuilt {FunnelCount.objects.count():,} funnel count rows and "
        f"{StayCount.objects.count():,} stay rows in {clock.monotonic() - started:.1f} s."
    )
