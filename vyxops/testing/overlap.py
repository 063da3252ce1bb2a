"""How many calls were under way at once: what concurrency tests assert on."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Overlap:
    """Counts the calls inside :meth:`call` at the same moment; ``most`` is the highest count seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    @contextmanager
    def call(self, lasting: float = 0.0) -> Iterator[None]:
        """One call, held open for ``lasting`` seconds so that others can overlap it."""
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(lasting)
            yield
        finally:
            with self._lock:
                self.now -= 1
