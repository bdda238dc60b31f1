"""Pipeline pages: the board, the opportunity list, detail and forms, stage actions.

Views are thin: they parse input, call a service in loudou.pipeline.services, and render.
Every lookup is scoped with ``visible_to``; a refusal from a service becomes a field error
(forms) or a 409/422 answer with the reason (board drags, htmx actions).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from loudou.core.exceptions import ServiceError
from loudou.org.models import Team, User
from loudou.web.helpers import read_filters, save_with_service

from . import services
from .choices import StageKind, Status
from .filters import OpportunityFilter
from .forms import LoseForm, OpportunityForm, PipelineForm, StageFormSet
from .models import LostReason, Opportunity, Pipeline, ProductLine, Stage
from .queries import open_in_pipeline, stage_totals

COLUMN_PAGE = 30
LIST_PAGE = 50


def _visible_opportunity(request, pk):
    return get_object_or_404(
        Opportunity.objects.visible_to(request.user).select_related(
            "stage", "pipeline", "account", "owner", "furthest_stage", "lost_reason",
            "product_line",
        ),
        pk=pk,
    )  # fmt: skip


def _board_filter(request, pipeline) -> OpportunityFilter:
    f = read_filters(request, OpportunityFilter)
    f.pipeline = pipeline.pk
    f.status = Status.OPEN
    return f


# --- board -----------------------------------------------------------------------------


@login_required
def board_default(request):
    pipeline = Pipeline.objects.filter(is_archived=False).first()
    if pipeline is None:
        return render(request, "pipeline/no_pipeline.html", {"nav": "board"})
    return redirect("pipeline:board", pk=pipeline.pk)


@login_required
def board(request, pk):
    """The pipeline board: one column per open stage. Each column loads lazily — its
    first page of cards and its totals (count, amount, weighted amount, summed by the
    database) — so the page opens at once whatever the volume."""
    pipeline = get_object_or_404(Pipeline, pk=pk)
    filters = _board_filter(request, pipeline)
    stages = list(pipeline.stages.filter(is_archived=False).order_by("position", "pk"))
    columns = [(s, None) for s in stages if s.kind == StageKind.OPEN]
    terminals = [s for s in stages if s.kind != StageKind.OPEN]
    query = request.GET.copy()
    query.pop("offset", None)
    return render(
        request,
        "pipeline/board.html",
        {
            "nav": "board",
            "pipeline": pipeline,
            "pipelines": Pipeline.objects.filter(is_archived=False),
            "columns": columns,
            "terminals": terminals,
            "filters": filters,
            "query": query.urlencode(),
            "owners": User.objects.visible_to(request.user).filter(is_active=True),
            "teams": _visible_teams(request.user),
            "product_lines": ProductLine.objects.filter(is_active=True),
            "lost_reasons": LostReason.objects.filter(is_active=True),
        },
    )


def _visible_teams(user):
    if user.sees_everything:
        return Team.objects.all()
    if user.managed_team_path:
        return Team.objects.filter(path__startswith=user.managed_team_path)
    return Team.objects.filter(pk=user.team_id)


@login_required
def board_column(request, pk, stage_id):
    """One page of cards of one column (htmx); the last card asks for the next page."""
    pipeline = get_object_or_404(Pipeline, pk=pk)
    stage = get_object_or_404(Stage, pk=stage_id, pipeline=pipeline)
    filters = _board_filter(request, pipeline)
    try:
        offset = max(int(request.GET.get("offset", 0)), 0)
    except ValueError:
        offset = 0
    qs = (
        filters.apply(open_in_pipeline(request.user, pipeline))
        .filter(stage=stage)
        .select_related("account", "owner", "stage")
        .order_by("expected_close_date", "-amount", "pk")
    )
    cards = list(qs[offset : offset + COLUMN_PAGE + 1])
    has_more = len(cards) > COLUMN_PAGE
    query = request.GET.copy()
    query["offset"] = offset + COLUMN_PAGE
    total = stage_totals(qs).get(stage.pk, {}) if offset == 0 else None
    return render(
        request,
        "pipeline/_column.html",
        {
            "cards": cards[:COLUMN_PAGE],
            "has_more": has_more,
            "next_url": f"{request.path}?{query.urlencode()}",
            "stage": stage,
            "total": total,
        },
    )


def _board_response(request, opp, before: Stage):
    """After a drag: the fresh card and the totals of the two columns it touched,
    swapped out of band."""
    filters = _board_filter(request, opp.pipeline)
    stages = [s for s in {before, opp.stage} if s.kind == StageKind.OPEN]
    qs = filters.apply(open_in_pipeline(request.user, opp.pipeline)).filter(stage__in=stages)
    totals = stage_totals(qs)
    columns = [(s, totals.get(s.pk, {})) for s in stages]
    return render(
        request, "pipeline/_moved.html", {"opp": opp, "columns": columns, "stage": opp.stage}
    )


def _refusal(exc: ServiceError) -> HttpResponse:
    return HttpResponse(exc.message, status=exc.status, content_type="text/plain; charset=utf-8")


def _version(request):
    try:
        return int(request.POST.get("version", ""))
    except ValueError:
        return None


# --- actions ---------------------------------------------------------------------------


@login_required
@require_POST
def opportunity_move(request, pk):
    opp = _visible_opportunity(request, pk)
    before = opp.stage
    stage = Stage.objects.filter(pk=request.POST.get("stage") or 0).first()
    if stage is None:
        return HttpResponse(_("Unknown stage."), status=422)
    try:
        opp = services.move_opportunity(
            opp, stage, actor=request.user, version=_version(request),
            checklist=request.POST.getlist("checklist"),
        )  # fmt: skip
    except ServiceError as exc:
        return _action_refused(request, opp, exc)
    return _action_done(request, opp, _("Moved to %s.") % opp.stage, before)


@login_required
@require_POST
def opportunity_win(request, pk):
    opp = _visible_opportunity(request, pk)
    before = opp.stage
    try:
        opp = services.win_opportunity(
            opp, actor=request.user, version=_version(request),
            checklist=request.POST.getlist("checklist"),
        )  # fmt: skip
    except ServiceError as exc:
        return _action_refused(request, opp, exc)
    return _action_done(request, opp, _("Won. Congratulations!"), before)


@login_required
@require_POST
def opportunity_lose(request, pk):
    opp = _visible_opportunity(request, pk)
    before = opp.stage
    form = LoseForm(request.POST)
    from_board = request.htmx and request.POST.get("from") == "board"
    if not form.is_valid():
        if not from_board:
            return _detail(request, opp, lose_form=form)
        exc = ServiceError(_("Choose why the deal was lost."))
        exc.status = 422
        return _action_refused(request, opp, exc)
    try:
        opp = services.lose_opportunity(
            opp, form.cleaned_data["reason"], actor=request.user,
            version=form.cleaned_data["version"], note=form.cleaned_data["note"],
        )  # fmt: skip
    except ServiceError as exc:
        if exc.field in form.fields and not from_board:
            # A refusal about the form's own fields (a follow-up rule wants more
            # contacts first) is shown on the field, the panel open.
            form.add_error(exc.field, exc.message)
            return _detail(request, opp, lose_form=form)
        return _action_refused(request, opp, exc)
    return _action_done(request, opp, _("Closed as lost."), before)


@login_required
@require_POST
def opportunity_reopen(request, pk):
    opp = _visible_opportunity(request, pk)
    before = opp.stage
    try:
        opp = services.reopen_opportunity(opp, actor=request.user, version=_version(request))
    except ServiceError as exc:
        return _action_refused(request, opp, exc)
    return _action_done(request, opp, _("Reopened."), before)


@login_required
@require_POST
def opportunity_tick(request, pk):
    opp = _visible_opportunity(request, pk)
    before = opp.stage
    try:
        opp = services.tick_checklist(
            opp, request.POST.getlist("checklist"), actor=request.user, version=_version(request)
        )
    except ServiceError as exc:
        return _action_refused(request, opp, exc)
    return _action_done(request, opp, _("Checklist saved."), before)


def _action_done(request, opp, message, before):
    """Board drags get out-of-band fragments; the detail page reloads with a message."""
    if request.htmx and request.POST.get("from") == "board":
        return _board_response(request, opp, before)
    messages.success(request, message)
    return redirect(opp)


def _action_refused(request, opp, exc):
    if request.htmx and request.POST.get("from") == "board":
        return _refusal(exc)
    messages.error(request, exc.message)
    return redirect(opp)


# --- list, detail, forms ---------------------------------------------------------------


def listed_opportunities(request):
    """The list's filters and rows, as the page lists them (and its download files)."""
    filters = read_filters(request, OpportunityFilter)
    if filters.sort is None:
        filters.sort = "-updated_at"
    qs = filters.apply(Opportunity.objects.visible_to(request.user)).select_related(
        "account", "owner", "stage", "pipeline"
    )
    return filters, qs


