"""Lead, pool, conversion and assignment-rule pages. Every lookup is scoped with
``visible_to``; every change goes through a service."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from loudou.core.exceptions import ServiceError
from loudou.customers.choices import Source
from loudou.customers.models import Account
from loudou.org.models import Region, User
from loudou.web.helpers import read_filters, save_with_service

from . import assignment, services
from .choices import OPEN_STATUSES, LeadStatus
from .dedupe import find_duplicates
from .filters import LeadFilter
from .forms import ConvertForm, LeadForm, ReasonForm
from .models import AssignmentRule, Lead, PoolEvent, PublicPool

PAGE_SIZE = 50


def _visible_lead(request, pk) -> Lead:
    return get_object_or_404(
        Lead.objects.visible_to(request.user).select_related(
            "owner", "pool", "region", "product_interest", "last_owner"
        ),
        pk=pk,
    )


def _page(request, qs, template, context):
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, template, {**context, "page": page, "query": query.urlencode()})


def listed_leads(request):
    """The lead list's filters and rows in order (the page and its downloads)."""
    filters = read_filters(request, LeadFilter)
    qs = filters.apply(Lead.objects.visible_to(request.user)).select_related(
        "owner", "pool", "region"
    )
    return filters, qs.order_by("-created_at", "-pk")


def chosen_pool(pk, pools):
    """The pool ``pk`` among ``pools`` (those the user may see; the first when ``pk`` is
    None); 404 when it is not one of them, None when there are none."""
    if pk is None:
        return pools[0] if pools else None
    pool = next((p for p in pools if p.pk == pk), None)
    if pool is None:
        raise Http404
    return pool


def pool_leads(request, pool):
    """A pool page's filters and leads in order (the page and its downloads)."""
    filters = read_filters(request, LeadFilter)
    qs = filters.apply(Lead.objects.filter(pool=pool)).select_related("region", "last_owner")
    return filters, qs.order_by("-released_at", "-created_at", "-pk")


@login_required
def lead_list(request):
    """The leads the user may see (own, team, shared and visible pools), filtered."""
    filters, qs = listed_leads(request)
    return _page(
        request,
        qs,
        "leads/lead_list.html",
        {
            "nav": "leads",
            "filters": filters,
            "statuses": LeadStatus.choices,
            "sources": Source.choices,
            "regions": Region.objects.all(),
            "pools": PublicPool.objects.visible_to(request.user),
        },
    )


@login_required
def lead_detail(request, pk):
    """A lead's fields, possible duplicates, pool history and the actions open to it."""
    lead = _visible_lead(request, pk)
    events = PoolEvent.objects.filter(lead=lead).select_related("by", "owner", "pool")
    return render(
        request,
        "leads/lead_detail.html",
        {
            "nav": "leads",
            "lead": lead,
            "duplicates": find_duplicates(lead, user=request.user),
            "events": events.order_by("at", "pk"),
            "release_form": ReasonForm(),
            "missing": services.missing_for_conversion(lead),
            "pools": PublicPool.objects.visible_to(request.user),
        },
    )


@login_required
def lead_create(request):
    """A new lead; ``?pool=<id>`` (the pool page's "New lead in this pool") preselects
    the pool."""
    initial = {"pool": request.GET["pool"]} if request.GET.get("pool", "").isdigit() else {}
    form = LeadForm(request.POST or None, actor=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k not in {"version"}}
        owner, pool = data.pop("owner", None), data.pop("pool", None)
        result = save_with_service(
            form,
            lambda: services.create_lead(actor=request.user, owner=owner, pool=pool, **data),
        )
        if result:
            lead, duplicates = result
            messages.success(request, _("Lead created."))
            for text in duplicates.messages():
                messages.warning(request, text)
            if Lead.objects.visible_to(request.user).filter(pk=lead.pk).exists():
                return redirect(lead)
            return redirect("leads:leads")
    return render(request, "leads/lead_form.html", {"nav": "leads", "form": form})


@login_required
def lead_edit(request, pk):
    lead = _visible_lead(request, pk)
    form = LeadForm(request.POST or None, instance=lead, actor=request.user)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        version = data.pop("version")
        saved = save_with_service(
            form,
            lambda: services.update_lead(
                Lead.objects.get(pk=pk), actor=request.user, version=version, **data
            ),
        )
        if saved:
            messages.success(request, _("Lead saved."))
            return redirect(saved)
    return render(request, "leads/lead_form.html", {"nav": "leads", "form": form, "lead": lead})


