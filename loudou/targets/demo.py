"""Demo data for targets and performance (being built)."""

import random


def load_targets(rng: random.Random, ctx: dict) -> None:
    """Nothing yet."""
