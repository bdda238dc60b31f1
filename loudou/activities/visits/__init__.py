"""Visits (拜访): planned, checked in from a phone, recorded as an activity (DOMAIN §10).

``services`` holds every write, ``queries`` the weekly statistics, ``geo`` the distance
arithmetic; ``views`` and ``api`` are the pages and endpoints (docs/activities.md)."""
