"""kb-train's fault hooks, set through the environment by the tests of
resuming (a kill, a pause for a full disk or a signal, every worker's
final weights), kept out of the tool's flags and wiring."""

from __future__ import annotations

import os
import time


def fault_hooks(environ=os.environ):
    """Hooks the fault-tolerance tests set through the environment.

    KB_FAULT_KILL_AT_STEP=N: the process kills itself (SIGKILL, as an
    outage would) after step N. KB_FAULT_PAUSE_AT_STEP=N:FILE: after
    step N the process creates FILE and waits (at most a minute) until
    FILE is removed or a signal asks the run to stop, so that a test can
    fill the disk or send a signal at a known step.
    KB_FAULT_PAUSE_BEFORE_EXPORT=FILE: the same pause once training is
    done (its last checkpoint written), before the exports.
    KB_FINAL_WEIGHTS_DIR=D: every worker
    writes its final weights to D/<task>-<index>.weights, so a test (or a
    user) can check that all workers ended identical.
    """
    from kerasblocks.training import strategies
    from kerasblocks.training.loop import Hooks

    hooks = Hooks()
    kill_at = environ.get("KB_FAULT_KILL_AT_STEP")
    if kill_at:
        import signal

        def after_step(step):
            if step == int(kill_at):
                os.kill(os.getpid(), signal.SIGKILL)

        hooks.after_step = after_step
    pause = environ.get("KB_FAULT_PAUSE_AT_STEP")
    if pause:
        from kerasblocks.training import interrupts

        at, _, marker = pause.partition(":")

        def after_step(step):
            if step == int(at):
                _pause(marker, interrupts.pending)

        hooks.after_step = after_step
    before_export = environ.get("KB_FAULT_PAUSE_BEFORE_EXPORT")
    if before_export:
        hooks.on_finish = lambda model, strategy: _pause(before_export)
    directory = environ.get("KB_FINAL_WEIGHTS_DIR")
    if directory:

        def on_finish(model, strategy):
            from kerasblocks.io import save_weights

            os.makedirs(directory, exist_ok=True)
            name = f"{strategies.task_name(strategy)}.weights"
            save_weights(model, os.path.join(directory, name))

        hooks.on_finish = on_finish
    return hooks


def _pause(marker: str, stop=lambda: False) -> None:
    """Creates `marker` and waits (at most a minute) until it is removed
    or `stop()`."""
    open(marker, "w").close()
    deadline = time.monotonic() + 60
    while os.path.exists(marker) and not stop() and time.monotonic() < deadline:
        time.sleep(0.02)
