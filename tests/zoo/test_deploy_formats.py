"""LiteRT and ONNX exports of the vision zoo, run in their own runtimes
(ai-edge-litert, onnxruntime): float within 1e-4 of the largest output.

One small member per family at its conformance size (the family's other
members are built from the same blocks and convert the same way). Both
formats of a family convert in one child process.
"""

import keras
import numpy as np
import pytest

import kerasblocks as kb
import zoo
from kerasblocks.io._conversion import convert_many
from kerasblocks.testing import random_inputs

FAMILIES = [
    "lenet_bn",
    "alexnet",
    "vgg11",
    "nin",
    "googlenet",
    "resnet18",
    "densenet",
    "regnety_002",
    "mobilenetv2",
    "mobilenetv3_small",
    "convnext_tiny",
    "vit_tiny16",
    "xception",
    "inceptionv3",
    "inception_resnet_v2",
    "efficientnet_b0",
    "efficientnetv2_b0",
    "nasnet_mobile",
]


def test_every_image_family_is_listed():
    families = [zoo.get_model_entry(n).family for n in FAMILIES]
    assert len(set(families)) == len(families)
    assert set(families) == {
        zoo.get_model_entry(n).family
        for n in zoo.list_models()
        if zoo.get_model_entry(n).task == "image"
    }


def _trained_like(model):
    """Every weight (batch-norm statistics included) moved off its
    initial value, as training would."""
    rng = np.random.default_rng(3)
    for variable in model.weights:
        value = np.asarray(variable)
        if value.dtype.kind != "f":
            continue
        if "moving_variance" in variable.path:
            value = value * rng.uniform(0.5, 1.5, value.shape)
        else:
            value = value + 0.02 * rng.standard_normal(value.shape)
        variable.assign(value.astype(variable.dtype))


@pytest.mark.parametrize("name", FAMILIES)
def test_litert_and_onnx_parity(name, tmp_path):
    entry = zoo.get_model_entry(name)
    keras.utils.set_random_seed(0)
    model = zoo.create_model(name, **entry.test_overrides)
    _trained_like(model)
    x = np.asarray(random_inputs((3, *model.input_shape[1:]), seed=1))
    reference = np.asarray(model(x, training=False))
    paths = {k: tmp_path / f"{name}.{k}" for k in ("tflite", "onnx")}
    errors = convert_many(
        [
            (model, paths["tflite"], "litert", None, None),
            (model, paths["onnx"], "onnx", None, None),
        ]
    )
    assert errors == [None, None]
    scale = np.abs(reference).max()
    for out in (
        kb.io.run_litert(paths["tflite"], x),
        kb.io.run_onnx(paths["onnx"], x),
    ):
        assert out.shape == reference.shape
        assert np.abs(out - reference).max() <= 1e-4 * scale
