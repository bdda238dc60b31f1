"""Named check points where other modules may refuse an action.

A service calls ``run_checks("before_lose", opp, actor=...)`` before writing; the rules
module registers a check there (e.g. "at least 7 contacts before closing as lost") that
raises a :class:`loudou.core.exceptions.ServiceError` to refuse. The pipeline module thus
does not import the rules module.
"""

from collections import defaultdict
from collections.abc import Callable

_checks: dict[str, list[Callable]] = defaultdict(list)


def register_check(point: str, check: Callable) -> None:
    """Call ``check(obj, **context)`` at ``point``; registering twice is harmless."""
    if check not in _checks[point]:
        _checks[point].append(check)


def run_checks(point: str, obj, **context) -> None:
    """Run every check registered at ``point``; the first refusal propagates."""
    for check in _checks.get(point, ()):
        check(obj, **context)
