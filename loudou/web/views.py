"""The web shell: login, language choice, dashboard, health check."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from loudou.analytics.views import dashboard_summary
from loudou.customers.models import Account, Contact
from loudou.org.models import User


class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        user = form.get_user()
        if user.language:
            response.set_cookie(settings.LANGUAGE_COOKIE_NAME, user.language, samesite="Lax")
        return response


@require_POST
def set_language(request):
    """Switch the interface language; a logged-in user's choice is remembered."""
    language = request.POST.get("language", "")
    if language not in dict(settings.LANGUAGES):
        language = settings.LANGUAGE_CODE
    next_url = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        next_url = "/"
    if request.user.is_authenticated:
        User.objects.filter(pk=request.user.pk).update(language=language)
    translation.activate(language)
    response = HttpResponseRedirect(next_url)
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, samesite="Lax")
    return response


@login_required
def dashboard(request):
    """The first page after login: what is mine (or my team's) at a glance."""
    user = request.user
    context = {
        "account_count": Account.objects.visible_to(user).count(),
        "contact_count": Contact.objects.visible_to(user).count(),
        "colleague_count": User.objects.visible_to(user).filter(is_active=True).count(),
        "recent_accounts": Account.objects.visible_to(user)
        .select_related("owner", "region")
        .order_by("-updated_at")[:8],
        "pipeline": dashboard_summary(user),
    }
    return render(request, "web/dashboard.html", context)


def healthz(request):
    """For load balancers: 200 when the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
