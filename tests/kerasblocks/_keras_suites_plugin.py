"""A pytest plugin that routes Keras's public saving and export entry
points through `kerasblocks.io`, for running Keras's own test files.

Loaded with `-p tests.kerasblocks._keras_suites_plugin` by
`test_keras_suites.py`. The routing is thin: each entry point calls the
`kerasblocks.io` function of the same meaning with the caller's
arguments, and whatever it returns or raises is what the test sees;
nothing falls back to Keras. Without `KB_SUITES_ROUTE=1` nothing is
routed (the plain-Keras baseline). Each test's outcome is written as one
JSON line to the file named by `KB_SUITES_REPORT`.
"""

from __future__ import annotations

import json
import os
import types

import pytest

ROUTE = os.environ.get("KB_SUITES_ROUTE") == "1"


class _Proxy(types.ModuleType):
    def __init__(self, module, overrides):
        super().__init__(module.__name__)
        self.__dict__.update(overrides, _kb_module=module)

    def __getattr__(self, name):
        return getattr(self.__dict__["_kb_module"], name)

    def __setattr__(self, name, value):
        if name in self.__dict__:
            self.__dict__[name] = value
        else:
            setattr(self.__dict__["_kb_module"], name, value)

    def __delattr__(self, name):
        if name in self.__dict__:
            del self.__dict__[name]
        else:
            delattr(self.__dict__["_kb_module"], name)


def _routes():
    import keras
    from keras.src.export import saved_model as keras_saved_model
    from keras.src.saving import saving_api, saving_lib

    import kerasblocks.io as kbio

    model_export = keras.Model.export

    def save_model(model, filepath, *args, **kwargs):
        return kbio.save_model(model, filepath, *args, **kwargs)

    def load_model(filepath, *args, **kwargs):
        # A test that registers classes under a package is the user who
        # wrote them: the user trusts that package (kerasblocks.io loads
        # a registered class only from a trusted package).
        for name in keras.saving.get_custom_objects():
            package = name.split(">", 1)[0] if ">" in name else ""
            if package.isidentifier():
                kbio.register_trusted_package(package)
        return kbio.load_model(filepath, *args, **kwargs)

    def save_weights(model, filepath, *args, **kwargs):
        return kbio.save_weights(model, filepath, *args, **kwargs)

    def load_weights(model, filepath, *args, **kwargs):
        kbio.load_weights(model, filepath, *args, **kwargs)

    def export_saved_model(model, filepath, *args, **kwargs):
        return kbio.export_saved_model(model, filepath, *args, **kwargs)

    def method_export(self, filepath, format="tf_saved_model", **kwargs):
        if format != "tf_saved_model":  # not a format kerasblocks.io owns
            return model_export(self, filepath, format=format, **kwargs)
        return kbio.export_saved_model(self, filepath, **kwargs)

    def proxy(module, **overrides):
        """`module` with some functions replaced, for one test file;
        every other name (read, set or patched) is the module's own."""
        return _Proxy(module, overrides)

    modules = {
        "saving_lib": proxy(
            saving_lib,
            save_model=save_model,
            load_model=load_model,
            save_weights_only=save_weights,
            load_weights_only=load_weights,
        ),
        "saving_api": proxy(
            saving_api,
            save_model=save_model,
            load_model=load_model,
            save_weights=save_weights,
            load_weights=load_weights,
        ),
        "saved_model": proxy(
            keras_saved_model, export_saved_model=export_saved_model
        ),
    }
    methods = {
        "save": lambda self, filepath, *a, **k: save_model(
            self, filepath, *a, **k
        ),
        "save_weights": lambda self, filepath, *a, **k: save_weights(
            self, filepath, *a, **k
        ),
        "load_weights": lambda self, filepath, *a, **k: load_weights(
            self, filepath, *a, **k
        ),
        "export": method_export,
    }
    public = {"save_model": save_model, "load_model": load_model}
    return modules, methods, public


def pytest_configure(config):
    if not ROUTE:
        return
    import keras

    _, methods, public = _routes()
    for name, function in methods.items():
        setattr(keras.Model, name, function)
    for namespace in (keras.saving, keras.models):
        for name, function in public.items():
            setattr(namespace, name, function)


def pytest_collection_modifyitems(session, config, items):
    if not ROUTE:
        return
    modules, _, _ = _routes()
    seen = set()
    for item in items:
        module = getattr(item, "module", None)
        if module is None or id(module) in seen:
            continue
        seen.add(id(module))
        for name, view in modules.items():
            if isinstance(getattr(module, name, None), types.ModuleType):
                setattr(module, name, view)


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report):
    path = os.environ.get("KB_SUITES_REPORT")
    if not path:
        return
    outcome = None
    if report.when == "call":
        outcome = report.outcome
    elif report.outcome == "skipped":
        outcome = "skipped"
    elif report.outcome == "failed":
        outcome = "error"
    if outcome is None:
        return
    message = ""
    if report.outcome == "failed" and report.longrepr is not None:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash else str(report.longrepr)[-300:]
    with open(path, "a") as f:
        f.write(
            json.dumps(
                {
                    "test": report.nodeid.split("::", 1)[-1],
                    "file": os.path.basename(report.nodeid.split("::")[0]),
                    "outcome": outcome,
                    "message": message.splitlines()[0][:300] if message else "",
                }
            )
            + "\n"
        )
