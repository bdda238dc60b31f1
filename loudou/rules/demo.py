"""Demo data of this app (a step of loudou.web.demo.DEMO_STEPS)."""


def load_rules(rng, ctx) -> None:
    """Filled in by the app's builder."""
