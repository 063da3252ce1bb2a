"""What vyxops.shell.kernel's speed tricks lean on upstream, beyond public APIs: a test per reliance.

Each failure names the upstream, its installed version and what to re-check in
vyxops/shell/kernel.py. After re-checking, update the recorded hash or expectation here
and the version in pyproject.toml's range and in the trick's comment.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import inspect
import linecache
import textwrap
from collections.abc import Callable
from typing import Any

import ipykernel.kernelapp
import matplotlib.projections
import pytest
from ipykernel.kernelapp import IPKernelApp
from jupyter_client.client import KernelClient
from jupyter_client.provisioning.factory import KernelProvisionerFactory
from jupyter_client.provisioning.local_provisioner import LocalProvisioner
from nbclient import NotebookClient
from papermill.engines import Engine, NotebookExecutionManager  # type: ignore[import-untyped]

from vyxops.shell import kernel

#: Upstream functions vyxops.shell.kernel copies or re-does: (distribution, version checked,
#: sha256 of the normalised source, first 16 hex digits). Comments, docstrings,
#: annotations and layout do not count; any change to the code does.
RECORDED: dict[str, tuple[str, str, str]] = {
    "papermill.engines.Engine.execute_notebook": ("papermill", "2.7.0", "4fde2590b70b6000"),
    "jupyter_client.client.KernelClient._async_wait_for_ready": ("jupyter_client", "8.10.0", "6a65a8661714367b"),
}


def normalised_source(func: Callable[..., Any]) -> str:
    """``func``'s code as ``ast.unparse`` prints it, without docstrings, annotations or comments."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node.returns = None
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = node.body[1:] or [ast.Pass()]
        elif isinstance(node, ast.arg):
            node.annotation = None
    return ast.unparse(tree)


def source_hash(func: Callable[..., Any]) -> str:
    return hashlib.sha256(normalised_source(func).encode()).hexdigest()[:16]


def upstream(dist: str) -> str:
    """``dist`` and its installed version, as a failure message names it."""
    return f"{dist} {importlib.metadata.version(dist)}"


def calls_in(func: Callable[..., Any]) -> set[str]:
    """Every call in ``func`` written as ``self.name(...)`` or ``self.attr.name(...)``, as dotted text."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    return {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}


def self_assignments(func: Callable[..., Any]) -> set[str]:
    """The attributes ``func`` assigns on ``self``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    return {
        target.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"
    }


def check_recorded(name: str, func: Callable[..., Any], recheck: str) -> None:
    dist, checked, recorded = RECORDED[name]
    assert source_hash(func) == recorded, (
        f"{upstream(dist)} changed {name} since {checked} (normalised source hash {source_hash(func)}, "
        f"recorded {recorded}): {recheck}"
    )


# --------------------------------------------------------------------------- papermill


def test_papermills_execute_notebook_is_the_one_the_engine_copied() -> None:
    """papermill's Engine.execute_notebook is still the 2.7.0 body that ThrottledEngine copies."""
    check_recorded(
        "papermill.engines.Engine.execute_notebook",
        Engine.execute_notebook,
        "copy the new body into ThrottledEngine.execute_notebook in vyxops/shell/kernel.py (only the manager's class "
        "differs), then record the new hash and version in tests/test_kernel_contract.py",
    )


def test_the_engines_copy_differs_from_papermills_only_in_the_manager() -> None:
    """ThrottledEngine.execute_notebook is papermill's own, with ThrottledManager for NotebookExecutionManager."""
    ours = normalised_source(kernel._throttled_engine_class().execute_notebook)
    theirs = normalised_source(Engine.execute_notebook).replace("NotebookExecutionManager(", "ThrottledManager(")
    assert ours == theirs, (
        f"vyxops/shell/kernel.py's ThrottledEngine.execute_notebook no longer matches {upstream('papermill')}'s "
        "Engine.execute_notebook apart from the manager class: make it a copy again"
    )


@pytest.mark.parametrize("method", ["notebook_start", "cell_start", "cell_complete", "notebook_complete"])
def test_papermills_manager_writes_through_save(method: str) -> None:
    """Each write papermill's notebook manager makes goes through its save(), the method ThrottledManager throttles."""
    assert "self.save" in calls_in(getattr(NotebookExecutionManager, method)), (
        f"{upstream('papermill')}'s NotebookExecutionManager.{method} no longer writes through self.save(): "
        "re-check ThrottledManager in vyxops/shell/kernel.py, which throttles writes by overriding save()"
    )


