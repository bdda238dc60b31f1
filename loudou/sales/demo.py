"""Demo data for contracts, orders and payments (being built)."""

import random


def load_sales(rng: random.Random, ctx: dict) -> None:
    """Nothing yet."""
