"""Weights files into zoo models: any head, any format Keras writes.

`load_pretrained` fills a zoo model from "imagenet" or a path. A file
written from a keras.applications model, in any format Keras writes
(the legacy HDF5 layer layout of keras.applications' own files, a
`.weights.h5`, a `.keras`, or an `.h5` from `model.save`), is read by
Keras into the keras.applications model the file describes, then ported
(`zoo.from_keras_applications`). Any other file (the zoo's own `.keras`,
`.h5`, `.weights.h5`, kerasblocks weights, SavedModel) is read by
`kerasblocks.io.load_weights`, by variable path.

A file with a classifier decides the class count unless `num_classes`
is given; a different `num_classes` (or `include_top=False`) gets a new
head, and the one-line report says so. A load that leaves a backbone
weight unloaded is an error unless `strict=False`.
"""

from __future__ import annotations

import functools
import logging
import os
import zipfile
from typing import Any

import h5py
import keras

import kerasblocks as kb
from kerasblocks._keras_compat import (
    legacy_h5_format,
    saving_lib,
    weights_layout,
)
from kerasblocks.io import keras_weights
from kerasblocks.io._specs import finalize_state
from kerasblocks.io.report import copy_variables
from zoo._weights_files import (
    canonical,
    is_legacy_layout,
    is_legacy_weights,
    is_zoo_model,
    layer_shapes,
    legacy_group,
    model_config,
)
from zoo.finetune import head_layer_names
from zoo.pretrained import (
    _IMAGENET_LAYOUT,
    _SHARED,
    _WIDTHS,
    PretrainedCfg,
    PretrainedWeightsError,
    _keras_application,
    keras_arguments,
    pretrained_cfg,
)

logger = logging.getLogger("zoo")

# How many names a report or an error shows before "...".
_SHOWN = 3


def _shown(names: list[str]) -> str:
    more = f", ... ({len(names)} in all)" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


# --- keras.applications files ------------------------------------------


def _reference(keras_application: str, input_size: tuple, widths: tuple):
    """A keras.applications model with its top (at the weights' size and
    width, no weights): its weighted layers' names, its classifier's
    name (the last of them), and its Keras 3 weights entries -> layer
    names."""
    # Keras builds in its global data format (the layer names and
    # weight shapes are the same in both).
    data_format = keras.config.image_data_format()
    return _reference_in(keras_application, input_size, widths, data_format)


@functools.lru_cache(maxsize=16)
def _reference_in(keras_application, input_size, widths, data_format):
    del data_format  # the cache's key: Keras's global at the call
    constructor = getattr(keras.applications, keras_application)
    keras_args = keras_arguments({"input_shape": input_size, **dict(widths)})
    model = constructor(weights=None, **keras_args)
    owner = {
        id(variable): layer.name
        for layer in model.layers
        for variable in layer.weights
    }
    entries = {
        entry: owner[id(next(iter(variables.values())))]
        for entry, variables in weights_layout(model).items()
    }
    names = tuple(layer.name for layer in model.layers if layer.weights)
    return names, names[-1], entries


def _applications_layout(
    cfg: PretrainedCfg | None, args: dict[str, Any], path: str
) -> tuple[bool, int | None] | None:
    """(has a classifier, its classes) when `path` holds the layers of
    the keras.applications model `cfg` names (with or without its top);
    None when it does not."""
    if cfg is None or not (
        keras_weights.is_keras_weights(path)
        or zipfile.is_zipfile(path)
        or is_legacy_layout(path)
    ):
        return None
    widths = tuple((k, args[k]) for k in _WIDTHS if k in args)
    names, classifier, entries = _reference(
        cfg.keras_application, cfg.input_size, widths
    )
    shapes = layer_shapes(path, entries)
    if not shapes:
        return None
    if sum(name in shapes for name in names) < len(names) // 2:
        # Layers Keras named by counting (`conv2d_7`) differ between
        # sessions: pair them by name without the counter, in order.
        names = canonical(names)
        classifier = names[-1]
        shapes = dict(zip(canonical(shapes), shapes.values(), strict=True))
    # Up to three top layers (VGG's fc1, fc2, predictions) may be absent.
    if sum(name in shapes for name in names) < 0.9 * (len(names) - 3):
        return None
    if classifier not in shapes:
        return False, None
    return True, int(shapes[classifier][0][-1])


