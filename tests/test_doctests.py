"""Every docstring example in the packages runs and prints what it says."""

import doctest
import importlib
import pkgutil

import pytest

import kerasblocks
import zoo


def _modules():
    names = []
    for package in (kerasblocks, zoo):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(
            package.__path__, f"{package.__name__}."
        ):
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.failed == 0, f"{result.failed} doctest example(s) failed"


def test_public_api_has_examples():
    """Each public name of kerasblocks has a docstring with an example."""
    missing = []
    for name in (
        "SequentialBlock",
        "Parallel",
        "Residual",
        "repeat",
        "Block",
        "materialize",
        "register",
    ):
        doc = getattr(kerasblocks, name).__doc__ or ""
        if ">>>" not in doc:
            missing.append(name)
    for module, names in (
        (
            kerasblocks.params,
            [
                "named_parameters",
                "parameter_table",
                "count_parameters",
                "apply_init",
            ],
        ),
        (
            kerasblocks.io,
            [
                "save_tensors",
                "save_weights",
                "save_model",
                "export_litert",
                "run_litert",
                "export_onnx",
                "run_onnx",
            ],
        ),
        (kerasblocks.devices, ["try_gpu", "variable_devices", "strategy"]),
        (
            kerasblocks.layers,
            [
                "MLP",
                "FixedHiddenMLP",
                "NestMLP",
                "CenteredLayer",
                "ScratchDense",
                "BatchNorm",
            ],
        ),
    ):
        for name in names:
            if ">>>" not in (getattr(module, name).__doc__ or ""):
                missing.append(f"{module.__name__}.{name}")
    assert not missing, f"no docstring example: {missing}"
