"""Building the eager / graph / XLA variants of a function, and choosing.

"auto" compiles the graph and XLA variants, times them side by side on
the first real inputs (warm-up excluded, alternating rounds, median) and
keeps the faster one. An XLA compilation failure makes "auto" keep the
graph variant, with a warning that names the layer and op.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from kerasblocks.compile._xla import diagnose

MODES = ("eager", "graph", "xla", "auto")
logger = logging.getLogger("kerasblocks.compile")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(
            f"Unknown mode {mode!r}. Valid modes: {', '.join(MODES)}"
        )
    return mode


class Traced:
    """A Python function plus its tf.function variants, counting traces."""

    def __init__(self, fn: Callable, signature: Any, name: str):
        self.fn = fn
        self.signature = signature
        self.name = name
        self.traces = {"graph": 0, "xla": 0}
        self._variants: dict[str, Callable] = {}

    def _counting(self, mode: str) -> Callable:
        def traced(*args):
            self.traces[mode] += 1
            return self.fn(*args)

        return traced

    def variant(self, mode: str) -> Callable:
        if mode == "eager":
            return self.fn
        if mode not in self._variants:
            self._variants[mode] = tf.function(
                self._counting(mode),
                input_signature=self.signature,
                jit_compile=mode == "xla",
                reduce_retracing=self.signature is None,
            )
        return self._variants[mode]


@dataclasses.dataclass
class Choice:
    """What "auto" measured and chose (or what was asked for)."""

    mode: str
    requested: str
    first_call_seconds: dict[str, float] = dataclasses.field(
        default_factory=dict
    )
    median_ms: dict[str, float] = dataclasses.field(default_factory=dict)
    reason: str = ""

    def __str__(self) -> str:
        if self.requested != "auto":
            return f"mode={self.mode} (as requested)"
        timings = ", ".join(
            f"{k} {v:.3f} ms" for k, v in self.median_ms.items()
        )
        return f"mode={self.mode} (auto: {self.reason}; {timings})"


class CompiledBase:
    """What compiled forward and train steps share: the mode in use and
    its trace count. Subclasses set `choice` and `_counted` (the `Traced`
    whose traces are reported)."""

    choice: Choice | None = None
    _counted: Traced

    @property
    def mode(self) -> str | None:
        """ "eager", "graph" or "xla"; for "auto", None until chosen."""
        return None if self.choice is None else self.choice.mode

    @property
    def trace_count(self) -> int:
        """Traces of the function in use (0 in eager mode)."""
        if self.mode in (None, "eager"):
            return 0
        return self._counted.traces[self.mode]

    def _set_mode(self, mode: str) -> None:
        self.requested_mode = check_mode(mode)
        self.choice = None if mode == "auto" else Choice(mode, requested=mode)

    def _call_in_mode(self, steps, args: tuple, what: str, snapshot=None):
        """Calls `steps.variant(mode)(*args)` in the mode in use. For
        "auto", the first call chooses the mode first (`snapshot()` gives
        the `restore` that undoes each measured call); the first call of
        a compiled mode reports its seconds and names XLA failures."""
        if self.choice is None:
            restore = None if snapshot is None else snapshot()
            self.choice = choose(
                steps, args, what, restore=restore, model=self.model
            )
        elif self.mode != "eager" and self._counted.traces[self.mode] == 0:
            result, seconds = run_first_call(
                steps, self.mode, args, what, self.model
            )
            self.choice.first_call_seconds[self.mode] = seconds
            return result
        return steps.variant(self.mode)(*args)


def _sync(result: Any) -> None:
    for value in tf.nest.flatten(result):
        if hasattr(value, "numpy"):
            value.numpy()


def run_first_call(
    traced: Traced, mode: str, args: tuple, what: str, model=None
) -> tuple[Any, float]:
    """Runs (and so traces/compiles) one variant; XLA failures are named."""
    start = time.perf_counter()
    try:
        result = traced.variant(mode)(*args)
        _sync(result)
    except (
        tf.errors.InvalidArgumentError,
        tf.errors.UnimplementedError,
    ) as error:
        named = diagnose(error, what, model) if mode == "xla" else None
        if named is not None:
            raise named from None
        raise
    return result, time.perf_counter() - start


def choose(
    traced: Traced,
    args: tuple,
    what: str,
    *,
    rounds: int = 3,
    min_seconds: float = 0.02,
    restore: Callable[[], None] | None = None,
    model=None,
) -> Choice:
    """Times graph vs XLA on `args` and returns the faster choice.

    Each variant is called once (trace and compile, reported separately),
    then both are timed in alternating rounds of enough calls to last
    about `min_seconds`; the medians decide.

    Args:
        restore: called after every measured call, to undo its side
            effects (a training step restores the variables).
    """
    choice = Choice(mode="graph", requested="auto")
    for mode in ("graph", "xla"):
        try:
            _, seconds = run_first_call(traced, mode, args, what, model)
        except ValueError as error:
            if mode != "xla":
                raise
            warnings.warn(
                f"{error} Falling back to mode='graph'.", stacklevel=3
            )
            choice.reason = "XLA failed to compile"
            if restore:
                restore()
            return choice
        choice.first_call_seconds[mode] = seconds
        if restore:
            restore()
    start = time.perf_counter()
    _sync(traced.variant("graph")(*args))
    once = max(time.perf_counter() - start, 1e-6)
    if restore:
        restore()
    iterations = max(1, min(100, int(min_seconds / once)))
    samples: dict[str, list[float]] = {"graph": [], "xla": []}
    for _ in range(rounds):
        for mode in ("graph", "xla"):
            function = traced.variant(mode)
            elapsed = 0.0
            for _ in range(iterations):
                start = time.perf_counter()
                _sync(function(*args))
                elapsed += time.perf_counter() - start
                if restore:  # undoing side effects is not timed
                    restore()
            samples[mode].append(elapsed / iterations)
    choice.median_ms = {
        m: statistics.median(v) * 1e3 for m, v in samples.items()
    }
    faster = min(choice.median_ms, key=choice.median_ms.get)
    choice.mode = faster
    ratio = choice.median_ms["graph"] / choice.median_ms["xla"]
    choice.reason = f"XLA speed-up x{ratio:.2f}"
    logger.info("%s: chose %s", what, choice)
    return choice
