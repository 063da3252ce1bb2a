"""A real browser for tests: Debian's Chromium driven by Playwright, and JupyterLab on loopback.

Chromium and JupyterLab run as processes of their own, each in its own process group,
and are stopped by the test that started them, with timeouts, also when it fails.
Playwright only drives Chromium over the DevTools protocol: its own browser downloads
are never used. Everything they write goes under the test's temporary directory.

Use from a test (tests/ is on sys.path under pytest)::

    from browser import chromium_page

    def test_report_lists_findings_first(tmp_path):
        ...  # write the report under tmp_path / "out"
        with chromium_page(tmp_path / "out" / "investigate.html", tmp_path) as page:
            assert page.locator("h2").first.inner_text() == "Findings"

Several pages in one browser: ``with chromium(tmp_path) as browser: page = open_page(browser, path)``.

Outside CI a missing Chromium, Playwright or JupyterLab skips the test and says what
is missing; under ``CI=true`` it fails, since CI must run these tests (``.ci/run``
installs Chromium).

While a browser is open, Playwright's event loop runs on the test's thread, so code
that runs its own asyncio loop (papermill, the CLI writing a report) fails there: write
reports before opening the browser, and keep such tests out of a module whose
module-scoped browser stays open (tests/test_browser_lab.py has one).
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")
# JupyterLab's own venv, which `make test` and `make lab` set up (the Makefile's LAB_VENV): the venv the tests
# and the CLI run from leaves the lab out (pyproject.toml's test extra says why).
LAB_VENV_PYTHON = Path(__file__).resolve().parent.parent / ".tools" / "lab" / "bin" / "python"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
VIEWPORT = {"width": 1400, "height": 1000}
_HOME_DIRS = (("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache"), ("XDG_DATA_HOME", ".local/share"))


# --------------------------------------------------------------------------- skip outside CI, fail in CI


def missing_tools(*, jupyterlab: bool = False) -> list[str]:
    """What a browser test needs and this machine lacks, each with how to get it."""
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"Chromium at {CHROMIUM} (apt-get install -y chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package (pip install -e '.[test]')")
    if jupyterlab and lab_python() is None:
        missing.append(f"JupyterLab ({LAB_VENV_PYTHON.parent.parent}: make setup-lab, or pip install -e '.[lab]' here)")
    return missing


def lab_python() -> Path | None:
    """The Python that runs JupyterLab (and so the lab's kernels): the lab's venv's, else this one when it has
    the lab (a conda environment with the lab extra), else None."""
    if LAB_VENV_PYTHON.is_file():
        return LAB_VENV_PYTHON
    return Path(sys.executable) if importlib.util.find_spec("jupyterlab") is not None else None


def require_browser(*, jupyterlab: bool = False) -> None:
    """Skip the calling test when its tools are missing, or fail it under CI=true, naming them."""
    missing = missing_tools(jupyterlab=jupyterlab)
    if not missing:
        return
    text = "browser test needs " + "; ".join(missing)
    if os.environ.get("CI"):
        pytest.fail(f"CI runs the browser tests, but this machine lacks them: {text}", pytrace=False)
    pytest.skip(text)


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process_group(proc: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM the process's group, SIGKILL it after ``timeout_s``, and kill what is left of the group."""
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout_s)
    _signal_group(proc, signal.SIGKILL)  # helpers (renderers, zygotes) that outlived their parent


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _wait_until(ready: Callable[[], object], proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    """Poll ``ready()`` until true; fail with the log's tail when the process exits or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}:\n{_tail(log)}")
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {START_TIMEOUT_S:.0f} s:\n{_tail(log)}")


@contextmanager
def chromium_process(workdir: Path) -> Iterator[str]:
    """Debian's Chromium, headless, with a fresh profile under ``workdir``; yields its DevTools URL."""
    run = Path(tempfile.mkdtemp(prefix="chromium-", dir=workdir))  # one per browser: a test may start several
    profile, log = run / "profile", run / "chromium.log"
    args = [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"]
    # Its crash database and GTK's settings cache go under $HOME/XDG dirs whatever the profile: keep them here.
    home = {name: str(run / "home" / sub) for name, sub in _HOME_DIRS}
    env = {**os.environ, **home, "HOME": str(run / "home")}
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"  # Chromium writes the port it took here
        _wait_until(lambda: port_file.exists() and port_file.read_text().strip(), proc, log, "Chromium")
        yield f"http://127.0.0.1:{port_file.read_text().split()[0]}"
    finally:
        stop_process_group(proc)


@contextmanager
def chromium(workdir: Path) -> Iterator[Browser]:
    """Playwright connected to Debian's Chromium (see :func:`chromium_process`); both stopped at exit.

    Skips outside CI, or fails under CI=true, when Chromium or Playwright is missing.
    """
    require_browser()
    with ExitStack() as stack:
        endpoint = stack.enter_context(chromium_process(workdir))
        playwright = stack.enter_context(_playwright())
        browser = playwright.chromium.connect_over_cdp(endpoint, timeout=START_TIMEOUT_S * 1000)
        stack.callback(_close_quietly, browser)
        yield browser


# Playwright's sync API cannot be started twice at once in one thread, so a browser opened
# while another is open (a test's inside a module's) shares the outer one's Playwright.
_running: list[Playwright] = []


@contextmanager
def _playwright() -> Iterator[Playwright]:
    if _running:
        yield _running[-1]
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        _running.append(playwright)
        try:
            yield playwright
        finally:
            _running.pop()


def _close_quietly(browser: Browser) -> None:
    try:
        browser.close()
    except Exception:  # the process is stopped right after, whatever state the connection is in
        pass


def open_page(browser: Browser, target: str | Path, *, timeout_s: float = 30.0) -> Page:
    """A new page of ``browser`` showing ``target``: a URL, or a local file path such as an HTML report."""
    text = str(target)
    url = text if "://" in text or text.startswith("about:") else Path(text).resolve().as_uri()
    page = browser.new_context(viewport=VIEWPORT).new_page()  # type: ignore[arg-type]
    page.set_default_timeout(timeout_s * 1000)
    page.goto(url)
    return page


@contextmanager
def chromium_page(target: str | Path, workdir: Path, *, timeout_s: float = 30.0) -> Iterator[Page]:
    """A Chromium page showing ``target`` (see :func:`open_page`); Chromium is stopped at exit.

    ``workdir`` (e.g. ``tmp_path``) receives the browser profile and its log. For several
    pages in one browser, use :func:`chromium` and :func:`open_page`.
    """
    with chromium(workdir) as browser:
        yield open_page(browser, target, timeout_s=timeout_s)


# --------------------------------------------------------------------------- JupyterLab


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: where it listens and the token it wants."""

    url: str
    token: str

    def open(self, path: str) -> str:
        """The URL that opens ``path`` (relative to the root dir) in JupyterLab, logged in."""
        return f"{self.url}/lab/tree/{path}?token={self.token}"


# Quiet, deterministic JupyterLab: no news or update checks (no network, no toasts over
# the widgets); the notebook's kernel starts without the "Select Kernel" dialog (as after
# ticking "Always start the preferred kernel"); every cell is attached to the page, so
# none is skipped while off screen.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none", "autoStartDefaultKernel": True},
}


@contextmanager
def jupyterlab(root: Path, workdir: Path, env: Mapping[str, str]) -> Iterator[Lab]:
    """JupyterLab serving ``root`` on 127.0.0.1 (a free port, a random token, no browser), stopped at exit.

    Its config, data, runtime and settings directories are under ``workdir``; ``env``
    is added to the server's (and so the kernels') environment.
    """
    require_browser(jupyterlab=True)
    token = secrets.token_hex(24)
    port = free_port()
    server_env = {**os.environ, **_lab_dirs(workdir), **env}
    server_env.pop("VYXOPS_SANDBOX_URL", None)  # the kernel opens the test's sandbox directory itself
    python = lab_python()
    assert python is not None  # require_browser skipped or failed the test otherwise
    args = [
        str(python),
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--allow-root",  # CI runs as root
        "--ServerApp.terminals_enabled=False",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # the default asks PyPI
        "--LanguageServerManager.autodetect=False",  # else jupyter-lsp runs `npm`, which logs under ~/.npm
    ]
    log = workdir / "jupyterlab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            args, cwd=root, env=server_env, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    lab = Lab(f"http://127.0.0.1:{port}", token)
    try:
        _wait_until(lambda: _answers(lab, "/api/status"), proc, log, "JupyterLab")
        yield lab
    finally:
        _shutdown(lab, proc)


def _lab_dirs(workdir: Path) -> dict[str, str]:
    """Jupyter's per-user directories under ``workdir``, with :data:`LAB_SETTINGS` written into them."""
    dirs = {
        name: workdir / "jupyter" / sub
        for name, sub in (
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_DATA_DIR", "data"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("IPYTHONDIR", "ipython"),
            ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"),
            ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces"),
        )
    }
    for plugin, values in LAB_SETTINGS.items():
        path = dirs["JUPYTERLAB_SETTINGS_DIR"] / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    return {name: str(path) for name, path in dirs.items()}


def _answers(lab: Lab, path: str, method: str = "GET") -> bool:
    request = urllib.request.Request(
        lab.url + path,
        method=method,
        headers={"Authorization": f"token {lab.token}"},
        data=b"" if method == "POST" else None,
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as answer:
            return 200 <= answer.status < 300
    except OSError:
        return False


def _shutdown(lab: Lab, proc: subprocess.Popen[bytes]) -> None:
    """Ask JupyterLab to stop (it shuts its kernels down first), then stop its process group anyway."""
    if proc.poll() is None:
        _answers(lab, "/api/shutdown", method="POST")
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
    stop_process_group(proc)