def _act(request, lead, call, done, back=None):
    """Run an action's service; a refusal becomes an error message, never a 500."""
    try:
        call()
    except ServiceError as exc:
        messages.error(request, exc.message)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, done)
    if back:
        return redirect(back)
    if Lead.objects.visible_to(request.user).filter(pk=lead.pk).exists():
        return redirect(lead)
    return redirect("leads:pool-default")


@login_required
@require_POST
def lead_claim(request, pk):
    lead = Lead.objects.visible_to(request.user).select_related("pool").filter(pk=pk).first()
    if lead is None:
        # Taken a moment ago by someone else: say so instead of a bare 404.
        pools = PublicPool.objects.visible_to(request.user)
        if not PoolEvent.objects.filter(lead_id=pk, pool__in=pools).exists():
            raise Http404
        messages.error(request, _("Someone else has already taken this lead."))
        return redirect("leads:pool-default")
    back = (
        lead.pool.get_absolute_url() if lead.pool and request.POST.get("next") == "pool" else None
    )
    return _act(
        request, lead, lambda: services.claim_lead(lead, rep=request.user), _("Lead claimed."), back
    )


@login_required
@require_POST
def lead_release(request, pk):
    lead = _visible_lead(request, pk)
    pool = None
    if request.POST.get("pool"):
        pool = PublicPool.objects.visible_to(request.user).filter(pk=request.POST["pool"]).first()
    return _act(
        request,
        lead,
        lambda: services.release_lead(
            lead, rep=request.user, reason=request.POST.get("reason", ""), pool=pool
        ),
        _("Lead released to the pool."),
    )


@login_required
@require_POST
def lead_disqualify(request, pk):
    lead = _visible_lead(request, pk)
    return _act(
        request,
        lead,
        lambda: services.disqualify_lead(
            lead, actor=request.user, reason=request.POST.get("reason", "")
        ),
        _("Lead disqualified."),
    )


