"""keras.applications' arguments, for every image model of the zoo.

keras.applications' constructors take `classes`, `input_tensor` and the
global `keras.config.image_data_format()`; the zoo's image models take
the same, on top of their own arguments:

- `classes`: `num_classes` under Keras's name; giving both with
  different values is an error.
- `input_tensor`: a Keras tensor to build the model on. As in Keras,
  the model's inputs are the tensor's source inputs, so any layers
  between them become part of the model (and of its config, which is
  then the graph's, as for any Functional model).
- `data_format`: "channels_first" or "channels_last"; by default
  `keras.config.image_data_format()` at construction. The config
  records it, so a model reloads with the layout it was built with.

A channels-first model takes `(channels, height, width)` images and
returns channels-first feature maps. Inside, its layers compute
channels-last (a transpose after the input and before a feature-map
output): the weights are the same arrays in both layouts, as in
keras.applications (a Keras convolution kernel is `(kh, kw, in, out)`
whatever the data format, and `Flatten` orders channels-first maps
channels-last), and the model runs where a TensorFlow CPU kernel lacks
the NCHW layout. While such a model is built, Keras's global data
format is set to "channels_last" (under a lock, then restored), so
that the layers made in the constructor are channels-last.

At the class level, `input_shape` is always `(height, width,
channels)`; `zoo.create_model` takes it in the data format, as
keras.applications does, and converts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import threading
from typing import Any

import keras

DATA_FORMATS = ("channels_first", "channels_last")

# Keras's global data format is process state: one build at a time may
# switch it to channels-last.
_FORMAT_LOCK = threading.RLock()
_STATE = threading.local()


@dataclasses.dataclass
class Build:
    """keras.applications' arguments of the model being constructed."""

    data_format: str
    input_tensor: Any = None
    classes: int | None = None


def current_build() -> Build:
    """The arguments of the image model being constructed in this
    thread (the global data format when none is)."""
    build = getattr(_STATE, "build", None)
    if build is None:
        return Build(data_format=keras.config.image_data_format())
    return build


def check_data_format(data_format: Any) -> str:
    if data_format is None:
        return keras.config.image_data_format()
    if data_format not in DATA_FORMATS:
        raise ValueError(
            f"data_format must be one of {DATA_FORMATS}. Received: "
            f"{data_format=}"
        )
    return data_format


def _check_classes(classes: Any) -> None:
    if isinstance(classes, bool) or not isinstance(classes, int):
        raise ValueError(
            f"classes must be a positive int. Received: {classes=}"
        )


def merge_classes(arguments: dict[str, Any]) -> None:
    """Moves `classes` into `num_classes` in `arguments` (in place);
    both given with different values is a ValueError."""
    classes = arguments.pop("classes", None)
    if classes is None:
        return
    _check_classes(classes)
    num_classes = arguments.get("num_classes")
    if num_classes is not None and num_classes != classes:
        raise ValueError(
            "classes and num_classes are the same argument (Keras's name "
            "and the zoo's); give one, or both equal. Received: "
            f"{classes=}, {num_classes=}"
        )
    arguments["num_classes"] = classes


@contextlib.contextmanager
def _channels_last_layers(data_format: str):
    if data_format != "channels_first":
        yield
        return
    with _FORMAT_LOCK:
        previous = keras.config.image_data_format()
        keras.config.set_image_data_format("channels_last")
        try:
            yield
        finally:
            keras.config.set_image_data_format(previous)


def with_keras_arguments(init):
    """Wraps an image model's `__init__` to take `classes`,
    `input_tensor` and `data_format` (see the module docstring)."""

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        if getattr(_STATE, "build", None) is not None:
            # A subclass's __init__ calling its parent's: the outermost
            # call has taken the arguments.
            return init(self, *args, **kwargs)
        data_format = check_data_format(kwargs.pop("data_format", None))
        input_tensor = kwargs.pop("input_tensor", None)
        classes = kwargs.get("classes")
        merge_classes(kwargs)
        _STATE.build = Build(data_format, input_tensor, classes)
        try:
            with _channels_last_layers(data_format):
                init(self, *args, **kwargs)
        finally:
            _STATE.build = None

    # Keras reads the constructor's arguments with getfullargspec, which
    # does not follow __wrapped__ but honours __signature__.
    __init__.__signature__ = inspect.signature(init)
    return __init__


def to_channels_last(shape: Any, data_format: str) -> Any:
    """`(channels, height, width)` -> `(height, width, channels)` when
    `data_format` is channels-first; anything else unchanged."""
    if (
        data_format == "channels_first"
        and isinstance(shape, (tuple, list))
        and len(shape) == 3
    ):
        return (shape[1], shape[2], shape[0])
    return shape


def keras_style_arguments(
    overrides: dict[str, Any], *, is_twin: bool
) -> dict[str, Any]:
    """`zoo.create_model`'s arguments, given as keras.applications takes
    them, in the form the model classes take them.

    `classes` becomes `num_classes`; `input_shape` is read in the data
    format and passed channels-last; a keras.applications twin built
    without a top and without `input_shape` (or `input_tensor`) leaves
    height and width open, as keras.applications does.
    """
    arguments = dict(overrides)
    merge_classes(arguments)
    data_format = check_data_format(arguments.get("data_format"))
    if "input_shape" in arguments:
        arguments["input_shape"] = to_channels_last(
            arguments["input_shape"], data_format
        )
    elif (
        is_twin
        and arguments.get("input_tensor") is None
        and arguments.get("include_top", True) is False
        and not arguments.get("features_only", False)
    ):
        arguments["input_shape"] = (None, None, 3)
    return arguments
