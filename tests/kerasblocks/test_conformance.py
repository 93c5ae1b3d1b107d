"""Every registered block through the shared harness, plus coverage.

Adding a block: register it, then add a `BlockSpec` to a `specs_*.py`
file in this directory (or excuse it there, with the reason).
"""

import glob
import importlib.util
import os

import pytest

import kerasblocks as kb
import zoo  # noqa: F401  (registers the zoo's classes)
from kerasblocks.testing import run_layer_test


def _load_spec_modules():
    here = os.path.dirname(__file__)
    specs, excused = {}, {}
    for path in sorted(glob.glob(os.path.join(here, "specs_*.py"))):
        name = f"_kb_specs_{os.path.basename(path)[:-3]}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        for key in module.SPECS:
            assert key not in specs, f"{key} has two specs"
        specs.update(module.SPECS)
        excused.update(getattr(module, "EXCUSED", {}))
    return specs, excused


SPECS, EXCUSED = _load_spec_modules()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_block_conformance(name):
    spec = SPECS[name]
    result = run_layer_test(
        spec.factory,
        input_shape=spec.input_shape,
        input_dtype=spec.input_dtype,
        expected_output_shape=spec.output_shape,
        atol=spec.atol,
        rtol=spec.atol,
        allow_no_gradient=spec.allow_no_gradient,
    )
    registered = kb.registered_objects()[name]
    assert isinstance(result.layer, registered)


def _is_zoo_model(obj) -> bool:
    return isinstance(obj, type) and issubclass(obj, zoo.ImageModel)


def test_every_registered_object_is_tested_or_excused():
    # The project's own packages; tests and doctests register others.
    registered = {
        **kb.registered_objects("kerasblocks"),
        **kb.registered_objects("zoo"),
    }
    missing = sorted(
        name
        for name, obj in registered.items()
        if name not in SPECS and name not in EXCUSED and not _is_zoo_model(obj)
    )
    assert not missing, f"registered but neither tested nor excused: {missing}"
    stale = sorted(set(SPECS) - set(registered))
    assert not stale, f"specs for names that are not registered: {stale}"
