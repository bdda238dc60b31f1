from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def task_list(request):
    return render(request, "web/placeholder.html", {"nav": "activities"})


@login_required
def calendar(request):
    return render(request, "web/placeholder.html", {"nav": "activities"})


@login_required
def task_detail(request, pk):
    return render(request, "web/placeholder.html", {"nav": "activities"})
