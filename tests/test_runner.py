"""The CLI's kernel: started first, handed to jupyter_client, always stopped and cleaned up."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vyxops.shell.kernel import PRELOAD
from vyxops.shell.runner import Kernel, Reporter, run_notebook


def _gone(pid: int, within_s: float) -> bool:
    """Whether process ``pid`` has ended (or is a zombie) within ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ", 1)[1].startswith("Z"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


def test_the_prestarted_kernel_runs_a_notebook_and_is_cleaned_up(sandbox_env: Path, tmp_path: Path) -> None:
    """jupyter_client manages the very process started first; after the run it has exited and its sockets are gone."""
    with Kernel() as kernel:
        assert kernel.km.provisioner.pid == kernel.process.pid  # adopted, not a second kernel
        assert kernel.km.is_alive()
        reporter = Reporter()
        path, nb = run_notebook(
            "investigate",
            {"scenario": "stub-image", "app": "vyx-app", "out_dir": str(tmp_path / "out")},
            tmp_path / "out",
            kernel=kernel,
        )
    html = reporter.export(nb, tmp_path / "out" / "investigate.html", title="t")
    kernel.wait_stopped()
    assert path.is_file() and "SECRET_IMAGE_NOT_CURRENT_RELEASE" in html.read_text()
    assert kernel.process.poll() is not None
    assert not Path(kernel.info["ip"]).parent.exists()


def test_a_kernel_whose_run_never_started_is_killed_and_cleaned_up() -> None:
    """If the inputs fail before the kernel is handed over, the block still ends the process and removes its files."""
    with pytest.raises(RuntimeError), Kernel() as kernel:
        raise RuntimeError("a check failed")
    assert kernel._km is None and kernel.process.poll() is not None
    assert not Path(kernel.info["ip"]).parent.exists()


def test_the_connection_file_is_private() -> None:
    """The kernel's connection file (its HMAC key) is readable by its owner only."""
    with Kernel() as kernel:
        mode = (Path(kernel.info["ip"]).parent / "kernel.json").stat().st_mode & 0o777
    kernel.wait_stopped()
    assert mode == 0o600


def test_a_killed_cli_leaves_no_kernel_behind(tmp_path: Path) -> None:
    """If the process that started the kernel dies without cleaning up, the kernel exits by itself."""
    import shutil

    script = (
        "import os, sys; from vyxops.shell.runner import Kernel; k = Kernel(); "
        "print(k.process.pid, k.info['ip'], flush=True); os._exit(0)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path, env=os.environ
    )
    pid, ip = out.stdout.split()
    try:
        assert _gone(int(pid), within_s=30), f"kernel {pid} still running after its parent died"
    finally:
        shutil.rmtree(Path(ip).parent, ignore_errors=True)  # what the dead parent could not clean up


def test_the_kernel_preload_leaves_matplotlib_whole_and_says_nothing() -> None:
    """After the kernel's preload line (which skips matplotlib's 3D toolkit and pauses the GC while loading),
    3D still imports, the GC runs again and no warning was shown."""
    script = (
        "import warnings; warnings.simplefilter('error'); " + "; ".join(PRELOAD) + "; import sys; "
        "assert 'pandas' in sys.modules and 'matplotlib.figure' in sys.modules; "
        "import mpl_toolkits.mplot3d, gc; assert gc.isenabled(); print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok" and out.stderr == "", out.stderr


def test_the_kernel_client_is_ready_with_iopub_connected() -> None:
    """Once wait_for_ready returns (no jupyter_client 0.2 s IOPub flush), the first cell's printed output arrives."""
    with Kernel() as kernel:
        kc = kernel.km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=120)
            reply = kc.execute_interactive("print('first output')", timeout=60, output_hook=(seen := []).append)
        finally:
            kc.stop_channels()
    kernel.wait_stopped()
    assert reply["content"]["status"] == "ok"
    assert [m["content"]["text"] for m in seen if m["msg_type"] == "stream"] == ["first output\n"]


def test_the_kernel_starts_without_the_debugger() -> None:
    """The CLI's kernel (vyxops.shell.kernel_main) never imports debugpy, offers no debugger, and runs cells."""
    with Kernel() as kernel:
        kc = kernel.km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=120)
            info = kc.kernel_info(reply=True, timeout=60)
            code = "import sys; print(sys.modules['debugpy'] is None, 'ipykernel' in sys.modules)"
            reply = kc.execute_interactive(code, timeout=60, output_hook=(seen := []).append)
        finally:
            kc.stop_channels()
    kernel.wait_stopped()
    assert "debugger" not in info["content"].get("supported_features", [])
    assert reply["content"]["status"] == "ok"
    assert [m["content"]["text"] for m in seen if m["msg_type"] == "stream"] == ["True True\n"]


def test_the_output_notebook_is_complete_after_a_run_and_after_a_failure(sandbox_env: Path, tmp_path: Path) -> None:
    """Saves during a run are throttled, yet the file on disk ends with every output, or the error that stopped it."""
    import json

    from vyxops.shell.runner import NotebookFailed

    ok, nb = run_notebook(
        "investigate", {"scenario": "stub-image", "app": "vyx-app", "out_dir": str(tmp_path / "ok")}, tmp_path / "ok"
    )
    import nbformat

    on_disk = nbformat.read(str(ok), as_version=4)
    assert [c.get("outputs") for c in on_disk.cells] == [c.get("outputs") for c in nb.cells]
    assert any(
        o.get("data", {}).get("image/png") for c in on_disk.cells for o in c.get("outputs", [])
    )  # the plot cell, late in the run
    assert all(c.metadata.papermill.status == "completed" for c in on_disk.cells)
    with pytest.raises(NotebookFailed) as caught:
        run_notebook(
            "investigate",
            {"scenario": "stub-image", "app": "no-such-app", "out_dir": str(tmp_path / "bad")},
            tmp_path / "bad",
        )
    failed = json.loads((tmp_path / "bad" / "investigate.ipynb").read_text())
    assert failed["metadata"]["papermill"]["exception"] is True
    errors = [o for c in failed["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors and errors[0]["ename"] == caught.value.ename == "NotFoundError"


def test_a_kernel_that_dies_while_starting_is_a_clear_error(
    sandbox_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel that exits before it is ready: a ConfigError with its exit status and last stderr line, no traceback."""
    from vyxops.core.errors import ConfigError
    from vyxops.shell import kernel as kernel_module

    monkeypatch.setattr(
        kernel_module, "PRELOAD", ("import os; os.write(2, b'ImportError: no module named pandas\\n'); os._exit(3)",)
    )
    with pytest.raises(ConfigError) as caught, Kernel() as kernel:
        run_notebook(
            "investigate",
            {"scenario": "stub-image", "app": "vyx-app", "out_dir": str(tmp_path)},
            tmp_path,
            kernel=kernel,
        )
    assert "exited with status 3" in str(caught.value)
    assert "no module named pandas" in (caught.value.hint or "")
    assert kernel.process.poll() is not None and not Path(kernel.info["ip"]).parent.exists()
