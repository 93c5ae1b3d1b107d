"""The model registry: names -> constructors, with a tiny test spec each.

Each registered name is a few-line function that returns a model with
the variant's arguments; `create_model(name, **overrides)` passes user
overrides through. The registry refuses a duplicate name and, for an
unknown one, suggests the closest registered names.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any

import keras

from zoo._keras_arguments import keras_style_arguments
from zoo._keras_twin import RegisteredTwin, register_twin

ModelFn = Callable[..., keras.Model]


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """A registered model.

    Attributes:
        name: the registered name.
        fn: the constructor function.
        family: the module that defines it (e.g. "resnet").
        test_overrides: arguments that make the model small enough for
            the conformance suite (e.g. a small `input_shape`).
        summary: the first paragraph of the function's docstring, on
            one line.
        task: "image" (takes `input_shape`, `num_classes`, `include_top`,
            `pooling`, `classifier_activation`, `features_only`) or
            "sequence".
        test_inputs: makes the conformance suite's input batch (of 2)
            from the model; None means uniform floats of the input shape.
        test_tolerance: eager/graph/XLA tolerance in the suite.
        test_allow_no_gradient: variable path patterns whose gradient
            may be zero in the suite's training step (say why where you
            use it).
        test_covered_by: for a deep sibling built from the same classes
            as a smaller registered model (resnet152 and resnet50), the
            name of that model. The suite then runs the full harness on
            the sibling and a light check on this entry (build, forward,
            config round trip, parameter-count golden), which keeps the
            suite within its time budget. None means the full harness.
        keras_twin: for a model identical to a keras.applications
            model, how the two correspond (a `zoo._keras_twin.KerasTwin`:
            the Keras model's name, its layer names, the arguments only
            its layers show); None for any other model.
        pretrained_cfg: what this model's pretrained weights expect (a
            `zoo.pretrained.PretrainedCfg`), or None when it has none.
    """

    name: str
    fn: ModelFn
    family: str
    test_overrides: Mapping[str, Any]
    summary: str
    task: str = "image"
    test_inputs: Callable[[keras.Model], Any] | None = None
    test_tolerance: float = 1e-4
    test_allow_no_gradient: tuple[str, ...] = ()
    test_covered_by: str | None = None
    keras_twin: Any = None
    pretrained_cfg: Any = None


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    fn: ModelFn | None = None,
    *,
    name: str | None = None,
    test_overrides: Mapping[str, Any] | None = None,
    task: str = "image",
    test_inputs: Callable[[keras.Model], Any] | None = None,
    test_tolerance: float = 1e-4,
    test_allow_no_gradient: tuple[str, ...] = (),
    test_covered_by: str | None = None,
    keras_twin: Any = None,
    pretrained_cfg: Any = None,
):
    """Registers a model function under its name (or `name`).

    Usable bare (`@register_model`) or with arguments
    (`@register_model(test_overrides={"input_shape": (32, 32, 1)})`).

    Raises:
        ValueError: the name is already registered.
    """

    if task not in ("image", "sequence"):
        raise ValueError(
            f"task must be 'image' or 'sequence'. Received: {task=}"
        )

    def decorator(function: ModelFn) -> ModelFn:
        key = name or function.__name__
        if not isinstance(key, str) or not key:
            raise ValueError(
                f"A model name must be a non-empty string: {key!r}"
            )
        if key in _REGISTRY:
            raise ValueError(
                f"A model named {key!r} is already registered (by "
                f"{_REGISTRY[key].fn.__module__}.{_REGISTRY[key].fn.__name__})."
            )
        doc = inspect.getdoc(function) or ""
        _REGISTRY[key] = ModelEntry(
            name=key,
            fn=function,
            family=function.__module__.rsplit(".", 1)[-1],
            test_overrides=dict(test_overrides or {}),
            summary=" ".join(doc.split("\n\n")[0].split()),
            task=task,
            test_inputs=test_inputs,
            test_tolerance=test_tolerance,
            test_allow_no_gradient=tuple(test_allow_no_gradient),
            test_covered_by=test_covered_by,
            keras_twin=keras_twin,
            pretrained_cfg=pretrained_cfg,
        )
        if keras_twin is not None or pretrained_cfg is not None:
            register_twin(
                RegisteredTwin(key, function, keras_twin, pretrained_cfg)
            )
        return function

    if fn is not None:
        return decorator(fn)
    return decorator


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style `pattern`, sorted.

    Example:

    >>> import zoo
    >>> zoo.list_models("lenet*")
    ['lenet', 'lenet_bn']
    """
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a string. Received: {pattern!r}")
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry of `name`; a clear error lists close names."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(
        str(name), list(_REGISTRY), n=5, cutoff=0.4
    )
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(
        f"Unknown model {name!r}.{hint} zoo.list_models() lists all "
        f"{len(_REGISTRY)} registered names."
    )


