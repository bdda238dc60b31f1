"""Demo data for onboarding roadmap (being built)."""

import random


def load_onboarding(rng: random.Random, ctx: dict) -> None:
    """Nothing yet."""
