"""Named check points where other modules may refuse an action.

A service calls ``run_checks("before_lose", opp, actor=...)`` before writing; the rules
module registers a check there (e.g. "at least 7 contacts before closing as lost") that
raises a :class:`loudou.core.exceptions.ServiceError` to refuse. The pipeline module thus
does not import the rules module.
"""

import threading
import weakref
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


# Events: something happened; listeners react (create follow-up tasks, resolve rule
# breaches) without the emitting module importing them. A listener runs inside the
# emitter's transaction, so its writes commit or roll back with the event; a listener
# that must not hold up the request enqueues a task instead.
_listeners: dict[str, list[Callable]] = defaultdict(list)


def on(event: str, listener: Callable) -> None:
    """Call ``listener(obj, **context)`` whenever ``event`` is emitted; registering
    twice is harmless."""
    if listener not in _listeners[event]:
        _listeners[event].append(listener)


def off(event: str, listener: Callable) -> None:
    if listener in _listeners[event]:
        _listeners[event].remove(listener)


def emit(event: str, obj, **context) -> None:
    """Tell every listener of ``event``; a listener's exception propagates (and so rolls
    back the emitter's transaction) — listeners are part of the action, not a side show.

    Events so far: ``activity_logged`` (activity, actor), ``activity_changed``
    (activity, actor, linked_before: the ids of the records it was linked to before the
    change, by link name), ``activity_deleted`` (the deleted activity, actor,
    linked_before), ``handed_over`` (hand_over record: from_user, to_user or pool,
    actor)."""
    for listener in list(_listeners.get(event, ())):
        listener(obj, **context)


class QuerysetDeletions:
    """For a ``pre_delete`` receiver that handles a queryset's deletion once, for all
    its rows (Django sends the signal once per row, with the queryset as ``origin``):
    ``first(origin, model)`` is True for a single row's deletion and for the first row of
    a queryset of ``model``, False for its later rows. Each receiver keeps its own."""

    def __init__(self):
        self._local = threading.local()

    def first(self, origin, model) -> bool:
        from django.db.models import QuerySet

        if not (isinstance(origin, QuerySet) and origin.model is model):
            return True
        seen = getattr(self._local, "origins", None)
        if seen is None:
            seen = self._local.origins = weakref.WeakSet()
        if origin in seen:
            return False
        seen.add(origin)
        return True
