"""Kill the CLI's notebook kernel at a chosen point, with a real SIGKILL: for tests and ``make faults``.

The kernel is the process an OOM kill takes: ``kernel_death_env`` returns the environment
for a ``vyxops`` subprocess whose kernel sends itself SIGKILL (no handler can catch it, just
as with the OOM killer) when a named function is called, before or after its ``nth`` call.
Nothing in vyxops reads this: a ``sitecustomize.py`` written to a directory put first on
``PYTHONPATH`` wraps the function, and only in the kernel (the one process whose
``JPY_PARENT_PID`` names its parent; the CLI sets it, vyxops.shell.kernel). ``sitecustomize`` is
imported by every Python start-up (the ``site`` module), so the CLI's kernel loads it.

Use::

    env = {**os.environ, **kernel_death_env(tmp, "vyxops.act.fixes.audit_log:AuditLog.intent", after=1)}
    proc = subprocess.run(["vyxops", "remediate", ...], env=env, capture_output=True, timeout=60)
    # exit 3, one line: "vyxops: the notebook's kernel died (killed by signal 9 (SIGKILL), ...)"

Points that land mid-run: ``vyxops.act.fixes.audit_log:AuditLog.intent`` after 1 (an apply, one
intent open and its write not sent), ``vyxops.analysis.collect:collect_evidence`` before 1 (an
investigation, while it reads the platforms).
"""

from __future__ import annotations

import os
from pathlib import Path

SPEC_ENV = "VYXOPS_TEST_KILL_KERNEL"  # "module:Qualified.name:before|after:n[:cli]"

_SITECUSTOMIZE = """\
import os

def _arm(spec):
    import functools
    import importlib
    import signal

    module, qualname, when, nth, *cli = spec.split(":")
    owner = importlib.import_module(module)
    *path, name = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    calls = [0]

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        calls[0] += 1
        if when == "before" and calls[0] == int(nth):
            strike()
        result = original(*args, **kwargs)
        if when == "after" and calls[0] == int(nth):
            strike()
        return result

    def strike():
        if cli:  # Ctrl-C: SIGINT to the CLI, which stops this kernel
            os.kill(int(os.environ["JPY_PARENT_PID"]), signal.SIGINT)
        else:
            os.kill(os.getpid(), signal.SIGKILL)

    setattr(owner, name, wrapper)

if os.environ.get("{spec_env}") and os.environ.get("JPY_PARENT_PID") == str(os.getppid()):
    _arm(os.environ["{spec_env}"])
"""


def kernel_death_env(
    directory: Path, target: str, *, before: int = 0, after: int = 0, interrupt_cli: bool = False
) -> dict[str, str]:
    """Environment additions that make a ``vyxops`` subprocess's kernel SIGKILL itself at ``target``.

    ``target`` is ``module:Qualified.name``; the kill comes before its ``before``-th call or
    after its ``after``-th (exactly one of them). With ``interrupt_cli``, the kernel sends
    SIGINT to the CLI instead (Ctrl-C at that point). ``directory`` receives the sitecustomize.py.
    """
    if (before > 0) == (after > 0):
        raise ValueError("give exactly one of before= and after=, counting calls from 1")
    _check_target(target)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(_SITECUSTOMIZE.replace("{spec_env}", SPEC_ENV), encoding="utf-8")
    when, nth = ("before", before) if before else ("after", after)
    path = os.pathsep.join(p for p in (str(directory), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, SPEC_ENV: f"{target}:{when}:{nth}" + (":cli" if interrupt_cli else "")}


def _check_target(target: str) -> None:
    """``target`` names a function that exists: the kernel's sitecustomize cannot say so (an error there is
    printed and start-up goes on), so a moved function would otherwise leave the kernel alive, silently."""
    import importlib

    module, _, qualname = target.partition(":")
    owner: object = importlib.import_module(module)
    for part in qualname.split("."):
        if not hasattr(owner, part):
            raise ValueError(f"kernel_death_env: {target} does not exist (no {part!r} in {owner!r})")
        owner = getattr(owner, part)


__all__ = ["SPEC_ENV", "kernel_death_env"]
