"""Run the notebooks with papermill and turn them into HTML reports.

A failure inside a notebook reaches the user as the vyxops error it raised (its
message and hint), not as a wall of traceback. The kernel itself, and every trick
that makes a run fast, live in :mod:`vyxops.shell.kernel`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from vyxops.core import errors
from vyxops.core.errors import ConfigError, InputError, VyxopsError, exit_code_for
from vyxops.shell.kernel import Interrupted, Kernel, KernelDied, RunStopped, register_throttled_engine, stopped

if TYPE_CHECKING:
    from nbconvert import HTMLExporter
    from nbformat import NotebookNode

_T = TypeVar("_T")
NOTEBOOKS = ("investigate", "remediate", "audit", "explore")
EXECUTION_TIMEOUT_S = 900  # per cell


class NotebookFailed(VyxopsError):
    """A notebook stopped on an error; carries the error's name, message and the cell."""

    def __init__(self, notebook: Path, ename: str, evalue: str, cell_index: int | None) -> None:
        self.notebook = notebook
        self.ename = ename
        self.evalue = evalue
        self.cell_index = cell_index
        # The kernel reports the error's class by name; the error tree decides the status.
        cls = error_class(ename)
        self.exit_code = exit_code_for(cls) if cls is not None else 1
        where = f" (cell {cell_index})" if cell_index is not None else ""
        # A vyxops error is its message and hints, as it would read raised here (README: one line, `vyxops: …`);
        # only an unexpected error, a bug, keeps its class: it is what a bug report needs.
        said = evalue if cls is not None and issubclass(cls, VyxopsError) else f"{ename}: {evalue}"
        super().__init__(said, hint=f"the executed notebook is at {notebook}{where}")


