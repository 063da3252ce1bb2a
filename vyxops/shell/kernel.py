"""The notebook kernel's speed tricks, in one module.

A run's length is the kernel's (docs/DESIGN.md, "Where a run's time goes"). Each
trick below names the upstream versions it was checked against (pyproject.toml
declares the ranges tested) and, where it leans on more than a public API, what;
tests/test_kernel_contract.py fails, naming the upstream and what to re-check
here, when a release changes that.

- ``Kernel``: the kernel process is spawned first thing, before jupyter_client is
  imported; ``PrespawnedProvisioner`` later hands it to a ``KernelManager``.
- ``kernel_argv``: the kernel starts through :mod:`vyxops.shell.kernel_main`,
  ipykernel's launcher without the debugger's imports (debugpy).
- ``_prompt_client_class``: the kernel client is ready without jupyter_client's
  0.2 s IOPub flush.
- ``register_throttled_engine``: papermill saves the output notebook at most once
  a second instead of before and after every cell.
- ``preload``: the kernel imports what the notebooks need while it boots, with the
  cyclic GC paused and matplotlib's 3D toolkit left out.

Nothing here imports jupyter_client or papermill at import time: the CLI imports
this module before it spawns the kernel, and the kernel imports it to preload.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vyxops.core import errors
from vyxops.core.errors import ConfigError, VyxopsError

if TYPE_CHECKING:
    from jupyter_client.blocking.client import BlockingKernelClient
    from jupyter_client.connect import KernelConnectionInfo
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from jupyter_client.provisioning.local_provisioner import LocalProvisioner

#: The notebooks' heavy imports, while the kernel boots.
PRELOAD = ("import vyxops.shell.kernel; vyxops.shell.kernel.preload()",)
KERNEL_NAME = "python3"
#: The provisioner that adopts a pre-spawned kernel, registered by pyproject.toml's
#: ``jupyter_client.kernel_provisioners`` entry point (``PrespawnedProvisioner`` below).
PROVISIONER_NAME = "vyxops-prespawned"
_PRESPAWNED: dict[str, Kernel] = {}  # kernels spawned and not yet adopted, by kernel id


def kernel_argv(connection_file: str) -> list[str]:
    """The kernel's command line: ipykernel on ``connection_file``, with the preload as its exec_lines."""
    # The notebooks' heavy imports run while the kernel boots (before it says it is
    # ready), which overlaps with the CLI loading papermill and checking inputs.
    warm = [f"--IPKernelApp.exec_lines={line}" for line in PRELOAD]
    # ipykernel's launcher without the debugger's imports (vyxops.shell.kernel_main says why).
    return [sys.executable, "-m", "vyxops.shell.kernel_main", "-f", connection_file, *warm]


