"""Demo data of this app (a step of loudou.web.demo.DEMO_STEPS): notification channels
that show the feature without sending anything — an inactive team webhook (its URL
points nowhere real) and a few e-mail preferences (the demo configures no SMTP server,
so no e-mail goes out)."""

from . import services

# Reserved for documentation (RFC 2606/6761): never resolves, so never receives anything.
EXAMPLE_HOOK = "https://robot.example.com/cgi-bin/webhook/send?key=demo-not-a-real-robot"


def load_channels(rng, ctx) -> None:
    """An inactive WeCom robot for the first manager's team, limited to lead and pool
    notifications; e-mail addresses (example.com) for the demo users who have none;
    e-mail on for two reps (one for every kind, one for hand-overs only) and off for
    the rest of the sales team."""
    users = ctx["users"]
    manager = next(u for u in users.values() if u.is_manager and u.team_id)
    services.create_webhook(
        manager,
        team=manager.team,
        name=f"{manager.team.name}群机器人",
        flavour="wecom",
        url=EXAMPLE_HOOK,
        kinds=["lead_assigned", "recycle_warning", "recycled"],
        include_subteams=True,
        active=False,
    )
    for user in users.values():
        if not user.email:
            user.email = f"{user.username}@example.com"
            user.save(update_fields=["email"])
    reps = ctx["reps"]
    services.set_email_preference(reps[0], active=True, version=0)
    services.set_email_preference(reps[1], active=True, kinds=["handover"], version=0)
    for rep in reps[2:4]:
        services.set_email_preference(rep, active=False, version=0)
