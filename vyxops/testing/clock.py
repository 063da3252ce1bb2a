"""A clock for tests of waiting: sleeping records the wait and (by default) moves its time, instantly."""

from __future__ import annotations


class FakeClock:
    """Satisfies :class:`vyxops.fetch.http.Clock`; ``sleeps`` lists every wait asked of it.

    ``moves=False`` keeps time still while sleeping, for threads whose own waits must not
    change what the others compute (a rate budget's refill, say).
    """

    def __init__(self, start: float = 1_750_000_000.0, *, moves: bool = True) -> None:
        self.t = start
        self.moves = moves
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds if self.moves else 0.0
