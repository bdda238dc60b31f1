"""Distances on the Earth for check-ins: the haversine formula on a sphere.

A sphere of the mean Earth radius is within 0.5% of the ellipsoid everywhere, which is
far below the accuracy of a phone's position (tens of metres) — good enough to tell "at
the customer" from "across town"."""

import math
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

EARTH_RADIUS_M = 6_371_000
COORDINATE_PLACES = Decimal("0.000001")  # 6 decimals: about 0.1 m


def haversine_m(lat1, lng1, lat2, lng2) -> int:
    """The great-circle distance in whole metres between two points given in decimal
    degrees (floats or Decimals)."""
    phi1, phi2 = math.radians(float(lat1)), math.radians(float(lat2))
    d_phi = phi2 - phi1
    d_lambda = math.radians(float(lng2) - float(lng1))
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return round(2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a))))


def coordinate(value, limit: int) -> Decimal | None:
    """``value`` as a Decimal of 6 places within ±``limit`` degrees, or None when it is
    not a finite number in range."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    if not number.is_finite() or abs(number) > limit:
        return None
    return number.quantize(COORDINATE_PLACES, rounding=ROUND_HALF_EVEN)
