"""Fixtures shared by every test: a small organisation with every kind of user.

    company
    ├── east (manager: east_mgr; reps: east_rep, east_rep2)
    │   └── east_sub (rep: sub_rep)
    └── south (manager: south_mgr; rep: south_rep)
    admin (role admin, no team)

``east_mgr`` manages the subtree east + east_sub; ``south_mgr`` only south.
"""

import pytest

from loudou.org.models import Region, Role, Team
from loudou.org.services import create_user

PASSWORD = "correct horse battery staple"


class Org:
    """Handles on the fixture organisation's teams, regions and users."""


@pytest.fixture
def org(db):
    o = Org()
    o.east_region = Region.objects.create(name="华东区")
    o.shanghai = Region.objects.create(name="上海", parent=o.east_region)
    o.south_region = Region.objects.create(name="华南区")
    o.east = Team.objects.create(name="East")
    o.east_sub = Team.objects.create(name="East Sub", parent=o.east)
    o.south = Team.objects.create(name="South")

    def user(username, role, team, region):
        return create_user(
            username, password=PASSWORD, name=username, role=role, team=team, region=region
        )

    o.admin = user("admin", Role.ADMIN, None, None)
    o.east_mgr = user("east_mgr", Role.MANAGER, o.east, o.east_region)
    o.east_rep = user("east_rep", Role.REP, o.east, o.shanghai)
    o.east_rep2 = user("east_rep2", Role.REP, o.east, o.shanghai)
    o.sub_rep = user("sub_rep", Role.REP, o.east_sub, o.shanghai)
    o.south_mgr = user("south_mgr", Role.MANAGER, o.south, o.south_region)
    o.south_rep = user("south_rep", Role.REP, o.south, o.south_region)
    return o