def error_class(ename: str) -> type[BaseException] | None:
    """The exception class the kernel named: one of :mod:`vyxops.core.errors`, else a loaded VyxopsError subclass
    of that name (a lock held, an ambiguous contract), else None."""
    cls = getattr(errors, ename, None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        return cls
    pending: list[type[VyxopsError]] = [VyxopsError]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub.__name__ == ename:
                return sub
            pending.append(sub)
    return None


def notebook_path(name: str) -> Path:
    """The source notebook ``<name>.ipynb`` in the package's ``notebooks/``.

    One lookup for a checkout and an installed wheel: in a checkout ``vyxops/notebooks`` is a link to the
    top-level ``notebooks/`` (where JupyterLab and jupytext edit them), and a built wheel carries the notebooks
    there as package data (pyproject.toml; tests/test_packaging.py installs the wheel and runs one).
    """
    if name not in NOTEBOOKS:
        raise InputError("notebook", f"unknown notebook {name!r}", allowed=list(NOTEBOOKS))
    here = Path(__file__).resolve().parents[1] / "notebooks" / f"{name}.ipynb"
    if not here.is_file():
        raise ConfigError(f"notebook {here} is missing", hint="reinstall vyxops (pip install --force-reinstall vyxops)")
    return here


class Reporter:
    """Turns an executed notebook into the HTML report, warmed up while the notebook runs.

    The first render of nbconvert's lab template costs far more than the next ones
    (imports, template compilation, the Markdown, HTML and image code paths), so a
    thread renders a small notebook with every kind of output the reports carry while
    the kernel does the work; the real report is then a warm render.
    """

    def __init__(self) -> None:
        import threading

        self._exporter: HTMLExporter | None = None
        self._thread = threading.Thread(target=self._warm, name="vyxops-report-warmup", daemon=True)
        self._thread.start()

    def _warm(self) -> None:
        try:
            exporter = _html_exporter()
            exporter.from_notebook_node(_warmup_notebook(), resources={"metadata": {"name": "warm-up"}})
            self._exporter = exporter
        except Exception:  # noqa: BLE001 - a failed warm-up only means a cold render later
            self._exporter = None

    def export(self, nb: NotebookNode, html: Path, *, title: str) -> Path:
        """Write ``nb`` (an executed notebook node) to ``html`` with code hidden."""
        self._thread.join()
        exporter = self._exporter or _html_exporter()
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
        from vyxops.views.report import add_toc

        Path(html).write_text(add_toc(body), encoding="utf-8")
        return Path(html)


def _html_exporter() -> HTMLExporter:
    from nbconvert import HTMLExporter

    from vyxops.views import report_template

    # JupyterLab's look without a script from a CDN (vyxops/views/report_template: no require.js, MathJax, Mermaid or
    # widget renderer), so a report reads offline and a `$` in a command stays a `$`.
    exporter = HTMLExporter(template_name=report_template.NAME, extra_template_basedirs=[str(report_template.BASEDIR)])
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    return exporter


def _warmup_notebook() -> NotebookNode:
    import base64

    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    png = base64.b64encode(
        bytes.fromhex(  # a 1x1 PNG
            "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
            "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
        )
    ).decode()
    outputs = [
        new_output("display_data", data={"text/markdown": "### warm `up`\n\n**a** · b", "text/plain": "warm"}),
        new_output("display_data", data={"text/html": "<table><tr><td>warm</td></tr></table>", "text/plain": "warm"}),
        new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"}),
        new_output("stream", name="stderr", text="warm\n"),
        new_output("error", ename="VyxopsError", evalue="warm", traceback=["VyxopsError: warm"]),
    ]
    nb: NotebookNode = new_notebook(cells=[new_markdown_cell("# warm\n\nup"), new_code_cell("x = 1", outputs=outputs)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.validate(nb)
    return nb


def run_notebook(
    name: str, parameters: dict[str, Any], out_dir: Path, *, kernel: Kernel | None = None
) -> tuple[Path, NotebookNode]:
    """Execute ``notebooks/<name>.ipynb`` with ``parameters`` into ``out_dir/<name>.ipynb``.

    Returns the output path and the executed notebook node (what was written there).

    With ``kernel``, the run is watched (:func:`_watched`): the kernel's death ends it at once
    as :class:`KernelDied`, and Ctrl-C as a KeyboardInterrupt, whatever nbclient is waiting on.
    """
    if kernel is None:
        return _execute(name, parameters, out_dir, None)
    return _watched(lambda: _execute(name, parameters, out_dir, kernel), kernel)


WATCH_EVERY_S = 0.05  # how often the CLI looks at its kernel while a notebook runs


def _watched(run: Callable[[], _T], kernel: Kernel) -> _T:
    """``run()`` on a thread while this (the main) thread watches ``kernel``; its result, or its exception.

    Why not on this thread: papermill drives nbclient's asyncio loop with the kernel client
    the manager makes, here a blocking one (``vyxops.shell.kernel._prompt_client_class``). nbclient
    0.11.0 awaits ``kc.iopub_channel.get_msg(timeout=None)`` (``_async_poll_output_msg``),
    which on a blocking client blocks the loop itself, so nbclient's own once-a-second
    liveness check (``_async_poll_kernel_alive``, which raises DeadKernelError "Kernel died")
    never runs, and a killed kernel left the CLI waiting for ever (reproduced with SIGKILL to
    the kernel mid-investigate: stuck in zmq poll under ``_async_poll_output_msg``; source:
    github:jupyter/nbclient, nbclient/client.py). nbclient also replaces SIGINT's handler with
    a loop callback while it runs (``async_setup_kernel``: ``loop.add_signal_handler``), which
    a blocked loop never calls, so Ctrl-C did nothing until the next message and then ended in
    a "Kernel died" traceback. On a thread other than the main one, nbclient installs no
    handler (``add_signal_handler`` raises RuntimeError there, which it passes over), so Ctrl-C
    stays a KeyboardInterrupt here, and this thread sees a dead kernel within WATCH_EVERY_S.
    The thread left behind is a daemon blocked on the dead kernel's sockets; the kernel's stop
    leaves those alone (``Kernel.abandoned``) and the CLI exits.
    """
    outcome: list[_T] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            outcome.append(run())
        except BaseException as exc:  # noqa: BLE001 - handed to the watching thread, which raises it
            failure.append(exc)

    worker = threading.Thread(target=work, name="vyxops-notebook", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(WATCH_EVERY_S)
            death = kernel.death()
            if death is not None and death < 0 and worker.is_alive():
                raise stopped(kernel)
    except BaseException:
        if worker.is_alive():
            kernel.abandoned = True
            _silence()
        raise
    if failure:
        raise failure[0]
    return outcome[0]


def _silence() -> None:
    """Drop what the abandoned run logs from now on (nbclient's "Kernel died while waiting for execute reply." on
    the traitlets logger, from the worker or the thread jupyter_core runs its loop on): the CLI's one line has said
    what happened. Only records from other threads than this (the main) one are dropped."""
    main = threading.main_thread().ident

    def from_main(record: logging.LogRecord) -> bool:
        return record.thread == main

    for name in ("traitlets", "papermill", "nbclient"):
        logging.getLogger(name).addFilter(from_main)


def _execute(name: str, parameters: dict[str, Any], out_dir: Path, kernel: Kernel | None) -> tuple[Path, NotebookNode]:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    for noisy in ("papermill", "traitlets", "blib2to3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / f"{name}.ipynb"
    if "out_dir" in parameters:  # from the cwd, as typed: a notebook reads a relative one from the project root
        parameters = {**parameters, "out_dir": str(Path(parameters["out_dir"]).absolute())}
    env_before = os.environ.get("PYDEVD_DISABLE_FILE_VALIDATION")
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # quiets a debugger warning in a kernel papermill starts
    try:
        nb = papermill.execute_notebook(
            str(notebook_path(name)),
            str(output),
            engine_name=register_throttled_engine(),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
            cwd=str(Path.cwd()),
            start_timeout=120,
            execution_timeout=EXECUTION_TIMEOUT_S,  # a lost kernel message must not hang an on-call run
            **({"km": kernel.km} if kernel is not None else {}),
        )
    except PapermillExecutionError as exc:
        raise NotebookFailed(output, exc.ename, str(exc.evalue).strip(), exc.cell_index) from None
    except RuntimeError as exc:  # nbclient: the kernel died or never answered
        if kernel is None or kernel.process.poll() is None:
            raise
        raise ConfigError(
            f"the notebook kernel exited with status {kernel.process.returncode} before the run ended ({exc})",
            hint="its last words: " + (kernel.stderr_tail() or "none") + " | check the environment with `make setup`",
        ) from None
    finally:
        if env_before is None:
            os.environ.pop("PYDEVD_DISABLE_FILE_VALIDATION", None)
    return output, nb


def open_intents_left_by(audit_log: Path, app: str, kernel_pid: int | None) -> int:
    """How many intents for ``app`` are open in ``audit_log`` on the target the kernel ``kernel_pid`` wrote to.

    The kernel writes the audit log (each line has its pid and the target's label), so the
    target is read from its own lines; every open intent of the app on that target is what
    the next apply settles (vyxops.act.fixes.audit_log: "a killed run is settled by the next").
    """
    import socket

    from vyxops.act.fixes.audit_log import read_history, read_lines

    host = socket.gethostname()
    lines = read_lines(audit_log)
    targets = {
        str(x.get("target"))
        for x in lines
        if x.get("app") == app and x.get("pid") == kernel_pid and x.get("host") == host and x.get("target")
    }
    return sum(len(read_history(audit_log, target=t, app=app).open_intents) for t in sorted(targets))


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


__all__ = [
    "Interrupted",
    "Kernel",
    "KernelDied",
    "NotebookFailed",
    "Reporter",
    "RunStopped",
    "notebook_path",
    "open_intents_left_by",
    "read_json",
    "run_notebook",
    "stopped",
]
