"""Organisation pages: the people and teams a user may see, and their own profile."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from loudou.web.helpers import save_with_service

from . import services
from .forms import ProfileForm, TokenForm
from .models import ApiToken, HandOver, Team, User


@login_required
def people(request):
    """Teams as a tree with their members, limited to what the user may see."""
    visible = User.objects.visible_to(request.user).select_related("team", "region")
    team_ids = set(visible.values_list("team_id", flat=True))
    teams = Team.objects.filter(pk__in=team_ids).annotate(
        active_members=Count("members", filter=Q(members__is_active=True))
    )
    members = {}
    for person in visible.order_by("role", "username"):
        members.setdefault(person.team_id, []).append(person)
    tree = [(team, members.get(team.pk, [])) for team in teams.order_by("path")]
    return render(
        request,
        "org/people.html",
        {"nav": "org", "tree": tree, "unassigned": members.get(None, [])},
    )


@login_required
def team(request, pk):
    """One team; only reachable by someone who can see at least one of its members."""
    team = get_object_or_404(
        Team.objects.filter(pk__in=User.objects.visible_to(request.user).values("team_id")),
        pk=pk,
    )
    members = (
        User.objects.visible_to(request.user)
        .filter(team__path__startswith=team.path)
        .select_related("team", "region")
    )
    return render(request, "org/team.html", {"nav": "org", "team": team, "members": members})


@login_required
def profile(request):
    """Edit my name, contact details and language; make and revoke API tokens."""
    form = ProfileForm(instance=request.user)
    token_form = TokenForm()
    new_key = None
    if request.method == "POST":
        if "create_token" in request.POST:
            token_form = TokenForm(request.POST)
            if token_form.is_valid():
                _token, new_key = services.create_token(
                    request.user, name=token_form.cleaned_data["name"]
                )
                token_form = TokenForm()
        else:
            form = ProfileForm(request.POST, instance=request.user)
            if form.is_valid():
                form.save()
                messages.success(request, _("Your profile was saved."))
                response = redirect("org:profile")
                if form.cleaned_data["language"]:
                    response.set_cookie("django_language", form.cleaned_data["language"])
                return response
    tokens = request.user.api_tokens.filter(revoked_at__isnull=True)
    return render(
        request,
        "org/profile.html",
        {"form": form, "token_form": token_form, "tokens": tokens, "new_key": new_key},
    )


@login_required
@require_POST
def revoke_token(request, pk):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    services.revoke_token(token)
    messages.success(request, _("The token was revoked; scripts using it stop working now."))
    return redirect("org:profile")


# --- hand-over ---------------------------------------------------------------------------


def _may_hand_over(user) -> bool:
    return user.sees_everything or bool(user.managed_team_path)


@login_required
def handover(request):
    """Choose the leaving rep, see what they own, choose the receivers (one person, a
    split among several, per-kind receivers, pools), preview who gets what, confirm.
    Managers and admins only; a manager within their subtree."""
    from loudou.core.exceptions import ServiceError
    from loudou.leads.models import PublicPool

    from . import handover as service
    from .forms import HandOverForm, kind_field_name

    if not _may_hand_over(request.user):
        raise Http404
    data = request.POST if request.method == "POST" else (request.GET or None)
    kinds = [(m._meta.label_lower, m._meta.verbose_name_plural) for m in service.owned_models()]
    form = HandOverForm(
        data, actor=request.user, pools=PublicPool.objects.filter(is_active=True), kinds=kinds
    )
    lines = shares = None
    if form.is_bound and form.is_valid():
        source = form.cleaned_data["from_user"]
        lines = service.inventory(source)
        if request.method == "POST":
            try:
                service.check_allowed(request.user, source)
                the_plan = service.preview(source, **form.options())
                shares = _share_rows(the_plan.shares(), the_plan.unplaced)
            except ServiceError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            if shares is not None and "preview" not in request.POST:
                if not form.cleaned_data.get("confirm"):
                    form.add_error("confirm", _("Tick the box to confirm the hand-over."))
                else:
                    record = save_with_service(
                        form,
                        lambda: service.hand_over(
                            source, actor=request.user, **form.options(),
                            deactivate=form.cleaned_data.get("deactivate", False),
                            left_on=form.cleaned_data.get("left_on"),
                        ),
                    )  # fmt: skip
                    if record:
                        messages.success(request, _("Hand-over done."))
                        return redirect(record)
    past = HandOver.objects.select_related("from_user", "to_user", "by")
    if not request.user.sees_everything:
        past = past.filter(from_user__in=User.objects.visible_to(request.user))
    kind_fields = []
    if lines:
        kind_fields = [form[kind_field_name(line.label)] for line in lines if line.count]
    return render(
        request,
        "org/handover.html",
        {
            "nav": "org", "form": form, "lines": lines, "kind_fields": kind_fields,
            "shares": shares, "total": sum(line.count for line in lines) if lines else 0,
            "past": past[:20],
        },
    )  # fmt: skip


def _share_rows(shares: list[dict], unplaced: int = 0) -> list[tuple]:
    """(receiver or pool name, kind name, count) for the page, receivers together."""
    from loudou.leads.models import PublicPool

    from . import handover as service

    names = {m._meta.label_lower: m._meta.verbose_name_plural for m in service.owned_models()}
    users = {u.pk: u for u in User.objects.filter(pk__in={s["to_id"] for s in shares} - {None})}
    pools = {p.pk: p for p in PublicPool.objects.filter(
        pk__in={s["pool_id"] for s in shares} - {None})}  # fmt: skip
    rows = []
    for share in shares:
        if share["to_id"]:
            who = users.get(share["to_id"], share["to_id"])
        else:
            who = _("pool %(name)s") % {"name": pools.get(share["pool_id"], share["pool_id"])}
        rows.append((str(who), names.get(share["label"], share["label"]), share["count"]))
    return sorted(rows, key=lambda row: row[0])


@login_required
def handover_detail(request, pk):
    """One hand-over: who, to whom, how many records of each kind. Seen by the people
    involved, and by managers and admins who see the leaving rep."""
    record = get_object_or_404(HandOver.objects.select_related("from_user", "to_user", "by"), pk=pk)
    user = request.user
    involved = user.pk in (record.from_user_id, record.to_user_id, record.by_id)
    if not involved and not (
        _may_hand_over(user)
        and User.objects.visible_to(user).filter(pk=record.from_user_id).exists()
    ):
        raise Http404
    from . import handover as service

    names = {m._meta.label_lower: m._meta.verbose_name_plural for m in service.owned_models()}
    rows = []
    for label, n in record.counts.items():
        base, _sep, where = label.partition(":")
        rows.append((names.get(base, base), where == "pool", n))
    return render(
        request,
        "org/handover_detail.html",
        {"nav": "org", "record": record, "rows": rows, "shares": _share_rows(record.shares)},
    )