def _read_into(name: str, keras_model: keras.Model, path: str) -> None:
    """Keras's own reading of `path` into `keras_model`: all or
    nothing, as `keras_model.load_weights(path)` does."""
    try:
        if keras_weights.is_keras_weights(path):
            kb.io.load_weights(keras_model, path)
        elif zipfile.is_zipfile(path):
            saving_lib.load_weights_only(keras_model, path)
        else:
            with h5py.File(path, "r") as f:
                legacy_h5_format.load_weights_from_hdf5_group(
                    legacy_group(f), keras_model
                )
    except ValueError as error:
        line = str(error).splitlines()[0][:300]
        raise PretrainedWeightsError(
            f"{name}: {path} does not fit keras.applications."
            f"{keras_model.name}: {line}"
        ) from None
    finalize_state(keras_model)


def _source_args(
    cfg: PretrainedCfg, args: dict[str, Any], has_top: bool, classes
) -> dict[str, Any]:
    """The keras.applications arguments (zoo names) of the model a file
    with (`has_top`, `classes`) was written from."""
    source = {k: args[k] for k in ("input_shape", *_WIDTHS) if k in args}
    source["include_top"] = has_top
    if has_top:
        # Keras takes a top only at the weights' own size; convolution
        # weights fit any size, so the backbone still transfers.
        source.update(input_shape=cfg.input_size, num_classes=classes)
    elif source.get("input_shape") is None:
        source["input_shape"] = cfg.input_size
    return source


def _architecture(ported: keras.Model) -> dict[str, Any]:
    """The weights decide the architecture (EfficientNet's ImageNet
    layout has an extra rescaling, for one); the caller's arguments
    decide the rest (head, input size, dtype, training options)."""
    return {
        k: v
        for k, v in ported.get_config().items()
        if k not in ("name", "trainable", "dtype", *_SHARED)
    }


# --- the zoo's own files -----------------------------------------------


def _own_classes(config: dict | None) -> int | None:
    """The classes of a zoo model's whole-model file, when it says."""
    inner = (config or {}).get("config", {})
    if inner.get("include_top", True) and "num_classes" in inner:
        return int(inner["num_classes"])
    return None


def _classes_of(report: kb.io.LoadReport) -> int | None:
    """The file's class count, when only its classifier's shape kept
    a load from being whole."""
    shapes = {path: stored for path, stored, _ in report.mismatched}
    kernel = shapes.get("predictions/kernel")
    if kernel is None or set(shapes) - {
        "predictions/kernel",
        "predictions/bias",
    }:
        return None
    return int(kernel[-1])


# --- loading -------------------------------------------------------------


def _layers_of(paths) -> list[str]:
    return sorted({p.rsplit("/", 1)[0] for p in paths})


def report_line(name: str, source: str, report: kb.io.LoadReport) -> str:
    """One short line: counts, then the first few layer names."""
    new = _layers_of(report.missing + [m[0] for m in report.mismatched])
    left = _layers_of(report.unexpected)
    total = len(report.loaded) + len(report.missing) + len(report.mismatched)
    return (
        f"{name}: loaded {len(report.loaded)} of {total} weights from "
        f"{source}"
        + (f"; new (not loaded): {_shown(new)}" if new else "")
        + (f"; unused from the file: {_shown(left)}" if left else "")
    )


