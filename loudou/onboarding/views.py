"""Pages of the onboarding roadmap: a rep's own roadmap, the team view of a manager, the
admin page of bands and standards, and the dashboard card (loaded lazily by htmx)."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from loudou.core.exceptions import NotPermitted
from loudou.org.models import Role
from loudou.web.helpers import save_with_service

from . import progress, queries, services
from .forms import BandForm, StandardForm
from .models import Band, Standard

NAV = "targets"


def sees_team(user) -> bool:
    return bool(user.sees_everything or user.managed_team_path)


@login_required
def roadmap(request):
    """A manager or an admin lands on the team view, anyone else on their own roadmap."""
    if sees_team(request.user):
        return render(request, "onboarding/team.html", {
            "nav": NAV, "summary": queries.team_summary(request.user),
        })  # fmt: skip
    return _rep_page(request, request.user)


@login_required
def rep_roadmap(request, pk):
    """One rep's roadmap; a rep outside the viewer's scope is a 404."""
    rep = get_object_or_404(queries.roadmap_users(request.user), pk=pk)
    return _rep_page(request, rep)


def _rep_page(request, rep):
    p = queries.roadmap(rep)
    weeks = p["weeks"]
    return render(request, "onboarding/roadmap.html", {
        "nav": NAV, "rep": rep, "p": p, "weeks": weeks, "is_self": rep.pk == request.user.pk,
        "sees_team": sees_team(request.user), "S": progress,
    })  # fmt: skip


@login_required
def dashboard_card(request):
    """The dashboard's compact card: a rep onboarding sees band, week and what is behind;
    a manager how many of their reps are behind; anybody else nothing."""
    user = request.user
    if sees_team(user):
        summary = queries.team_summary(user)
        if not summary["onboarding"]:
            return HttpResponse("")
        return render(request, "onboarding/_card.html", {"summary": summary, "team": True})
    if user.role != Role.REP or user.hire_date is None:
        return HttpResponse("")
    p = queries.roadmap(user)
    if p["status"] != progress.ONBOARDING:
        return HttpResponse("")
    return render(request, "onboarding/_card.html", {"p": p, "team": False})


# --- administration ----------------------------------------------------------------------


def _admin_only(request):
    if not request.user.sees_everything:
        raise Http404


def _bands_context(forms=None):
    bands = Band.objects.prefetch_related("standards__stage__pipeline")
    forms = forms or {}
    rows = []
    for band in bands:
        rows.append({
            "band": band,
            "form": forms.get(("band", band.pk)) or BandForm(instance=band, prefix=f"b{band.pk}"),
            "standards": [
                (s, forms.get(("standard", s.pk))
                 or StandardForm(instance=s, prefix=f"s{s.pk}"))
                for s in band.standards.all()
            ],
            "new": forms.get(("new", band.pk)) or StandardForm(prefix=f"n{band.pk}"),
        })  # fmt: skip
    return {"nav": NAV, "rows": rows, "new_band": forms.get("new_band") or BandForm(prefix="nb")}


@login_required
def bands_page(request):
    """Bands and standards, editable by an administrator; others get a 404."""
    _admin_only(request)
    return render(request, "onboarding/bands.html", _bands_context())


def _band_fragment(request, band_pk, forms=None, status=200):
    context = _bands_context(forms)
    row = next((r for r in context["rows"] if r["band"].pk == band_pk), None)
    if row is None:
        return HttpResponse("")
    return render(request, "onboarding/bands.html#band", {**context, "row": row}, status=status)


def _answer(request, band_pk, ok, forms):
    """htmx: the band's card again (with errors on a refusal); plain POST: the page."""
    if request.htmx:
        return _band_fragment(request, band_pk, None if ok else forms, 200 if ok else 422)
    if ok:
        return redirect("onboarding:bands")
    return render(request, "onboarding/bands.html", _bands_context(forms), status=422)


@login_required
@require_POST
def band_edit(request, pk):
    _admin_only(request)
    band = get_object_or_404(Band, pk=pk)
    form = BandForm(request.POST, instance=band, prefix=f"b{band.pk}")
    ok = form.is_valid() and save_with_service(
        form, lambda: services.update_band(band, actor=request.user, **form.cleaned_data)
    )
    return _answer(request, band.pk, bool(ok), {("band", band.pk): form})


@login_required
@require_POST
def band_create(request):
    _admin_only(request)
    form = BandForm(request.POST, prefix="nb")
    ok = form.is_valid() and save_with_service(
        form, lambda: services.create_band(actor=request.user, **form.cleaned_data)
    )
    if ok:
        return redirect("onboarding:bands")
    return render(request, "onboarding/bands.html", _bands_context({"new_band": form}), status=422)


@login_required
@require_POST
def band_delete(request, pk):
    _admin_only(request)
    band = get_object_or_404(Band, pk=pk)
    try:
        services.delete_band(band, actor=request.user)
    except NotPermitted:
        pass  # the page offers no delete button for training
    return redirect("onboarding:bands")


@login_required
@require_POST
def standard_create(request, pk):
    _admin_only(request)
    band = get_object_or_404(Band, pk=pk)
    form = StandardForm(request.POST, prefix=f"n{band.pk}")
    ok = form.is_valid() and save_with_service(
        form, lambda: services.create_standard(band, actor=request.user, **form.cleaned_data)
    )
    return _answer(request, band.pk, bool(ok), {("new", band.pk): form})


@login_required
@require_POST
def standard_edit(request, pk):
    _admin_only(request)
    standard = get_object_or_404(Standard, pk=pk)
    form = StandardForm(request.POST, instance=standard, prefix=f"s{standard.pk}")
    ok = form.is_valid() and save_with_service(
        form, lambda: services.update_standard(standard, actor=request.user, **form.cleaned_data)
    )
    return _answer(request, standard.band_id, bool(ok), {("standard", standard.pk): form})


@login_required
@require_POST
def standard_delete(request, pk):
    _admin_only(request)
    standard = get_object_or_404(Standard, pk=pk)
    band_pk = standard.band_id
    services.delete_standard(standard, actor=request.user)
    return _answer(request, band_pk, True, {})