class Kernel:
    """A kernel started first thing, so its boot overlaps everything else the CLI does.

    The process is spawned with :mod:`subprocess` before jupyter_client is even
    imported (that import alone is ~0.12 s, all of it on the run's critical path
    otherwise), with a connection file written here: IPC sockets in a private
    directory, so two runs in one directory never share them, and a fresh HMAC key.
    ``km`` then hands that process to a jupyter_client ``KernelManager`` whose kernel
    provisioner adopts it instead of starting one (``PrespawnedProvisioner``, found by
    this kernel's ``id``); everything else (connection file, control socket, shutdown,
    clean-up) is jupyter_client's own.

    Use as a context manager; it is always shut down, also when a check fails.
    """

    def __init__(self, env: dict[str, str] | None = None) -> None:
        import secrets
        import subprocess
        import tempfile

        self._sockets = tempfile.TemporaryDirectory(prefix="vyxops-kernel-")
        directory = Path(self._sockets.name)
        self.info: KernelConnectionInfo = {
            "transport": "ipc",
            "ip": str(directory / "k"),
            "shell_port": 1,
            "iopub_port": 2,
            "stdin_port": 3,
            "control_port": 4,
            "hb_port": 5,
            "key": secrets.token_hex(32),
            "signature_scheme": "hmac-sha256",
            "kernel_name": KERNEL_NAME,
        }
        self.id = secrets.token_hex(16)  # the kernel id its provisioner finds it by
        connection = directory / "kernel.json"
        with open(os.open(connection, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as f:
            json.dump(self.info, f)
        kernel_env = {
            **os.environ,
            **(env or {}),
            "JPY_PARENT_PID": str(os.getpid()),  # the kernel exits if this process dies
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # quiets a debugger warning in the kernel
        }
        self.cwd = str(Path.cwd())
        # The kernel's own stderr (import errors, a crash) goes to a file, for the error
        # a dead kernel becomes; what cells print reaches the notebook over IOPub instead.
        self._stderr = directory / "stderr.log"
        with open(self._stderr, "wb") as stderr:
            self.process = subprocess.Popen(
                kernel_argv(str(connection)),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                cwd=self.cwd,
                env=kernel_env,
                start_new_session=True,  # its own group, as jupyter_client does
            )
        self._km: Any = None
        self.clients: list[Any] = []  # kernel clients made by ``km``, stopped with the kernel
        _PRESPAWNED[self.id] = self
        self._ended: int | None = None  # the status it ended with on its own, read before a stop kills it
        self._stopped = False
        self.abandoned = False  # a thread may still be using its clients: a stop leaves them alone

    @property
    def km(self) -> Any:
        """The jupyter_client ``KernelManager`` managing the process (created on first use)."""
        if self._km is None:
            self._km = _adopt(self)
        return self._km

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        # Whether the kernel ended on its own: read before this block ends it (a stop is no death).
        self._ended, self._stopped = self.process.poll(), True
        death = self._ended
        if exc_type is None:
            # Stopping (kill, reap, jupyter_client's clean-up) runs while the report is
            # written; ``wait_stopped`` joins it.
            import threading

            self._stopping = threading.Thread(target=self._stop, name="vyxops-kernel-stop", daemon=True)
            self._stopping.start()
            return
        died = death is not None and death < 0 and isinstance(exc_type, type) and issubclass(exc_type, _DEATH_SIGNS)
        last_words = self.stderr_tail() if died else ""
        self._stop()
        if died:
            error = KernelDied(-(death or 0), last_words)
            error.kernel_pid = self.process.pid
            raise error from None

    def _stop(self) -> None:
        _PRESPAWNED.pop(self.id, None)
        try:
            # Ended here first: jupyter_client's own wait polls every 0.1 s, which was
            # most of a stop. Its shutdown then finds the process gone and only cleans up.
            self.process.kill()
            self.process.wait()
            if self.abandoned:  # a thread is blocked on its sockets: zmq sockets are not to be closed under it
                return
            for kc in self.clients:
                if kc.channels_running:
                    kc.stop_channels()
            if self._km is not None:
                self._km.shutdown_kernel(now=True)
                self._km.cleanup_resources()
        finally:
            self._sockets.cleanup()

    def death(self) -> int | None:
        """The status the kernel ended with on its own (Popen's: -N for signal N); None while it runs or when it
        was stopped on purpose (leaving the ``with`` block)."""
        return self._ended if self._stopped else self.process.poll()

    def stderr_tail(self, lines: int = 3) -> str:
        """The last lines the kernel process wrote to stderr (redacted), while its directory exists."""
        try:
            text = self._stderr.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return errors.redact(" / ".join(line.strip() for line in text.strip().splitlines()[-lines:]))

    def wait_stopped(self) -> None:
        """Block until a shutdown begun by leaving the ``with`` block is over."""
        stopping = getattr(self, "_stopping", None)
        if stopping is not None:
            stopping.join()


class RunStopped(VyxopsError):
    """A run that did not finish: its message says what happened, and (:meth:`next_step`) what to run next."""

    exit_code = 1
    kernel_pid: int | None = None  # the kernel the run was on (its audit-log lines carry this pid)
    then = ""  # what the CLI did about it

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(what)

    def next_step(self, verb: str, advice: str) -> RunStopped:
        """This error, its message saying that ``verb`` did not finish and ``advice`` (what to run next)."""
        self.message = f"{self.what} before {verb} finished; {self.then}{advice}"
        self.args = (self.message,)
        return self


class KernelDied(RunStopped):
    """The kernel process was killed by a signal (SIGKILL: the OOM killer's, or someone's) before the run ended.

    Exit 3, as for a platform that could not be reached: the inputs were fine and the run did
    not complete for a reason outside them, so the remedy is to run it again (exit 2 would tell
    a scheduler to fix its input). A kernel that exits by itself (an import error) stays a
    ConfigError: rerunning would not help.
    """

    exit_code = 3

    def __init__(self, signum: int, last_words: str = "") -> None:
        self.signum = signum
        self.last_words = last_words
        super().__init__(f"the notebook's kernel died ({describe_signal(signum)})")


class Interrupted(RunStopped):
    """Ctrl-C (SIGINT to the CLI) ended the run, and the kernel was stopped. Exit 130 (128 + SIGINT): what a shell
    reports for a command SIGINT ended, so a script sees the status it would see without a handler."""

    exit_code = 130
    then = "the kernel was stopped; "

    def __init__(self) -> None:
        super().__init__("interrupted (Ctrl-C)")


def stopped(kernel: Kernel | None) -> RunStopped:
    """What a run on ``kernel`` that stopped means: the kernel's death (killed by a signal), or else Ctrl-C."""
    death = kernel.death() if kernel is not None else None
    error: RunStopped = KernelDied(-death) if death is not None and death < 0 else Interrupted()
    error.kernel_pid = kernel.process.pid if kernel is not None else None
    return error


def describe_signal(signum: int) -> str:
    """``killed by signal 9 (SIGKILL), perhaps out of memory``: the OOM killer's signal (facts.OOM_EXIT_CODE)."""
    import signal

    from vyxops.core.facts import OOM_EXIT_CODE

    try:
        name = f" ({signal.Signals(signum).name})"
    except ValueError:
        name = ""
    oom = ", perhaps out of memory" if signum == OOM_EXIT_CODE - 128 else ""  # 128 + the signal
    return f"killed by signal {signum}{name}{oom}"


#: The exceptions a kernel killed while it started surfaces as: jupyter_client's "Kernel died
#: before replying" (RuntimeError), run_notebook's ConfigError for a kernel that exited, and
#: a KeyboardInterrupt that raced it.
_DEATH_SIGNS: tuple[type[BaseException], ...] = (KeyboardInterrupt, RuntimeError, ConfigError)


@functools.cache
def _prompt_client_class() -> type[BlockingKernelClient]:
    """jupyter_client's blocking client, without 0.2 s of idle waiting when the kernel comes up.

    Its ``wait_for_ready`` ends with "flush IOPub": it reads IOPub until nothing has
    arrived for 0.2 s, so every run (papermill's too) waits 0.2 s with the kernel
    ready and idle. This one asks for ``kernel_info`` just as it does, and is ready
    at the IOPub ``idle`` status of that very request: the last message the
    request causes, so IOPub is both connected and flushed. Otherwise (IOPub not yet
    connected, or the kernel still booting) it asks again, as jupyter_client does.

    Checked against jupyter_client 8.10.0 and nbclient 0.11.0: it overrides the public
    ``wait_for_ready``, which nbclient calls on the client the manager makes, with the
    blocking client's public calls. Relied on: upstream's own readiness wait
    (``KernelClient._async_wait_for_ready``, re-done here without the flush) and the
    private ``_handle_kernel_info_reply`` it calls on the reply (the protocol version
    the session adapts to); tests/test_kernel_contract.py pins both.
    """
    import time
    from queue import Empty

    from jupyter_client.blocking.client import BlockingKernelClient

    class PromptKernelClient(BlockingKernelClient):
        def wait_for_ready(self, timeout: float | None = None) -> None:
            deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
            while True:
                self.kernel_info()
                try:
                    reply = self.get_shell_msg(timeout=1)
                except Empty:
                    reply = None
                if reply is not None and reply["msg_type"] == "kernel_info_reply":
                    if _iopub_idle_after(self, reply["parent_header"].get("msg_id"), within=0.5):
                        self._handle_kernel_info_reply(reply)
                        return
                if not self.is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")

    return PromptKernelClient


def _iopub_idle_after(client: BlockingKernelClient, msg_id: str | None, within: float) -> bool:
    """Whether the kernel's IOPub ``idle`` status for request ``msg_id`` arrives within ``within`` seconds."""
    import time
    from queue import Empty

    end = time.monotonic() + within
    while (left := end - time.monotonic()) > 0:
        try:
            msg = client.get_iopub_msg(timeout=left)
        except Empty:
            return False
        if (
            msg["msg_type"] == "status"
            and msg["content"].get("execution_state") == "idle"
            and msg["parent_header"].get("msg_id") == msg_id
        ):
            return True
    return False


def _adopt(kernel: Kernel) -> KernelManager:
    """A ``KernelManager`` for ``kernel.process``, started by jupyter_client's own sequence.

    Public API throughout (checked against jupyter_client 8.10.0): the manager's kernel
    spec names ``PrespawnedProvisioner``, whose ``launch_kernel`` adopts the process.
    Its connection file (same ports and key) goes next to the kernel's, so neither file
    is rewritten while the kernel may be reading its own.
    """
    from jupyter_client.manager import KernelManager

    class AdoptingKernelManager(KernelManager):
        def client(self, **kwargs: Any) -> Any:
            # nbclient leaves the channels of a client it made from a manager it
            # does not own running; the kernel's stop closes them.
            kc = super().client(**kwargs)
            kernel.clients.append(kc)
            return kc

    km = AdoptingKernelManager(
        kernel_name=KERNEL_NAME,
        kernel_id=kernel.id,  # what the provisioner finds the process by
        kernel_spec_manager=_spec_manager_class()(),
        transport="ipc",
        ip=kernel.info["ip"],
        connection_file=str(Path(kernel.info["ip"]).parent / "manager.json"),
        transport_encryption="disabled",  # the kernel reads its own connection file: no Curve keys there
        client_factory=_prompt_client_class(),
    )
    km.load_connection_info(kernel.info)
    try:
        km.start_kernel()
    except ModuleNotFoundError as exc:
        if PROVISIONER_NAME not in str(exc):
            raise
        raise ConfigError(
            f"jupyter_client does not know the kernel provisioner {PROVISIONER_NAME!r}",
            hint="vyxops was installed before it registered one: run `make setup` again",
        ) from None
    return km


@functools.cache
def _spec_manager_class() -> type[KernelSpecManager]:
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

    class PrespawnedSpecs(KernelSpecManager):
        """Kernel specs in which ``python3`` is the pre-spawned kernel.

        Public API (jupyter_client 8.10.0): a spec's ``metadata.kernel_provisioner``
        is how jupyter_client documents choosing a provisioner. Its argv is the one
        ``Kernel`` ran, so a kernel started again (a restart) is the same kernel.
        """

        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            if kernel_name != KERNEL_NAME:
                return super().get_kernel_spec(kernel_name)
            return KernelSpec(
                argv=kernel_argv("{connection_file}"),
                display_name="Python 3 (vyxops)",
                language="python",
                metadata={"kernel_provisioner": {"provisioner_name": PROVISIONER_NAME, "config": {}}},
            )

    return PrespawnedSpecs


@functools.cache
def _provisioner_class() -> type[LocalProvisioner]:
    from jupyter_client.provisioning.local_provisioner import LocalProvisioner

    class PrespawnedProvisioner(LocalProvisioner):
        """jupyter_client's local provisioner, adopting the process ``Kernel`` spawned instead of starting one.

        Public API (jupyter_client 8.10.0): ``launch_kernel`` is where a provisioner
        starts its kernel, and ``LocalProvisioner`` is documented as the class to
        subclass for local kernels. Relied on: LocalProvisioner manages the process
        through the four attributes its own ``launch_kernel`` sets (``process``,
        ``pid``, ``pgid``, ``cwd``), which tests/test_kernel_contract.py pins.
        """

        async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
            kernel = _PRESPAWNED.pop(self.kernel_id or "", None)
            if kernel is None:  # a restart: started as LocalProvisioner starts any kernel
                return await super().launch_kernel(cmd, **kwargs)
            self.process = kernel.process
            self.pid = kernel.process.pid
            try:
                self.pgid = os.getpgid(kernel.process.pid)
            except OSError:  # already gone: nbclient reports the dead kernel
                self.pgid = None
            self.cwd = kernel.cwd
            return self.connection_info

    return PrespawnedProvisioner


def __getattr__(name: str) -> Any:
    # pyproject.toml's entry point names vyxops.shell.kernel:PrespawnedProvisioner. The class
    # is built when jupyter_client loads it, so that importing this module (the CLI does,
    # before it spawns the kernel) never imports jupyter_client.
    if name == "PrespawnedProvisioner":
        return _provisioner_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


SAVE_EVERY_S = 1.0  # how stale the output notebook may be while a run is in progress
ENGINE_NAME = "vyxops"


def register_throttled_engine() -> str:
    """Register papermill's nbclient engine, saving at most every SAVE_EVERY_S, and return its name.

    papermill writes the whole output notebook before and after every cell, markdown
    ones included: 26 writes for the investigation, each while the kernel waits for
    its next cell. Here a cell's start or end writes only when the last write is
    SAVE_EVERY_S old, so a killed run still leaves a notebook at most that stale.
    The first write always happens, and so does papermill's own after the run (the
    notebook with the failed cell marked, or the final one).
    """
    from papermill.engines import papermill_engines

    papermill_engines.register(ENGINE_NAME, _throttled_engine_class())
    return ENGINE_NAME


@functools.cache
def _throttled_engine_class() -> type[Any]:
    """papermill's ``NBClientEngine`` whose notebook manager is ``ThrottledManager``.

    Public API (papermill 2.7.0): engines are papermill's extension point, and
    ``NotebookExecutionManager.save`` is the one hook every write goes through. No
    option chooses the manager an engine builds, so ``execute_notebook`` is papermill
    2.7.0's ``Engine.execute_notebook`` copied with the manager class swapped;
    tests/test_kernel_contract.py fails when upstream's body changes.
    """
    from papermill.engines import NBClientEngine, NotebookExecutionManager

    class ThrottledManager(NotebookExecutionManager):  # type: ignore[misc]
        _written = False

        def save(self, **kwargs: Any) -> None:
            if self._written and (self.now() - self.last_save_time).total_seconds() < SAVE_EVERY_S:
                return
            super().save(**kwargs)
            self._written = True

    class ThrottledEngine(NBClientEngine):  # type: ignore[misc]
        @classmethod
        def execute_notebook(
            cls,
            nb: Any,
            kernel_name: str,
            output_path: Any = None,
            progress_bar: Any = True,
            log_output: bool = False,
            autosave_cell_every: int = 30,
            **kwargs: Any,
        ) -> Any:
            # Copied from papermill 2.7.0's Engine.execute_notebook; only the manager's class differs.
            nb_man = ThrottledManager(
                nb,
                output_path=output_path,
                progress_bar=progress_bar,
                log_output=log_output,
                autosave_cell_every=autosave_cell_every,
            )

            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()

            return nb_man.nb

    return ThrottledEngine


def preload() -> None:
    """Import the notebooks' heavy modules; the CLI's kernel runs this while it boots (``PRELOAD``).

    The notebooks' heavy modules load before the kernel says it is ready, so their
    cost overlaps the CLI's own start (papermill, input checks, serving the sandbox)
    instead of following it. Nothing here runs at ``import vyxops``.

    Public APIs: ipykernel's ``--IPKernelApp.exec_lines`` (ipykernel 7.4.0) and the
    ``gc`` module. Relied on: matplotlib (3.11.2) imports its 3D toolkit inside a
    ``try`` that turns any failure into the warning filtered below, which
    tests/test_kernel_contract.py pins.
    """
    import gc
    import sys
    import warnings

    # A few hundred thousand objects are created below and live as long as the kernel.
    # The cyclic collector would walk them several times while they load (~0.08 s) and
    # again in every full collection later; it is paused while they load, and then they
    # are frozen out of its sight.
    gc.disable()
    try:
        # matplotlib registers its 3D projection at import time by importing
        # mpl_toolkits.mplot3d: 60 ms, a twentieth of a whole run, for axes the reports
        # never draw. Blocked for that one import, then unblocked, so that an explicit
        # ``import mpl_toolkits.mplot3d`` in the kernel still works; the "3d" projection
        # then needs ``matplotlib.projections.register_projection(Axes3D)``.
        blocked = "mpl_toolkits.mplot3d" not in sys.modules
        if blocked:
            sys.modules["mpl_toolkits.mplot3d"] = None  # type: ignore[assignment]
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Unable to import Axes3D")
                import matplotlib.backends.backend_agg
                import matplotlib.figure  # noqa: F401
        finally:
            if blocked:
                del sys.modules["mpl_toolkits.mplot3d"]

        import pandas  # noqa: F401
        import postgrest  # noqa: F401

        import vyxops.analysis.investigate
        import vyxops.analysis.timeline  # noqa: F401
    finally:
        gc.freeze()
        gc.enable()
