"""What a long run is doing, said where a person is looking — and nowhere in a scheduled run.

- Under the CLI, the notebook's kernel appends each stage to ``$VYXOPS_PROGRESS_FILE``;
  the CLI echoes new lines on its stderr, only when stderr is a terminal. It draws no
  bar there (the CLI sets ``$VYXOPS_PROGRESS`` to 0 for its kernel).
- In JupyterLab, a ``tqdm.auto`` bar shows the stages in the notebook.
- Anywhere else (tests, scheduled papermill runs, plain Python) nothing is shown.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

FILE_ENV = "VYXOPS_PROGRESS_FILE"
BAR_ENV = "VYXOPS_PROGRESS"  # "0": no bar (README); the CLI sets it for its kernel


class Stages:
    """A run's stages: :meth:`step` says the next one."""

    def __init__(self, total: int, desc: str) -> None:
        self.path = os.environ.get(FILE_ENV) or None
        self.bar: Any = None
        if self.path is None and _interactive():
            from tqdm.auto import tqdm  # type: ignore[import-untyped]  # tqdm ships no types

            self.bar = tqdm(total=total, desc=desc, leave=False)
        self.desc = desc

    def step(self, text: str) -> None:
        if self.path is not None:
            try:
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(f"{self.desc}: {text}\n")
            except OSError:
                self.path = None  # progress is never worth failing a run for
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextmanager
def stages(total: int, desc: str) -> Iterator[Stages]:
    s = Stages(total, desc)
    try:
        yield s
    finally:
        s.close()


def _interactive() -> bool:
    """In a Jupyter kernel a person watches (not papermill's, which sets no frontend we can see)."""
    if os.environ.get(BAR_ENV, "1") == "0" or "PAPERMILL_EXECUTION" in os.environ:
        return False
    ipython = sys.modules.get("IPython")  # a kernel has imported it: a script need not (~30 ms, in a run's hot path)
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
