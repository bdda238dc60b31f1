"""Pages (being built): each route renders a placeholder until its page lands."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def placeholder(request, pk=None):
    return render(request, "web/placeholder.html")