def test_papermills_save_keeps_the_time_the_throttle_reads() -> None:
    """papermill's save() still records last_save_time, which ThrottledManager compares with now()."""
    assert "last_save_time" in self_assignments(NotebookExecutionManager.save), (
        f"{upstream('papermill')}'s NotebookExecutionManager.save no longer sets self.last_save_time: "
        "ThrottledManager.save in vyxops/shell/kernel.py reads it to space the writes"
    )


# --------------------------------------------------------------------------- jupyter_client


def test_local_provisioner_launch_sets_what_the_adoption_sets() -> None:
    """LocalProvisioner.launch_kernel still sets exactly process, pid, pgid and cwd, as PrespawnedProvisioner does."""
    assert self_assignments(LocalProvisioner.launch_kernel) == {"process", "pid", "pgid", "cwd"}, (
        f"{upstream('jupyter_client')}'s LocalProvisioner.launch_kernel now sets "
        f"{sorted(self_assignments(LocalProvisioner.launch_kernel))}: PrespawnedProvisioner.launch_kernel in "
        "vyxops/shell/kernel.py must set the same, or LocalProvisioner cannot manage the adopted process"
    )


def test_the_kernel_spec_selects_the_prespawned_provisioner() -> None:
    """A kernel spec naming vyxops-prespawned gets PrespawnedProvisioner from jupyter_client's provisioner factory."""
    spec = kernel._spec_manager_class()().get_kernel_spec(kernel.KERNEL_NAME)
    try:
        provisioner = KernelProvisionerFactory.instance().create_provisioner_instance("k", spec, parent=None)
    except ModuleNotFoundError as exc:
        pytest.fail(f"{exc}: the entry point in pyproject.toml is not installed; run `make setup`")
    assert isinstance(provisioner, kernel._provisioner_class()), (
        f"{upstream('jupyter_client')} no longer picks the provisioner a kernel spec's metadata.kernel_provisioner "
        "names: re-check _spec_manager_class and PrespawnedProvisioner in vyxops/shell/kernel.py"
    )


def test_jupyter_clients_readiness_wait_is_the_one_the_prompt_client_redoes() -> None:
    """jupyter_client's own wait for a ready kernel is still the 8.10.0 one that PromptKernelClient re-does."""
    check_recorded(
        "jupyter_client.client.KernelClient._async_wait_for_ready",
        KernelClient._async_wait_for_ready,
        "PromptKernelClient.wait_for_ready in vyxops/shell/kernel.py re-does it without the final 0.2 s IOPub flush; "
        "bring over whatever else changed, then record the new hash and version in tests/test_kernel_contract.py",
    )


def test_the_kernel_info_reply_handler_the_prompt_client_calls_is_there() -> None:
    """KernelClient._handle_kernel_info_reply still takes the reply alone, and upstream's own wait still calls it."""
    handler = getattr(KernelClient, "_handle_kernel_info_reply", None)
    assert handler is not None and list(inspect.signature(handler).parameters) == ["self", "msg"], (
        f"{upstream('jupyter_client')}'s KernelClient._handle_kernel_info_reply is gone or takes other parameters: "
        "PromptKernelClient.wait_for_ready in vyxops/shell/kernel.py calls it with the kernel_info reply"
    )
    assert "self._handle_kernel_info_reply" in calls_in(KernelClient._async_wait_for_ready), (
        f"{upstream('jupyter_client')} no longer handles the kernel_info reply with _handle_kernel_info_reply when "
        "a client becomes ready: do what it does now in PromptKernelClient.wait_for_ready (vyxops/shell/kernel.py)"
    )


# --------------------------------------------------------------------------- nbclient


def test_nbclient_readies_its_client_through_wait_for_ready() -> None:
    """nbclient readies the client it makes through kc.wait_for_ready, the method PromptKernelClient overrides."""
    assert "self.kc.wait_for_ready" in calls_in(NotebookClient.async_start_new_kernel_client), (
        f"{upstream('nbclient')} no longer calls kc.wait_for_ready on a new client: PromptKernelClient's override "
        "in vyxops/shell/kernel.py is bypassed (0.2 s more a run); find where it waits now"
    )


