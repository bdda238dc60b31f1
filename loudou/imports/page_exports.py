"""Downloads of the list pages that have none of their own (issue 7, "every list page to
CSV and xlsx with the current filters and only what the user may see").

``/imports/export/<page>/?format=csv|xlsx&<the page's own query string>``: the rows come
from the page's own builder (``listed_opportunities``, ``listed_accounts``,
``listed_contacts``, ``listed_leads``, ``pool_leads`` in the apps' views: their filters,
``visible_to`` scope and order), written by ``loudou.analytics.exports.table_response``.
The pages link here with their current query string, so the file holds exactly the rows
the page lists (all pages of them, up to EXPORT_LIMIT).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseBadRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from loudou.analytics.exports import Percent, table_response
from loudou.customers.views import listed_accounts, listed_contacts
from loudou.leads.models import PublicPool
from loudou.leads.views import chosen_pool, listed_leads, pool_leads
from loudou.pipeline.views import listed_opportunities

EXPORT_LIMIT = 100_000


def _user(user) -> str:
    return (user.name or user.username) if user else ""


def _local(moment):
    return timezone.localtime(moment) if moment else None


def _opportunities(request):
    _filters, qs = listed_opportunities(request)
    headers = [_("Name"), _("Account"), _("Pipeline"), _("Stage"), _("Status"), _("Amount"),
               _("Currency"), _("Probability"), _("Expected close date"), _("Owner"),
               _("Created"), _("Updated")]  # fmt: skip
    rows = (
        [o.name, o.account.name, o.pipeline.name, o.stage.name, o.get_status_display(),
         o.amount, o.currency, Percent(float(o.probability) / 100), o.expected_close_date,
         _user(o.owner), _local(o.created_at), _local(o.updated_at)]
        for o in qs[:EXPORT_LIMIT]
    )  # fmt: skip
    return "opportunities", headers, rows


def _accounts(request):
    _filters, _sort, qs = listed_accounts(request)
    headers = [_("Account name"), _("Grade"), _("Industry"), _("Region"), _("Phone"),
               _("Website"), _("Source"), _("Owner"), _("Updated")]  # fmt: skip
    rows = (
        [a.name, a.get_grade_display(), a.industry, a.region.name if a.region else "",
         a.phone, a.website, a.get_source_display(), _user(a.owner), _local(a.updated_at)]
        for a in qs[:EXPORT_LIMIT]
    )  # fmt: skip
    return "accounts", headers, rows


def _contacts(request):
    _filters, qs = listed_contacts(request)
    headers = [_("Name"), _("Account"), _("Title"), _("Mobile"), _("Phone"), _("E-mail"),
               _("WeChat")]  # fmt: skip
    rows = (
        [c.name, c.account.name, c.title, c.mobile, c.phone, c.email, c.wechat]
        for c in qs[:EXPORT_LIMIT]
    )
    return "contacts", headers, rows


def _lead_rows(qs):
    return (
        [x.name, x.company, x.title, x.mobile, x.email, x.get_source_display(),
         x.get_status_display(), x.region.name if x.region else "", _user(x.owner),
         x.pool.name if x.pool else "", _local(x.created_at)]
        for x in qs[:EXPORT_LIMIT]
    )  # fmt: skip


def _lead_headers():
    return [_("Name"), _("Company"), _("Title"), _("Mobile"), _("E-mail"), _("Source"),
            _("Status"), _("Region"), _("Owner"), _("Public pool"), _("Created")]  # fmt: skip


def _leads(request):
    _filters, qs = listed_leads(request)
    return "leads", _lead_headers(), _lead_rows(qs)


def _pool(request):
    pk = request.GET.get("pool", "")
    pools = list(PublicPool.objects.visible_to(request.user))
    pool = chosen_pool(int(pk) if pk.isdigit() else None, pools)
    if pool is None:
        raise Http404
    _filters, qs = pool_leads(request, pool)
    return "pool", _lead_headers(), _lead_rows(qs.select_related("owner", "pool"))


PAGES = {
    "opportunities": _opportunities,
    "accounts": _accounts,
    "contacts": _contacts,
    "leads": _leads,
    "pool": _pool,
}


@login_required
def export_page(request, page: str):
    """The rows of list page ``page`` with its filters, as CSV or xlsx."""
    build = PAGES.get(page)
    if build is None:
        raise Http404
    fmt = request.GET.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        return HttpResponseBadRequest(_("Choose csv or xlsx."))
    name, headers, rows = build(request)
    return table_response(fmt, name, headers, rows)
