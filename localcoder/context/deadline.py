"""The context stage's clock: when it must have answered, and whether the request behind it is still wanted.

Below everything else in context/ (the repository listing, git, the resolvers and gather all check it), so it
imports nothing of localcoder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ASK_SECONDS = 0.01  # `cancelled` is asked at most this often: it may be a system call (is the client still there?)


@dataclass(frozen=True)
class Deadline:
    """When the context stage must have answered, and whether the request behind it is still wanted."""

    at: float  # time.monotonic() seconds
    cancelled: Callable[[], bool] | None = None
    _asked: list[Any] = field(default_factory=lambda: [float("-inf"), False], compare=False, repr=False)

    @classmethod
    def after(cls, seconds: float, cancelled: Callable[[], bool] | None = None) -> Deadline:
        return cls(time.monotonic() + seconds, cancelled)

    @classmethod
    def never(cls) -> Deadline:
        return cls(float("inf"))

    def left(self) -> float:
        return self.at - time.monotonic()

    def expired(self) -> bool:
        """Past its time, or cancelled (which stays so once said)."""
        now = time.monotonic()
        if now >= self.at:
            return True
        if self.cancelled is None:
            return False
        asked_at, answer = self._asked
        if not answer and now - asked_at >= ASK_SECONDS:
            self._asked[:] = [now, bool(self.cancelled())]
        return bool(self._asked[1])
