from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def rule_list(request):
    return render(request, "web/placeholder.html", {"nav": "activities"})


@login_required
def breach_list(request):
    return render(request, "web/placeholder.html", {"nav": "activities"})