def create_model(
    name: str,
    *,
    weights: str | os.PathLike | None = None,
    include_preprocessing: bool | None = None,
    strict: bool = True,
    **overrides: Any,
) -> keras.Model:
    """Builds the registered model `name`, with arguments overridden.

    Args:
        name: a registered name (`list_models()`).
        weights: None (random initialization), "imagenet", or a path: a
            keras.applications weights file, or a `.keras`, `.h5`,
            `.weights.h5` or SavedModel of the same architecture (see
            `zoo.pretrained`). A file with a classifier decides
            `num_classes` unless it is given.
        include_preprocessing: put the preprocessing the model's
            pretrained weights expect inside the model, so that it takes
            RGB pixels in [0, 255]. Families that normalize inside
            (EfficientNet, ConvNeXt, MobileNetV3) take it as their own
            argument.
        strict: with `weights`, a backbone weight the file leaves
            unloaded is an error (`PretrainedWeightsError`); False loads
            what fits and reports the rest (`model.pretrained_report`).
        **overrides: the model function's arguments. An image model
            takes keras.applications' arguments as keras.applications
            does: `classes` (as `num_classes`), `input_tensor`, and
            `input_shape` in `keras.config.image_data_format()`'s layout
            (or `data_format`'s); a keras.applications twin without a
            top and without `input_shape` takes any height and width.

    Example:

    >>> import zoo
    >>> model = zoo.create_model("lenet", num_classes=3)
    >>> model.output_shape
    (None, 3)
    """
    entry = get_model_entry(name)
    cfg = entry.pretrained_cfg
    if entry.task == "image":
        overrides = keras_style_arguments(overrides, is_twin=cfg is not None)
    builtin = cfg is not None and cfg.preprocessing == "builtin"
    if include_preprocessing is not None and builtin:
        overrides["include_preprocessing"] = include_preprocessing
    elif include_preprocessing and cfg is None:
        raise ValueError(
            f"{name} has no pretrained configuration, so no preprocessing "
            "to include; add a keras.layers.Rescaling/Normalization in "
            "front of it yourself."
        )

    def build(**arguments):
        return _call_model_fn(entry, arguments)

    if weights is None:
        model = build(**overrides)
    else:
        from zoo._loading import load_pretrained

        model = load_pretrained(name, build, overrides, weights, strict=strict)
    if include_preprocessing and not builtin:
        from zoo.pretrained import with_preprocessing

        report = getattr(model, "pretrained_report", None)
        model = with_preprocessing(model, cfg)
        if report is not None:
            model.pretrained_report = report
    return model


def _call_model_fn(entry: ModelEntry, overrides: dict[str, Any]):
    name = entry.name
    parameters = inspect.signature(entry.fn).parameters
    accepts_any = any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )
    if not accepts_any:
        unknown = sorted(set(overrides) - set(parameters))
        if unknown:
            raise ValueError(
                f"{name} does not take {', '.join(unknown)}. Valid "
                f"arguments: {', '.join(parameters)}"
            )
    try:
        inspect.signature(entry.fn).bind(**overrides)
    except TypeError as error:
        raise ValueError(f"{name}: {error}") from None
    try:
        return entry.fn(**overrides)
    except TypeError as error:
        # Through **kwargs, the Keras base class binds the rest: an
        # argument of the caller's it refuses is the caller's error; any
        # other TypeError is a bug and keeps its traceback.
        text = str(error)
        if not any(f"argument '{key}'" in text for key in overrides):
            raise
        raise ValueError(f"{name}: {error}") from None
