"""Demo data of the rules app (a step of loudou.web.demo.DEMO_STEPS).

The default rules and working week are installed by the data migration (the demo
installs them again on a flushed database). This step gives some accounts a revisit
interval and some contacts a birthday in the next days, runs the sweep once, then logs a
few follow-up calls on breached records so that the breach list has resolved breaches
next to open ones. Deterministic for a given ``rng`` (times are relative to now).
"""

from datetime import timedelta

from django.utils import timezone


def load_rules(rng, ctx) -> None:
    from loudou.activities.services import log_activity
    from loudou.customers.choices import RevisitClass
    from loudou.customers.models import Account, Contact

    from .models import Breach, FollowUpRule, Requirement
    from .sweep import sweep

    now = timezone.now()
    accounts = list(Account.objects.filter(owner__isnull=False).order_by("pk"))
    # Revisit intervals on a third of the accounts (a bulk UPDATE per class: demo data,
    # not an edit anybody made).
    for account in accounts:
        if rng.random() < 0.33:
            cls = rng.choice(RevisitClass.values)
            Account.objects.filter(pk=account.pk).update(revisit_class=cls)
    # Birthdays coming up for a few contacts, and some company anniversaries.
    contacts = list(Contact.objects.filter(account__owner__isnull=False).order_by("pk"))
    today = timezone.localdate(now)
    for contact in rng.sample(contacts, min(12, len(contacts))):
        day = today + timedelta(days=rng.randint(0, 3))
        if (day.month, day.day) == (2, 29):
            day -= timedelta(days=1)
        born = day.replace(year=day.year - rng.randint(28, 55))
        Contact.objects.filter(pk=contact.pk).update(birthday=born)
    for account in rng.sample(accounts, min(6, len(accounts))):
        day = today + timedelta(days=rng.randint(0, 7))
        if (day.month, day.day) == (2, 29):
            day -= timedelta(days=1)
        Account.objects.filter(pk=account.pk).update(
            founded_on=day.replace(year=day.year - rng.randint(3, 20))
        )

    # The demo's history is written; from now on a deal needs its contacts before it
    # may be closed as lost.
    FollowUpRule.objects.filter(requirement=Requirement.CONTACTS_BEFORE_LOST).update(is_active=True)
    run = sweep(now)
    # Some reps catch up: a call on a few breached records settles their breach.
    breached = list(
        Breach.objects.open()
        .filter(rule__requirement__in=["contact_every", "first_contact", "revisit"])
        .select_related("owner", "lead", "account", "opportunity")
        .order_by("pk")
    )
    for breach in rng.sample(breached, min(len(breached) // 4, 25)):
        subject = {"lead": breach.lead, "account": breach.account}
        subject = {k: v for k, v in subject.items() if v is not None}
        if breach.owner.is_active and subject:
            log_activity(
                breach.owner, kind="call", outcome="reached", notes="按跟进规则回访", **subject
            )
    ctx["rule_sweep"] = run