@login_required
def lead_convert(request, pk):
    """The conversion screen: duplicates suggested as accounts to attach to."""
    lead = _visible_lead(request, pk)
    duplicates = find_duplicates(lead, user=request.user)
    initial = {"create_opportunity": True}
    if duplicates.accounts:
        initial["account"] = duplicates.accounts[0].pk
    form = ConvertForm(request.POST or None, actor=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        converted = save_with_service(
            form,
            lambda: services.convert_lead(
                lead,
                actor=request.user,
                account=data["account"],
                create_opportunity=data["create_opportunity"],
                pipeline=data["pipeline"],
                stage=data["stage"],
                amount=data["amount"],
                opportunity_name=data["opportunity_name"],
                expected_close_date=data["expected_close_date"],
            ),  # fmt: skip
        )
        if converted:
            messages.success(request, _("Lead converted."))
            return redirect(converted.converted_opportunity or converted.converted_account)
    return render(
        request,
        "leads/lead_convert.html",
        {
            "nav": "leads",
            "lead": lead,
            "form": form,
            "duplicates": duplicates,
            "missing": services.missing_for_conversion(lead),
        },
    )


@login_required
def pool_page(request, pk=None):
    """A public pool: its leads, claim buttons, and the user's counts against the
    pool's limits."""
    pools = list(PublicPool.objects.visible_to(request.user))
    pool = chosen_pool(pk, pools)
    if pool is None:
        return render(request, "leads/pool.html", {"nav": "pool", "pools": pools})
    filters, qs = pool_leads(request, pool)
    return _page(
        request,
        qs,
        "leads/pool.html",
        {
            "nav": "pool",
            "pool": pool,
            "pools": pools,
            "filters": filters,
            "sources": Source.choices,
            "regions": Region.objects.all(),
            "owned": services.open_leads_owned(request.user),
            "claimed_today": services.claims_today(request.user, pool),
            "pooled_accounts": Account.objects.visible_to(request.user)
            .filter(pool=pool)
            .select_related("region")
            .order_by("name", "pk")[:PAGE_SIZE],
        },
    )


def _visible_account(request, pk) -> Account:
    return get_object_or_404(Account.objects.visible_to(request.user), pk=pk)


@login_required
@require_POST
def account_claim(request, pk):
    """Claim a pooled account (the pool's rules apply, as for leads)."""
    account = _visible_account(request, pk)
    try:
        services.claim_account(account, rep=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("leads:pool-default")
    messages.success(request, _("Account claimed."))
    return redirect(account)


@login_required
@require_POST
def account_release(request, pk):
    """Put an owned account into a pool, with a reason."""
    account = _visible_account(request, pk)
    pool = None
    if request.POST.get("pool", "").isdigit():
        pool = PublicPool.objects.visible_to(request.user).filter(pk=request.POST["pool"]).first()
    try:
        services.release_account(
            account, rep=request.user, reason=request.POST.get("reason", ""), pool=pool
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect(account)
    messages.success(request, _("Account released to the pool."))
    if Account.objects.visible_to(request.user).filter(pk=account.pk).exists():
        return redirect(account)
    return redirect("leads:pool-default")


@login_required
def rules_page(request):
    """The ordered assignment rules and a preview form (admins only)."""
    if not request.user.sees_everything:
        raise Http404
    decision = None
    if request.GET.get("preview"):
        fields = {
            "region_id": request.GET.get("region") or None,
            "industry": request.GET.get("industry", ""),
            "source": request.GET.get("source", ""),
        }
        try:
            fields["region_id"] = int(fields["region_id"]) if fields["region_id"] else None
        except ValueError:
            fields["region_id"] = None
        decision = assignment.preview(fields)
    rules = AssignmentRule.objects.order_by("position", "pk").select_related(
        "region", "fixed_rep", "pool", "product_interest"
    )
    from . import recycle

    recycle_rules = [(r, recycle.describe(r)) for r in recycle.effective_rules()]
    sweep_preview = services.sweep(dry_run=True) if request.GET.get("sweep") else None
    return render(
        request,
        "leads/rules.html",
        {
            "nav": "rules",
            "rules": rules.prefetch_related("reps"),
            "decision": decision,
            "regions": Region.objects.all(),
            "sources": Source.choices,
            "reps": User.objects.filter(is_active=True),
            "asked": request.GET,
            "recycle_rules": recycle_rules,
            "sweep_preview": sweep_preview,
        },
    )


# --- merge duplicates --------------------------------------------------------------------


def _merge_row(model, user, pk):
    if not pk or not str(pk).isdigit():
        return None
    return model.objects.visible_to(user).filter(pk=int(pk)).first()


@login_required
def merge_page(request):
    """Two duplicates side by side: choose per field which value stays, then merge (the
    second record is removed, everything linked to it moves to the first)."""
    from . import merge

    try:
        model = merge.model_for(request.GET.get("model") or request.POST.get("model") or "")
    except ServiceError:
        raise Http404 from None
    data = request.POST if request.method == "POST" else request.GET
    keep = _merge_row(model, request.user, data.get("keep"))
    if keep is None:
        raise Http404
    lose = _merge_row(model, request.user, data.get("lose"))
    model_name = model._meta.model_name
    if request.method == "POST" and lose is not None:
        take = request.POST.getlist("take")
        try:
            record = merge.merge(model_name, keep.pk, lose.pk, actor=request.user, take=take)
        except ServiceError as exc:
            messages.error(request, exc.message)
        else:
            moved = sum(record.moved.values())
            messages.success(request, _("Merged: %(n)d linked records moved.") % {"n": moved})
            return redirect(model.objects.get(pk=keep.pk))
    rows = []
    if lose is not None:
        for field in merge.choosable_fields(model):
            a, b = getattr(keep, field.name), getattr(lose, field.name)
            display = f"get_{field.name}_display"
            show_a = getattr(keep, display)() if hasattr(keep, display) else a
            show_b = getattr(lose, display)() if hasattr(lose, display) else b
            # Pre-select the other record's value only where the kept one is empty.
            rows.append({
                "name": field.name, "label": field.verbose_name, "a": show_a, "b": show_b,
                "same": a == b, "take_b": a in (None, "") and b not in (None, ""),
            })  # fmt: skip
    return render(
        request,
        "leads/merge.html",
        {
            "nav": "leads" if model is Lead else "accounts",
            "model_name": model_name,
            "model_label": model._meta.verbose_name,
            "keep": keep,
            "lose": lose,
            "rows": rows,
            "candidates": merge.candidates(keep, request.user) if lose is None else [],
        },
    )


@login_required
def recycle_due(request):
    """What goes back to a pool soon unless followed up: the user's leads and accounts
    whose owner was warned by the recycle sweep (and, for a manager, their team's)."""
    from .recycle import warned_accounts

    leads = (
        Lead.objects.visible_to(request.user)
        .filter(owner__isnull=False, recycle_warned_at__isnull=False, status__in=OPEN_STATUSES)
        .select_related("owner", "region")
        .order_by("recycle_warned_at", "pk")
    )
    accounts = (
        warned_accounts(Account.objects.visible_to(request.user))
        .select_related("owner", "region")
        .order_by("recycle_warned_at", "pk")
    )
    return render(
        request,
        "leads/recycle_due.html",
        {"nav": "pool", "leads": leads[:200], "accounts": accounts[:200]},
    )