def _check_backbone(name, source, model, report, strict) -> None:
    """Refuses a load that leaves a weight outside the head unloaded."""
    unloaded = report.missing + [m[0] for m in report.mismatched]
    if not unloaded:
        return
    head = set(head_layer_names(model))
    backbone = [p for p in unloaded if p.split("/", 1)[0] not in head]
    if backbone and strict:
        raise PretrainedWeightsError(
            f"{name}: {source} leaves {len(backbone)} backbone weights "
            f"unloaded ({_shown(backbone)}); pass strict=False "
            "(kb-train: --init_from_strict=false) to load what fits."
        )


def _finish(name, source, model, report, strict) -> keras.Model:
    if not report.loaded:
        raise PretrainedWeightsError(
            f"{name}: no weight of {source} fits this model ({report})"
        )
    _check_backbone(name, source, model, report, strict)
    line = report_line(name, source, report)
    (logger.info if report.ok else logger.warning)(line)
    model.pretrained_report = report
    return model


def _with_classes(args: dict[str, Any], classes: int | None) -> dict:
    """`args` with the file's class count unless the caller chose."""
    if classes is None or "num_classes" in args or "classes" in args:
        return args
    if not args.get("include_top", True) or args.get("features_only"):
        return args
    return {**args, "num_classes": classes}


def load_pretrained(
    name: str,
    build,
    args: dict[str, Any],
    weights: str,
    *,
    strict: bool = True,
) -> keras.Model:
    """Builds model `name` with `args` (through `build(**args)`) and
    fills it from `weights` ("imagenet" or a path); see the module
    docstring. The report is `model.pretrained_report` and one log line.
    """
    from zoo._porting import from_keras_applications

    cfg = pretrained_cfg(name)
    if weights == "imagenet":
        if cfg is None:
            raise PretrainedWeightsError(
                f"{name} has no keras.applications twin, so it has no "
                "imagenet weights; pass a .keras, .h5, .weights.h5 or "
                "SavedModel path."
            )
        has_top = bool(args.get("include_top", True)) and not args.get(
            "features_only"
        )
        source_args = _source_args(cfg, args, has_top, cfg.num_classes)
        keras_model = _keras_application(name, cfg, "imagenet", source_args)
        finalize_state(keras_model)
        ported = from_keras_applications(keras_model)
        # Keras adds EfficientNet's extra rescaling only when it loads
        # the ImageNet file by name, not by path (zoo.pretrained).
        layout = _IMAGENET_LAYOUT.get(cfg.keras_application, {})
        target = build(**{**_architecture(ported), **layout, **args})
        report = copy_variables(ported, target)
        return _finish(name, "imagenet", target, report, strict)
    path = os.fspath(weights)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{name}: no weights file or SavedModel at {path}"
        )
    config = model_config(path)
    own = config is not None and is_zoo_model(config)
    layout = None if own else _applications_layout(cfg, args, path)
    if layout is not None:
        has_top, classes = layout
        source_args = _source_args(cfg, args, has_top, classes)
        constructor = getattr(keras.applications, cfg.keras_application)
        keras_model = constructor(weights=None, **keras_arguments(source_args))
        _read_into(name, keras_model, path)
        ported = from_keras_applications(keras_model)
        args = _with_classes(args, classes)
        target = build(**{**_architecture(ported), **args})
        report = copy_variables(ported, target)
        return _finish(name, path, target, report, strict)
    if cfg is None and is_legacy_weights(path):
        raise PretrainedWeightsError(
            f"{name} has no keras.applications twin, so it has no "
            "keras.applications weights; pass a .keras, .h5, .weights.h5 "
            "or SavedModel path."
        )
    target = build(**_with_classes(args, _own_classes(config)))
    report = kb.io.load_weights(target, path, strict=False)
    classes = _classes_of(report)
    if _with_classes(args, classes) is not args and config is None:
        # The file's classifier has another class count, and the caller
        # did not choose one: the file decides.
        target = build(**_with_classes(args, classes))
        report = kb.io.load_weights(target, path, strict=False)
    return _finish(name, path, target, report, strict)
