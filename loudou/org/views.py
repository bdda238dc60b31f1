"""Organisation pages: the people and teams a user may see, and their own profile."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from . import services
from .forms import ProfileForm, TokenForm
from .models import ApiToken, Team, User


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