@login_required
def opportunity_list(request):
    """All opportunities the user may see, with the API's filters, sorting and search."""
    filters, qs = listed_opportunities(request)
    page = Paginator(qs, LIST_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    query_nosort = query.copy()
    query_nosort.pop("sort", None)
    return render(
        request,
        "pipeline/opportunity_list.html",
        {
            "nav": "opportunities",
            "page": page,
            "filters": filters,
            "sort": filters.sort,
            "query": query.urlencode(),
            "query_nosort": query_nosort.urlencode(),
            "pipelines": Pipeline.objects.filter(is_archived=False),
            "owners": User.objects.visible_to(request.user).filter(is_active=True),
            "statuses": Status.choices,
            "product_lines": ProductLine.objects.filter(is_active=True),
        },
    )


@login_required
def opportunity_detail(request, pk):
    return _detail(request, _visible_opportunity(request, pk))


def _detail(request, opp, *, lose_form=None):
    """The opportunity page; ``lose_form`` is a refused "close as lost" form, shown open
    with its errors."""
    stages = opp.pipeline.stages.filter(is_archived=False).order_by("position", "pk")
    return render(
        request,
        "pipeline/opportunity_detail.html",
        {
            "nav": "opportunities",
            "opp": opp,
            "stages": stages,
            "contacts": opp.contacts.all(),
            "ticked": opp.ticked(opp.stage),
            "lose_form": lose_form or LoseForm(initial={"version": opp.version}),
            "shared_with": opp.shared_with.all(),
        },
    )


def _opportunity_data(form):
    data = dict(form.cleaned_data)
    data.pop("version", None)
    if data.get("probability") is None:
        data.pop("probability", None)
    return data


@login_required
def opportunity_create(request):
    initial = {"owner": request.user}
    for key in ("account", "pipeline"):
        if request.GET.get(key, "").isdigit():
            initial[key] = int(request.GET[key])
    form = OpportunityForm(request.POST or None, actor=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = _opportunity_data(form)
        opp = save_with_service(
            form, lambda: services.create_opportunity(actor=request.user, **data)
        )
        if opp:
            messages.success(request, _("Opportunity created."))
            return redirect(opp)
    return render(request, "pipeline/opportunity_form.html", {"nav": "opportunities", "form": form})


@login_required
def opportunity_edit(request, pk):
    opp = _visible_opportunity(request, pk)
    form = OpportunityForm(request.POST or None, instance=opp, actor=request.user)
    if request.method == "POST" and form.is_valid():
        data = _opportunity_data(form)
        version = form.cleaned_data.get("version")
        if "probability" not in data and opp.probability_manual:
            data["probability"] = "default"
        saved = save_with_service(
            form,
            lambda: services.update_opportunity(
                Opportunity.objects.get(pk=pk), actor=request.user, version=version, **data
            ),
        )
        if saved:
            messages.success(request, _("Opportunity saved."))
            return redirect(saved)
    return render(
        request,
        "pipeline/opportunity_form.html",
        {"nav": "opportunities", "form": form, "opp": opp},
    )


# --- pipeline settings (admin) ---------------------------------------------------------


def _admin_only(request):
    if not request.user.sees_everything:
        raise PermissionDenied


@login_required
def pipeline_settings(request):
    _admin_only(request)
    pipelines = Pipeline.objects.prefetch_related("stages", "product_line")
    return render(request, "pipeline/settings.html", {"nav": "settings", "pipelines": pipelines})


@login_required
def pipeline_create(request):
    _admin_only(request)
    form = PipelineForm(request.POST or None, creating=True)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        template = data.pop("template")
        pipeline = services.create_pipeline_from_template(template, **data)
        messages.success(request, _("Pipeline created; adjust its stages below."))
        return redirect("pipeline:pipeline-edit", pk=pipeline.pk)
    return render(request, "pipeline/pipeline_form.html", {"nav": "settings", "form": form})


@login_required
def pipeline_edit(request, pk):
    """Edit a pipeline and its stages: rename, rates, guidance, checklist, order, add,
    archive. History keeps pointing at archived stages."""
    _admin_only(request)
    pipeline = get_object_or_404(Pipeline, pk=pk)
    form = PipelineForm(request.POST or None, instance=pipeline)
    stages_qs = pipeline.stages.filter(kind=StageKind.OPEN).order_by("position", "pk")
    formset = StageFormSet(request.POST or None, queryset=stages_qs, prefix="stages")
    if request.method == "POST":
        action = request.POST.get("action", "save")
        try:
            if action.startswith("archive:"):
                services.archive_stage(get_object_or_404(stages_qs, pk=action.split(":")[1]))
                messages.success(request, _("Stage archived."))
                return redirect("pipeline:pipeline-edit", pk=pk)
            if action.startswith("restore:"):
                stages_qs.filter(pk=action.split(":")[1]).update(is_archived=False)
                return redirect("pipeline:pipeline-edit", pk=pk)
            if form.is_valid() and formset.is_valid():
                services.update_pipeline(pipeline, **form.cleaned_data)
                order = []
                for stage_form in sorted(
                    formset.forms, key=lambda f: f.cleaned_data.get("ORDER") or 0
                ):
                    if not stage_form.cleaned_data:
                        continue
                    data = {
                        k: v for k, v in stage_form.cleaned_data.items() if k not in {"id", "ORDER"}
                    }
                    if stage_form.instance.pk:
                        if stage_form.has_changed():
                            services.update_stage(stage_form.instance, **data)
                        order.append(stage_form.instance.pk)
                    elif data.get("name"):
                        new = services.add_stage(pipeline, **data)
                        order.append(new.pk)
                services.reorder_stages(
                    pipeline,
                    order + list(stages_qs.exclude(pk__in=order).values_list("pk", flat=True)),
                )
                messages.success(request, _("Pipeline saved."))
                return redirect("pipeline:pipeline-edit", pk=pk)
        except ServiceError as exc:
            messages.error(request, exc.message)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    return render(
        request,
        "pipeline/pipeline_form.html",
        {"nav": "settings", "form": form, "formset": formset, "pipeline": pipeline,
         "terminals": pipeline.stages.exclude(kind=StageKind.OPEN)},
    )  # fmt: skip
