"""What a `vyxops investigate` run loads where: the CLI's process serves the sandbox, runs papermill and writes the
report; the analysis (pandas, the fixes) runs in the kernel. Whatever the CLI loads besides, every run waits for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

#: Modules only the kernel needs: the analysis, the fixes and the probe (their imports load pandas), and the
#: progress bar's widgets (a bar nobody watches).
KERNELS_ONLY = ("vyxops.analysis.investigate", "vyxops.act.fixes", "vyxops.act.probe", "ipywidgets", "tqdm")

RUN = """
import json, sys
from vyxops.shell.cli import main
code = main(["investigate", "--scenario", "stub-image", "--app", "vyx-app", "--out", sys.argv[1]])
print(json.dumps({"code": code, "loaded": [m for m in sys.argv[2].split(",") if m in sys.modules]}))
"""


def test_investigate_leaves_the_analysis_to_the_kernel_and_draws_no_progress_widget(tmp_path: Path) -> None:
    """The CLI's process never imports the analysis, the fixes or the probe (its exit status needs one finding code),
    and the kernel it starts draws no progress bar: no widget reaches the notebook (nor its report)."""
    out = tmp_path / "out"
    env = {**os.environ, "VYXOPS_SANDBOX_DIR": str(tmp_path / "sandbox"), "VYXOPS_AUDIT_LOG": str(tmp_path / "a.jsonl")}
    env.pop("VYXOPS_PROGRESS", None)  # the CLI's own setting is what is under test
    run = subprocess.run(
        [sys.executable, "-c", RUN, str(out), ",".join(KERNELS_ONLY)], capture_output=True, text=True, env=env
    )
    assert run.returncode == 0, run.stderr[-2000:]
    said = json.loads(run.stdout.strip().splitlines()[-1])
    assert said == {"code": 0, "loaded": []}
    assert "root cause: SECRET_IMAGE_NOT_CURRENT_RELEASE" in run.stdout
    nb = json.loads((out / "investigate.ipynb").read_text(encoding="utf-8"))
    kinds = {kind for cell in nb["cells"] for o in cell.get("outputs", []) for kind in o.get("data", {})}
    assert "text/markdown" in kinds and "image/png" in kinds  # the report's own outputs are there
    assert not any("widget" in kind for kind in kinds), kinds
    assert "widgets" not in nb["metadata"]
