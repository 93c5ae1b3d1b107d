"""TFLite export of the vision zoo: the interpreter gives Keras's outputs.

One model per family at its conformance size (the deeper siblings are
built from the same blocks and convert the same way).
"""

import keras
import numpy as np
import pytest

import kerasblocks as kb
import zoo
from kerasblocks.testing import random_inputs

FAMILIES = [
    "lenet_bn",
    "alexnet",
    "vgg11",
    "nin",
    "googlenet",
    "resnet18",
    "resnet50v2",
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
    families = {
        zoo.get_model_entry(n).family
        for n in zoo.list_models()
        if zoo.get_model_entry(n).task == "image"
    }
    covered = {zoo.get_model_entry(n).family for n in FAMILIES}
    assert families == covered


@pytest.mark.parametrize("name", FAMILIES)
def test_tflite_parity(name, tmp_path):
    entry = zoo.get_model_entry(name)
    keras.utils.set_random_seed(0)
    model = zoo.create_model(name, **entry.test_overrides)
    x = np.asarray(random_inputs((3, *model.input_shape[1:]), seed=1))
    path = tmp_path / f"{name}.tflite"
    kb.io.export_tflite(model, path)
    out = kb.io.run_tflite(path, x)
    np.testing.assert_allclose(
        out, model(x, training=False), atol=1e-4, rtol=1e-3
    )
