"""Session and viewer lifecycles: states, the transitions allowed, and close reasons.

As in h11, each lifecycle is an Enum with an explicit table of what may follow
what, and one transition function (:meth:`Lifecycle.to`) that refuses anything
else, so a state is never a free string and never jumps.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Generic, TypeVar


class CloseReason(enum.StrEnum):
    """Why a viewer or a session ended; the values are the metrics' ``reason`` labels."""

    CLOSED = "closed"  # the client hung up, or the last viewer left
    FAILED = "failed"  # ICE or DTLS failed
    TIMEOUT = "timeout"  # no connection, no RTCP or no input for too long
    SHUTDOWN = "shutdown"  # the server is stopping
    REJECTED = "rejected"  # the offer could not be answered


class SessionState(enum.Enum):
    WAITING = "waiting"  # created; no viewer connected yet, nothing rendered
    RUNNING = "running"  # the pipeline runs
    CLOSING = "closing"
    CLOSED = "closed"


class ViewerState(enum.Enum):
    NEW = "new"  # offer being answered
    ANSWERED = "answered"  # answer sent; ICE/DTLS under way
    CONNECTED = "connected"  # media flows
    CLOSING = "closing"
    CLOSED = "closed"


SESSION_TRANSITIONS: Mapping[SessionState, frozenset[SessionState]] = {
    SessionState.WAITING: frozenset({SessionState.RUNNING, SessionState.CLOSING}),
    SessionState.RUNNING: frozenset({SessionState.CLOSING}),
    SessionState.CLOSING: frozenset({SessionState.CLOSED}),
    SessionState.CLOSED: frozenset(),
}

VIEWER_TRANSITIONS: Mapping[ViewerState, frozenset[ViewerState]] = {
    ViewerState.NEW: frozenset({ViewerState.ANSWERED, ViewerState.CLOSING}),
    ViewerState.ANSWERED: frozenset({ViewerState.CONNECTED, ViewerState.CLOSING}),
    ViewerState.CONNECTED: frozenset({ViewerState.CLOSING}),
    ViewerState.CLOSING: frozenset({ViewerState.CLOSED}),
    ViewerState.CLOSED: frozenset(),
}

S = TypeVar("S", bound=enum.Enum)


class LifecycleError(RuntimeError):
    """A transition the table does not allow."""


class Lifecycle(Generic[S]):
    """The current state of one object and the only way to change it."""

    def __init__(self, initial: S, transitions: Mapping[S, frozenset[S]]) -> None:
        self.state = initial
        self._transitions = transitions

    def can(self, new: S) -> bool:
        return new in self._transitions[self.state]

    def to(self, new: S) -> None:
        """Move to ``new``; :class:`LifecycleError` naming both states if not allowed."""
        if not self.can(new):
            allowed = ", ".join(s.value for s in self._transitions[self.state]) or "nothing"
            raise LifecycleError(
                f"cannot go from {self.state.value} to {new.value}; expected {allowed}"
            )
        self.state = new