def test_nbclient_does_not_start_a_kernel_the_manager_already_has() -> None:
    """nbclient only starts a kernel when its manager has none, so the adopted kernel is the one that runs."""
    source = normalised_source(NotebookClient.async_setup_kernel)
    assert "if not self.km.has_kernel:\n        await self.async_start_new_kernel(" in source, (
        f"{upstream('nbclient')} no longer skips starting a kernel when km.has_kernel: a run would start a second "
        "kernel beside the adopted one; re-check Kernel.km in vyxops/shell/kernel.py"
    )


# --------------------------------------------------------------------------- the kernel process and its preload


def test_ipykernel_takes_the_command_line_the_kernel_is_spawned_with() -> None:
    """ipykernel still reads -f as its connection file, has exec_lines, and exits when JPY_PARENT_PID dies."""
    assert ipykernel.kernelapp.kernel_aliases.get("f") == "IPKernelApp.connection_file", (
        f"{upstream('ipykernel')} no longer takes -f as the connection file: re-check kernel_argv in "
        "vyxops/shell/kernel.py"
    )
    assert "exec_lines" in IPKernelApp.class_trait_names(), (
        f"{upstream('ipykernel')} has no IPKernelApp.exec_lines: the preload (kernel_argv, vyxops/shell/kernel.py) "
        "needs another way in"
    )
    assert "JPY_PARENT_PID" in inspect.getsource(ipykernel.kernelapp), (
        f"{upstream('ipykernel')} no longer watches JPY_PARENT_PID: a kernel whose CLI dies would stay behind; "
        "re-check Kernel in vyxops/shell/kernel.py"
    )


def test_ipykernel_starts_without_a_debugger_when_debugpy_is_blocked() -> None:
    """With debugpy blocked as vyxops/shell/kernel_main.py blocks it, ipykernel's debugger module still imports and
    says no debugger is available (so the kernel starts without one), and its kernel app still imports."""
    import subprocess
    import sys

    script = (
        "import sys; from vyxops.shell.kernel_main import BLOCKED\n"
        "for name in BLOCKED: sys.modules[name] = None\n"
        "import ipykernel.debugger, ipykernel.kernelapp, ipykernel.ipkernel\n"
        "print(ipykernel.debugger._is_debugpy_available)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "False", (
        f"{upstream('ipykernel')} no longer starts without debugpy as 'no debugger' "
        f"(ipykernel.debugger._is_debugpy_available): re-check vyxops/shell/kernel_main.py. {out.stderr[-500:]}"
    )
    assert "launch_new_instance" in vars(ipykernel.kernelapp), (
        f"{upstream('ipykernel')} has no kernelapp.launch_new_instance: re-check vyxops/shell/kernel_main.py"
    )


def test_matplotlib_tolerates_the_3d_toolkit_the_preload_blocks() -> None:
    """matplotlib still imports mpl_toolkits.mplot3d in a try that turns a failure into the warning preload hides."""
    tree = ast.parse(inspect.getsource(matplotlib.projections))
    guarded = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Try)
        and any(isinstance(s, ast.ImportFrom) and s.module == "mpl_toolkits.mplot3d" for s in node.body)
        and any(h.type is not None and ast.unparse(h.type) in ("Exception", "ImportError") for h in node.handlers)
        and "Unable to import Axes3D" in ast.unparse(node)
    ]
    assert guarded, (
        f"{upstream('matplotlib')} no longer imports mpl_toolkits.mplot3d in a try that warns 'Unable to import "
        "Axes3D' on failure: preload() in vyxops/shell/kernel.py blocks that import; re-check it"
    )


# --------------------------------------------------------------------------- the checks themselves


def test_the_source_hash_ignores_comments_and_docstrings_but_not_code() -> None:
    """The normalised hash the contract keeps changes with an upstream's code, not with its comments or docs."""
    namespace: dict[str, Any] = {}
    bodies = [
        'def f(x: int) -> int:\n    """Doc."""\n    return x + 1\n',
        "def f(x):\n    # a comment\n    return x + 1\n",
        "def f(x):\n    return x + 2\n",
    ]
    hashes = []
    for i, body in enumerate(bodies):
        path = f"<contract-{i}>"
        linecache.cache[path] = (len(body), None, body.splitlines(True), path)
        exec(compile(body, path, "exec"), namespace)
        hashes.append(source_hash(namespace["f"]))
    assert hashes[0] == hashes[1] != hashes[2]
