"""Demo data for activities (being built)."""

import random


def load_activities(rng: random.Random, ctx: dict) -> None:
    """Nothing yet."""
