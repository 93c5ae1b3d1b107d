"""LiteRT and ONNX exports of every zoo family, run in their own runtimes
(ai-edge-litert, onnxruntime): float within 1e-4 of the largest output.

One small member per family at its conformance size (the family's other
members are built from the same blocks and convert the same way), and
each sequence model, whose members differ in their blocks (cells,
decoders, heads). All conversions of a group run in one child process:
a TensorFlow import and a SavedModel per model, not per file.
"""

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

import kerasblocks as kb
import zoo
from kerasblocks.io._conversion import convert_many
from kerasblocks.testing import random_inputs

IMAGE_FAMILIES = [
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
SEQUENCE_MODELS = [
    "rnn_lm",
    "lstm_lm",
    "gru_lm",  # bidirectional
    "seq2seq_gru",
    "seq2seq_attention",
    "transformer",
    "transformer_lm",
    "transformer_encoder_classifier",
]
# Recurrent models: LiteRT runs their loop only with a batch fixed at 1.
RECURRENT = {"rnn_lm", "lstm_lm", "gru_lm", "seq2seq_gru", "seq2seq_attention"}
# One child per group keeps a child's memory (the converter keeps some on
# every call) to a few models; the three big ones convert alone.
GROUPS = [
    SEQUENCE_MODELS + IMAGE_FAMILIES[:6],
    IMAGE_FAMILIES[6:12] + IMAGE_FAMILIES[15:],
    ["xception"],
    ["inceptionv3"],
    ["inception_resnet_v2"],
]
FORMATS = {"litert": "tflite", "onnx": "onnx"}


def test_every_family_is_listed():
    listed = IMAGE_FAMILIES + SEQUENCE_MODELS
    assert sorted(sum(GROUPS, [])) == sorted(listed)
    families = [zoo.get_model_entry(n).family for n in IMAGE_FAMILIES]
    assert len(set(families)) == len(families)
    assert {zoo.get_model_entry(n).family for n in listed} == {
        zoo.get_model_entry(n).family for n in zoo.list_models()
    }
    assert set(SEQUENCE_MODELS) == {
        n for n in zoo.list_models() if zoo.get_model_entry(n).task != "image"
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


def _case(name):
    """The model, its inputs (numpy) and the Keras outputs on them."""
    entry = zoo.get_model_entry(name)
    keras.utils.set_random_seed(0)
    model = zoo.create_model(name, **entry.test_overrides)
    _trained_like(model)
    if entry.task == "image":
        x = random_inputs((3, *model.input_shape[1:]), seed=1)
    else:
        # Token ids of two sequences, the second padded.
        x = entry.test_inputs(model)
    x = [np.asarray(v) for v in x] if isinstance(x, list) else np.asarray(x)
    return model, x, np.asarray(model(x, training=False))


def _convert_group(group, folder, results):
    """Converts `group` to both formats in one child; records
    {name: (inputs, reference, {format: path or ConversionError})}."""
    jobs, keys = [], []
    for name in group:
        model, x, reference = _case(name)
        results[name] = (x, reference, {})
        for kind, suffix in FORMATS.items():
            jobs.append((model, folder / f"{name}.{suffix}", kind, None, None))
            keys.append((name, kind))
    errors = convert_many(jobs)
    for (name, kind), job, error in zip(keys, jobs, errors, strict=True):
        results[name][2][kind] = error or job[1]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A function from a model's name to its case; a group converts when
    a test first asks for one of its models (`-k` converts only those)."""
    folder = tmp_path_factory.mktemp("deploy_formats")
    results = {}

    def case(name):
        if name not in results:
            group = next(g for g in GROUPS if name in g)
            _convert_group(group, folder, results)
        return results[name]

    return case


@pytest.mark.parametrize("name", IMAGE_FAMILIES + SEQUENCE_MODELS)
def test_litert_and_onnx_parity(name, converted):
    x, reference, files = converted(name)
    assert not any(isinstance(f, Exception) for f in files.values()), files
    scale = np.abs(reference).max()
    for out in (
        kb.io.run_litert(files["litert"], x),
        kb.io.run_onnx(files["onnx"], x),
    ):
        assert out.shape == reference.shape
        assert np.abs(out - reference).max() <= 1e-4 * scale
    # A recurrent model's LiteRT file takes one example of any length;
    # run_litert fed it the batch one example at a time.
    runner = Interpreter(model_path=str(files["litert"])).get_signature_runner()
    batch = 1 if name in RECURRENT else -1
    for detail in runner.get_input_details().values():
        assert detail["shape_signature"][0] == batch
        if zoo.get_model_entry(name).task != "image":
            assert list(detail["shape_signature"]) == [batch, -1]
