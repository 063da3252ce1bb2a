"""The house in numbers (issue 10's table): module sizes, long functions, complexity, long lines, Any in signatures,
import circles.

Run: ``.venv/bin/python bench/house.py [package …]`` (default: vyxops and vyxops_sandbox).
Complexity is McCabe's, counted by ruff's C901 rule; the rest is read off the AST.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from vyxops.testing.imports import circles, describe, import_graph

ROOT = Path(__file__).resolve().parent.parent
LONG_FUNCTION = 60
LONG_LINE = 120
COMPLEX = 10


def functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def any_in_signature(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    annotations = [a.annotation for a in (*fn.args.args, *fn.args.kwonlyargs, *fn.args.posonlyargs) if a.annotation]
    annotations += [x.annotation for x in (fn.args.vararg, fn.args.kwarg) if x is not None and x.annotation]
    annotations += [fn.returns] if fn.returns is not None else []
    return any(re.search(r"\bAny\b", ast.unparse(a)) for a in annotations)


#: What a retry loop asks its policy: a function with a loop that asks either is one retry loop.
RETRY_DECISIONS = frozenset({"retries_status", "retries_exception"})


def is_retry_loop(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    loops = [n for n in ast.walk(fn) if isinstance(n, (ast.While, ast.For))]
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in RETRY_DECISIONS
        for loop in loops
        for n in ast.walk(loop)
    )


def complexity_over(package: str) -> int:
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", package, "--select", "C901", "--output-format", "concise",
         "--config", f"lint.mccabe.max-complexity={COMPLEX}", "--no-cache"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    return sum(1 for line in out.stdout.splitlines() if "C901" in line)


def measure(package: str) -> dict[str, object]:
    files = sorted((ROOT / package).rglob("*.py"))
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in files}
    long_fns, any_sigs, longest, session_any = 0, 0, ("", 0), 0
    named: list[str] = []
    retry_loops: list[str] = []
    long_lines = 0
    for path in files:
        text = path.read_text()
        long_lines += sum(1 for line in text.splitlines() if len(line) > LONG_LINE)
        for fn in functions(ast.parse(text)):
            length = (fn.end_lineno or fn.lineno) - fn.lineno + 1
            long_fns += length > LONG_FUNCTION
            if length > LONG_FUNCTION:
                named.append(f"{path.relative_to(ROOT)}:{fn.name} ({length})")
            any_sigs += any_in_signature(fn)
            if is_retry_loop(fn):
                retry_loops.append(f"{path.relative_to(ROOT)}:{fn.name}")
            session_any += any(
                a.arg == "session" and a.annotation is not None and ast.unparse(a.annotation) == "Any"
                for a in (*fn.args.args, *fn.args.kwonlyargs)
            )
            if length > longest[1]:
                longest = (f"{path.relative_to(ROOT)}:{fn.name}", length)
    largest = max(sizes.items(), key=lambda kv: kv[1])
    median = sorted(sizes.values())[len(sizes) // 2]
    return {
        "modules": len(files),
        "largest module": f"{largest[0]}, {largest[1]} lines",
        "median module": f"{median} lines",
        f"functions over {LONG_FUNCTION} lines": f"{long_fns} (longest {longest[1]}: {longest[0]})",
        f"complexity over {COMPLEX}": complexity_over(package),
        f"lines over {LONG_LINE} characters": long_lines,
        "signatures with Any": f"{any_sigs} (session: Any in {session_any})",
        "retry loops": f"{len(retry_loops)} ({', '.join(retry_loops) or 'none'})",
        "_long": named,
    }


#: Where a call can come from besides the packages themselves (notebooks are a product surface).
CALLERS = ("vyxops/**/*.py", "vyxops_sandbox/**/*.py", "bench/*.py", "notebooks/*.py", "notebooks/*.ipynb")
#: Called by a framework, not by name: BaseHTTPRequestHandler.log_message (the sandbox server's quiet mode).
FRAMEWORK_HOOKS = frozenset({"log_message"})


def words(patterns: tuple[str, ...]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pattern in patterns:
        for path in sorted(ROOT.glob(pattern)):
            for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", path.read_text()):
                counts[word] = counts.get(word, 0) + 1
    return counts


def dead_code() -> tuple[list[str], list[str]]:
    """Functions, methods and classes whose name appears nowhere but their definition: called by nothing, and
    called by tests only. By name, so a name shared with a live one hides it; decorated ones register themselves
    (detectors, fixes, routes) and dunders are Python's, so neither counts. vyxops/testing is test support."""
    used, tested = words(CALLERS), words(("tests/*.py",))
    nothing, tests_only = [], []
    for path in sorted([*(ROOT / "vyxops").rglob("*.py"), *(ROOT / "vyxops_sandbox").rglob("*.py")]):
        if "testing" in path.relative_to(ROOT).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or node.decorator_list:
                continue
            if node.name.startswith("__") or node.name in FRAMEWORK_HOOKS or used.get(node.name, 0) > 1:
                continue
            (tests_only if tested.get(node.name) else nothing).append(f"{path.relative_to(ROOT)}:{node.name}")
    return nothing, tests_only


def main() -> int:
    for package in sys.argv[1:] or ["vyxops", "vyxops_sandbox"]:
        print(f"== {package}")
        figures = measure(package)
        for key, value in figures.items():
            if not key.startswith("_"):
                print(f"{key:<28} {value}")
        for name in figures["_long"]:  # type: ignore[union-attr]
            print(f"  long: {name}")
        print()
    graph = import_graph()  # both packages: a circle may cross from the product into the simulator
    found = circles(graph)
    print(f"{'import circles':<28} {len(found)} (function-level imports count; tests/test_import_circles.py)")
    for component in found:
        print(describe(component, graph))
    nothing, tests_only = dead_code()
    print(f"{'called by nothing':<28} {len(nothing)} ({', '.join(nothing) or 'none'})")
    print(f"{'called by tests only':<28} {len(tests_only)} ({', '.join(tests_only) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
