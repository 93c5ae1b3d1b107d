"""Ctrl-C and SIGTERM stop a run at a safe point.

While a run trains, SIGINT and SIGTERM only set a flag; the loop looks at
it after each step, writes a checkpoint of that step (unless it has one)
and raises `Interrupted`, whose exit code is the shell's convention
(128 + the signal number: 130 for SIGINT, 143 for SIGTERM). A second
signal does not wait: it raises `KeyboardInterrupt` at once.
"""

from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """The run stopped on a signal after step `step`, checkpointed."""

    def __init__(self, step: int, signum: int):
        super().__init__(
            f"interrupted at step {step}; rerun the same command to resume"
        )
        self.step = step
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class InterruptFlag:
    """Turns SIGINT and SIGTERM into a flag while it is entered.

    Handlers can only be set from the main thread; elsewhere (a run
    started from a worker thread) the flag stays down and signals keep
    their usual effect.

    Example:

    >>> import os, signal
    >>> with InterruptFlag() as flag:
    ...     os.kill(os.getpid(), signal.SIGTERM)
    ...     print(flag.signum == signal.SIGTERM)
    True
    """

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            self._restore()
            raise KeyboardInterrupt
        self.signum = signum

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def __enter__(self) -> InterruptFlag:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        _active.append(self)
        return self

    def __exit__(self, *exc_info) -> None:
        self._restore()
        _active.remove(self)


# The flag of the run in progress, for the fault-injection hooks that
# wait for a signal (see tools/train.py).
_active: list[InterruptFlag] = []


def pending() -> bool:
    """Whether the run in progress has been asked to stop."""
    return bool(_active) and _active[-1].signum is not None
