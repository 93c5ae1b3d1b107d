"""A pytest plugin that routes keras.applications' constructors to the
zoo's twins, for running Keras's own `applications_test.py`.

Loaded with `-p tests.zoo._applications_suite_plugin` by
`test_keras_applications_suite.py`. With `ZOO_APPS_ROUTE=1`, every
keras.applications constructor that has a zoo twin (the registry's
`pretrained_cfg.keras_application`) is replaced, in the
`keras.src.applications` modules the test file imports, by a thin
callable of the same `__name__` that calls `zoo.create_model(twin,
**kwargs)`. The replacement lasts while the test file is collected (its
`MODEL_LIST` is built at import), so nothing else in the process sees
it. Without `ZOO_APPS_ROUTE=1` nothing is routed (the plain-Keras
baseline). Outcomes are reported by `tests.kerasblocks.
_keras_suites_plugin` (load it too, with `KB_SUITES_REPORT`).
"""

from __future__ import annotations

import importlib
import os

ROUTE = os.environ.get("ZOO_APPS_ROUTE") == "1"
# The keras.applications modules the test file takes constructors from.
MODULES = (
    "convnext",
    "densenet",
    "efficientnet",
    "efficientnet_v2",
    "inception_resnet_v2",
    "inception_v3",
    "mobilenet",
    "mobilenet_v2",
    "mobilenet_v3",
    "nasnet",
    "resnet",
    "resnet_v2",
    "vgg16",
    "vgg19",
    "xception",
)
_SAVED: list[tuple[object, str, object]] = []


def twins() -> dict[str, str]:
    """keras.applications constructor name -> zoo model name."""
    import zoo

    found = {}
    for name in zoo.list_models():
        cfg = zoo.get_model_entry(name).pretrained_cfg
        if cfg is not None:
            found[cfg.keras_application] = name
    return found


def _twin(keras_name: str, zoo_name: str):
    import zoo

    def constructor(**kwargs):
        return zoo.create_model(zoo_name, **kwargs)

    constructor.__name__ = constructor.__qualname__ = keras_name
    return constructor


def pytest_configure(config):
    if not ROUTE:
        return
    routes = twins()
    for module_name in MODULES:
        module = importlib.import_module(
            f"keras.src.applications.{module_name}"
        )
        for keras_name, zoo_name in routes.items():
            if hasattr(module, keras_name):
                _SAVED.append((module, keras_name, getattr(module, keras_name)))
                setattr(module, keras_name, _twin(keras_name, zoo_name))


def pytest_collection_finish(session):
    while _SAVED:
        module, name, original = _SAVED.pop()
        setattr(module, name, original)
