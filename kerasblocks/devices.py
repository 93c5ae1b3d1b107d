"""Devices: listing, placement, where variables live, and strategies.

The chapter's helpers (`cpu`, `gpu`, `num_gpus`, `try_gpu`,
`try_all_gpus`) return `Device` objects: strings such as `"/GPU:0"` that
are also context managers, so both `with try_gpu(): ...` and
`tf.device(try_gpu())` work. `variable_devices` replaces the
`layer.weights[0].device` attribute that Keras 3 removed.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kerasblocks.params import unique_variables


class Device(str):
    """A device name that is also a placement context manager.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> with kerasblocks.devices.cpu():
    ...     x = tf.ones(2)
    >>> x.device.endswith("CPU:0"), kerasblocks.devices.cpu()
    (True, '/CPU:0')
    """

    def __enter__(self):
        self._context = tf.device(str(self))
        return self._context.__enter__()

    def __exit__(self, *exc_info):
        return self._context.__exit__(*exc_info)


def cpu() -> Device:
    """The CPU device."""
    return Device("/CPU:0")


def num_gpus() -> int:
    """Number of visible GPUs (0 on a CPU-only machine)."""
    return len(tf.config.list_physical_devices("GPU"))


def gpu(i: int = 0) -> Device:
    """The i-th GPU; raises ValueError if there is no such GPU.

    Use `try_gpu(i)` to fall back to the CPU instead.
    """
    if isinstance(i, bool) or not isinstance(i, int) or i < 0:
        raise ValueError(f"i must be a non-negative int. Received: {i=}")
    available = num_gpus()
    if i >= available:
        raise ValueError(
            f"GPU {i} does not exist: this machine has {available} GPU(s). "
            f"Use kerasblocks.devices.try_gpu({i}) to fall back to the CPU."
        )
    return Device(f"/GPU:{i}")


def try_gpu(i: int = 0) -> Device:
    """The i-th GPU if it exists, else the CPU.

    Example:

    >>> import kerasblocks
    >>> kerasblocks.devices.try_gpu(7) in ("/GPU:7", "/CPU:0")
    True
    """
    return gpu(i) if i < num_gpus() else cpu()


def try_all_gpus() -> list[Device]:
    """Every GPU, or `[cpu()]` when there is none."""
    return [gpu(i) for i in range(num_gpus())] or [cpu()]


def variable_devices(model: keras.layers.Layer) -> dict[str, str]:
    """Where each variable lives: `{path: device}`.

    Example:

    >>> import kerasblocks
    >>> net = kerasblocks.layers.MLP(name="mlp")
    >>> _ = kerasblocks.materialize(net, (None, 4))
    >>> kerasblocks.devices.variable_devices(net)["mlp/out/bias"][-5:]
    'CPU:0'
    """
    return {v.path: str(v.value.device) for v in unique_variables(model)}


STRATEGIES = ("default", "mirrored", "one_device")


def strategy(name: str = "default") -> tf.distribute.Strategy:
    """A tf.distribute strategy by name.

    Args:
        name: `"default"` (no distribution), `"mirrored"` (all local GPUs,
            or the CPU when there is none) or `"one_device"` (the first
            GPU, or the CPU).

    Example:

    >>> import kerasblocks
    >>> s = kerasblocks.devices.strategy("one_device")
    >>> s.num_replicas_in_sync
    1
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(
            devices=[str(d) for d in try_all_gpus()]
        )
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(str(try_gpu()))
    raise ValueError(
        f"Unknown strategy {name!r}. Valid names: {', '.join(STRATEGIES)}"
    )
