"""Account and contact pages. Every lookup is scoped with ``visible_to``."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from loudou.org.models import Region
from loudou.pipeline.queries import opportunities_of_account
from loudou.web.helpers import read_filters, save_with_service

from . import services
from .choices import Grade, Segment
from .filters import AccountFilter, ContactFilter
from .forms import AccountForm, ContactForm
from .models import Account, Contact

PAGE_SIZE = 50


def listed_accounts(request):
    """The account list's filters, sort and rows in order (the page and its downloads)."""
    filters = read_filters(request, AccountFilter)
    qs = filters.apply(Account.objects.visible_to(request.user)).select_related("owner", "region")
    sort = request.GET.get("sort", "name")
    if sort.lstrip("-") not in {"name", "updated_at", "grade", "industry"}:
        sort = "name"
    return filters, sort, qs.order_by(sort, "pk")


@login_required
def account_list(request):
    filters, sort, qs = listed_accounts(request)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "customers/account_list.html",
        {
            "nav": "accounts",
            "page": page,
            "filters": filters,
            "sort": sort,
            "query": query.urlencode(),
            "grades": Grade.choices[1:],
            "segments": Segment.choices[1:],
            "regions": Region.objects.all(),
        },
    )


@login_required
def account_detail(request, pk):
    """Customer 360: everything linked to one account."""
    account = get_object_or_404(
        Account.objects.visible_to(request.user).select_related("owner", "region", "created_by"),
        pk=pk,
    )
    return render(
        request,
        "customers/account_detail.html",
        {
            "nav": "accounts",
            "account": account,
            "contacts": account.contacts.all(),
            "opportunities": opportunities_of_account(request.user, account),
            "shared_with": account.shared_with.all(),
        },
    )


@login_required
def account_create(request):
    form = AccountForm(request.POST or None, actor=request.user, initial={"owner": request.user})
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "version"}
        account = save_with_service(
            form, lambda: services.create_account(actor=request.user, **data)
        )
        if account:
            messages.success(request, _("Account created."))
            return redirect(account)
    return render(request, "customers/account_form.html", {"nav": "accounts", "form": form})


@login_required
def account_edit(request, pk):
    account = get_object_or_404(Account.objects.visible_to(request.user), pk=pk)
    form = AccountForm(request.POST or None, instance=account, actor=request.user)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        version = data.pop("version")
        saved = save_with_service(
            form,
            lambda: services.update_account(
                Account.objects.get(pk=pk), actor=request.user, version=version, **data
            ),
        )
        if saved:
            messages.success(request, _("Account saved."))
            return redirect(saved)
    return render(
        request,
        "customers/account_form.html",
        {"nav": "accounts", "form": form, "account": account},
    )


def listed_contacts(request):
    """The contact list's filters and rows in order (the page and its downloads)."""
    filters = read_filters(request, ContactFilter)
    qs = filters.apply(Contact.objects.visible_to(request.user)).select_related("account")
    return filters, qs.order_by("name", "pk")


@login_required
def contact_list(request):
    filters, qs = listed_contacts(request)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "customers/contact_list.html",
        {"nav": "contacts", "page": page, "filters": filters, "query": query.urlencode()},
    )


@login_required
def contact_detail(request, pk):
    contact = get_object_or_404(
        Contact.objects.visible_to(request.user).select_related("account"), pk=pk
    )
    return render(request, "customers/contact_detail.html", {"nav": "contacts", "contact": contact})


@login_required
def contact_create(request, pk):
    account = get_object_or_404(Account.objects.visible_to(request.user), pk=pk)
    form = ContactForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "version"}
        contact = save_with_service(
            form, lambda: services.create_contact(account, actor=request.user, **data)
        )
        if contact:
            messages.success(request, _("Contact added."))
            return redirect(account)
    return render(
        request,
        "customers/contact_form.html",
        {"nav": "contacts", "form": form, "account": account},
    )


@login_required
def contact_edit(request, pk):
    contact = get_object_or_404(
        Contact.objects.visible_to(request.user).select_related("account"), pk=pk
    )
    form = ContactForm(request.POST or None, instance=contact)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        version = data.pop("version")
        saved = save_with_service(
            form,
            lambda: services.update_contact(
                Contact.objects.get(pk=pk), actor=request.user, version=version, **data
            ),
        )
        if saved:
            messages.success(request, _("Contact saved."))
            return redirect(saved)
    return render(
        request,
        "customers/contact_form.html",
        {"nav": "contacts", "form": form, "account": contact.account, "contact": contact},
    )
