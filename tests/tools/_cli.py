"""Running the project's programs as a user does: a child process of this
Python, started in the repository's root, its output captured as text."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
# The smallest real kb-train run: LeNet on the built-in digits.
SMALL = ["--model=lenet", "--dataset=digits", "--batch_size=64"]


def tool_command(tool: str, *args) -> list[str]:
    """The command line of kb-TOOL (`python -m tools.TOOL`) with `args`."""
    return [sys.executable, "-m", f"tools.{tool}", *args]


def run_python(*args, env=None, timeout=600, cwd=REPO, **kwargs):
    """Runs this Python with `args` and waits for it; `env` is added to
    this process's environment, `kwargs` go to `subprocess.run`."""
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def run_tool(tool: str, *args, **kwargs):
    """Runs kb-TOOL with `args`, as `run_python` does."""
    return run_python("-m", f"tools.{tool}", *args, **kwargs)


def start_tool(tool: str, *args, env=None, **kwargs) -> subprocess.Popen:
    """Starts kb-TOOL with `args` without waiting: its output in text
    pipes unless `kwargs` (for `subprocess.Popen`) say otherwise."""
    options = {
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
        "text": True,
        **kwargs,
    }
    return subprocess.Popen(
        tool_command(tool, *args),
        cwd=REPO,
        env={**os.environ, **(env or {})},
        **options,
    )


def refusal(tool: str, *args, **kwargs) -> list[str]:
    """Runs kb-TOOL on a user's mistake: it must exit with 2; returns
    the lines it wrote to stderr."""
    done = run_tool(tool, *args, **kwargs)
    assert done.returncode == 2, done.stderr[-3000:]
    return done.stderr.strip().splitlines()
