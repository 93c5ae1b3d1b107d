"""The Keras boundary: every private Keras name lives in one module.

A Keras upgrade is reviewed by reading `kerasblocks/_keras_compat.py`;
this test lists what it holds, and fails when a `keras.src` import or a
read of a private attribute of Keras's layers and models appears
anywhere else in the project.
"""

from __future__ import annotations

import importlib
import pathlib
import re

import keras

from kerasblocks import _keras_compat

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_every_listed_keras_name_exists():
    assert keras.__version__.startswith("3.15.")
    assert set(_keras_compat.MODULES) == set(_keras_compat.ATTRIBUTES)
    for alias, module_name in _keras_compat.MODULES.items():
        module = importlib.import_module(module_name)
        assert getattr(_keras_compat, alias) is module
        for attribute in _keras_compat.ATTRIBUTES[alias]:
            assert hasattr(module, attribute), f"{module_name}.{attribute}"
    assert sorted(_keras_compat.MODULES) == [
        "backend",
        "backend_config",
        "export_lib",
        "export_utils",
        "file_utils",
        "io_utils",
        "legacy_h5_format",
        "legacy_json_utils",
        "legacy_saving_options",
        "legacy_saving_utils",
        "models_functional",
        "naming",
        "saving_api",
        "saving_lib",
        "serialization_lib",
        "tf2onnx_lib",
    ]


def _project_lines():
    """`("path:line", text)` of every source line outside the compat
    module."""
    for package in ("kerasblocks", "zoo", "tools"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "_keras_compat.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                yield f"{path.relative_to(ROOT)}:{number}", line


def test_keras_src_is_imported_only_by_the_compat_module():
    pattern = re.compile(
        r"^\s*(from|import)\s+keras\.src\b|(?<![\"'\w.])keras\.src\.\w"
    )
    offenders = [
        where for where, line in _project_lines() if pattern.search(line)
    ]
    assert offenders == []


def _keras_objects():
    inputs = keras.Input((2,))
    dense = keras.layers.Dense(1)
    return (
        keras.Model(inputs, dense(inputs)),
        dense,
        keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]),
    )


def test_private_keras_attributes_are_read_only_by_the_compat_module():
    # A private name (`._x` or "_x") that Keras's layers and models have
    # is Keras's; our own private names are not on them.
    objects = _keras_objects()
    pattern = re.compile(r"\.(_[a-z]\w*)\b|[\"'](_[a-z]\w*)[\"']")
    offenders = [
        f"{where} {dotted or quoted}"
        for where, line in _project_lines()
        for dotted, quoted in pattern.findall(line)
        if any(hasattr(o, dotted or quoted) for o in objects)
    ]
    assert offenders == []
    # The compat module's list is what it reads, and each still exists.
    source = (ROOT / "kerasblocks" / "_keras_compat.py").read_text()
    read = {
        dotted or quoted
        for dotted, quoted in pattern.findall(source)
        if any(hasattr(o, dotted or quoted) for o in objects)
    }
    assert read == set(_keras_compat.PRIVATE_ATTRIBUTES)
    for name in _keras_compat.PRIVATE_ATTRIBUTES:
        assert any(hasattr(o, name) for o in objects), name
    assert _keras_compat.flatten_layers(objects[0], include_self=False) == [
        objects[0].layers[0],
        objects[1],
    ]
    assert _keras_compat.call_has_training_arg(keras.layers.Dropout(0.5))
    assert not _keras_compat.was_called(keras.layers.Dense(1))
    assert _keras_compat.inbound_nodes(objects[1])[0].operation is objects[1]
