"""One conformance suite over the whole registry.

Parametrized over `zoo.list_models()`, so a newly registered model is
tested without editing this file. Each model is built with its entry's
`test_overrides` (a small input) and run through the shared harness:
output shape and finiteness, config round trip, eager vs tf.function vs
forced XLA, `.keras` and `.h5` round trips with no custom_objects, and a
training step that moves every trainable variable. Parameter counts at
the default configuration must equal `tests/goldens/param_counts.json`.
"""

import json
import os

import keras
import numpy as np
import pytest

import kerasblocks as kb
import zoo
from kerasblocks.compile import compile_forward
from kerasblocks.testing import random_inputs, run_layer_test

GOLDENS = os.path.join(os.path.dirname(__file__), "..", "goldens")
PARAM_COUNTS = os.path.join(GOLDENS, "param_counts.json")
MODELS = zoo.list_models()
# Deep siblings whose classes a smaller registered model already takes
# through the full harness get the light check below instead.
FULL = [n for n in MODELS if zoo.get_model_entry(n).test_covered_by is None]
COVERED = [n for n in MODELS if n not in FULL]


def _inputs_for(entry, model):
    if entry.test_inputs is not None:
        return entry.test_inputs(model)
    shape = (2, *model.input_shape[1:])
    return random_inputs(shape, seed=0)


@pytest.mark.parametrize("name", FULL)
def test_model_conformance(name):
    entry = zoo.get_model_entry(name)
    keras.utils.set_random_seed(0)
    model = zoo.create_model(name, **entry.test_overrides)
    inputs = _inputs_for(entry, model)
    expected = keras.tree.map_shape_structure(
        lambda s: (2, *s[1:]), model.output_shape
    )
    result = run_layer_test(
        model,
        inputs,
        expected_output_shape=expected,
        expected_output_dtype="float32",
        atol=entry.test_tolerance,
        rtol=entry.test_tolerance,
        allow_no_gradient=entry.test_allow_no_gradient,
        # Plain Keras reloads the .keras file; the legacy .h5 is reloaded
        # by kerasblocks.io (plain Keras's .h5 path is covered by the
        # block suite), which keeps the deepest models within budget.
        plain_keras=("keras",),
    )
    assert result.max_parity_error["xla"] <= entry.test_tolerance * 10
    # Zero retraces across batch sizes once compiled.
    forward = compile_forward(model, mode="graph")
    for n in (1, 7, 32):
        batch = keras.tree.map_structure(
            lambda t, n=n: np.resize(np.asarray(t), (n, *t.shape[1:])), inputs
        )
        assert forward(batch).shape[0] == n
    assert forward.trace_count == 1
    # The config round trip rebuilt the same architecture, layer by layer.
    assert type(result.clone) is type(model)
    assert [layer.name for layer in result.clone.layers] == [
        layer.name for layer in model.layers
    ]


@pytest.mark.parametrize("name", COVERED)
def test_covered_model_light_check(name):
    """A deep sibling: the same class as a fully tested model (whose
    harness covers the config round trip, saving, XLA and training), so
    building it and a forward pass (shape, finite) suffice; its
    parameter count has its own golden below."""
    entry = zoo.get_model_entry(name)
    sibling = zoo.get_model_entry(entry.test_covered_by)
    assert sibling.test_covered_by is None, (
        f"{name} is covered by {sibling.name}, which is itself covered"
    )
    assert sibling.family == entry.family
    keras.utils.set_random_seed(0)
    model = zoo.create_model(name, **entry.test_overrides)
    reference = zoo.create_model(sibling.name, **sibling.test_overrides)
    assert type(model) is type(reference)
    inputs = _inputs_for(entry, model)
    outputs = model(inputs, training=False)
    expected = keras.tree.map_shape_structure(
        lambda s: (2, *s[1:]), model.output_shape
    )
    assert keras.tree.map_structure(lambda t: tuple(t.shape), outputs) == (
        expected
    )
    assert all(
        np.all(np.isfinite(np.asarray(t))) for t in keras.tree.flatten(outputs)
    )


def _load_goldens():
    with open(PARAM_COUNTS) as f:
        return json.load(f)


@pytest.mark.parametrize("name", MODELS)
def test_param_count_matches_golden(name):
    goldens = _load_goldens()
    model = zoo.create_model(name)
    count = kb.params.count_parameters(model)
    if os.environ.get("KB_UPDATE_GOLDENS") == "1":
        # Update mode only writes: a count compared with what was just
        # written could never fail. Review the diff, then rerun.
        goldens[name] = count
        with open(PARAM_COUNTS, "w") as f:
            json.dump(dict(sorted(goldens.items())), f, indent=1)
            f.write("\n")
        return
    assert name in goldens, (
        f"no golden parameter count for {name}; it has {count}. Run "
        "KB_UPDATE_GOLDENS=1 python -m pytest tests/zoo -k golden and "
        "review the diff."
    )
    assert count == goldens[name]


def test_goldens_have_no_stale_names():
    stale = sorted(set(_load_goldens()) - set(MODELS))
    assert not stale, f"goldens for unregistered models: {stale}"


IMAGE_MODELS = [n for n in FULL if zoo.get_model_entry(n).task == "image"]


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_image_model_options(name):
    """include_top / pooling / features_only have keras.applications'
    meanings for every image model."""
    entry = zoo.get_model_entry(name)
    args = dict(entry.test_overrides)
    base = zoo.create_model(name, **args, include_top=False)
    x = random_inputs((1, *base.input_shape[1:]), seed=1)
    pooled = zoo.create_model(name, **args, include_top=False, pooling="avg")
    maxed = zoo.create_model(name, **args, include_top=False, pooling="max")
    features = zoo.create_model(name, **args, features_only=True)
    assert len(base.output_shape) == 4
    channels = base.output_shape[-1]
    assert pooled.output_shape == (None, channels)
    assert maxed.output_shape == (None, channels)
    outs = features(x)
    assert len(outs) == len(features.feature_info) >= 2
    for out, info in zip(outs, features.feature_info, strict=True):
        assert out.shape[-1] == info.channels
        assert 1 <= out.shape[1] <= -(-x.shape[1] // info.stride)
    strides = [info.stride for info in features.feature_info]
    assert strides == sorted(strides)
    assert np.all(np.isfinite(outs[-1]))
