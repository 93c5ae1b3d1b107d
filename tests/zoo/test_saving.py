"""Every registered model through every save format, and served by plain
TensorFlow in a process that never imports this project.

(`.keras` and `.h5` round trips of every model are in the conformance
suite; this adds weights files, SavedModel -> Keras -> one training step
-> save again, and the fresh-process serving check.)

The deepest variants of a family are left to their smaller siblings,
which are built by the same class from the same blocks and exercise the
same saving code: each costs 25-40 s here and the suite must stay within
its time budget on 2 cores.
"""

import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb
import zoo
from kerasblocks.compile import compile_train_step
from kerasblocks.testing import random_inputs
from tests.tools._cli import run_python

# Deep siblings (resnet152 of resnet50, ...) are built from the classes
# their registered smaller sibling takes through this cycle.
MODELS = [
    n
    for n in zoo.list_models()
    if zoo.get_model_entry(n).test_covered_by is None
]


def _inputs(entry, model):
    if entry.test_inputs is not None:
        return entry.test_inputs(model)
    return random_inputs((2, *model.input_shape[1:]), seed=0)


def _labels(model, inputs):
    outputs = model(inputs, training=False)
    return np.zeros(outputs.shape[:-1], "int32")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Directory holding each model's SavedModel and its expected outputs;
    filled by the per-model test, served by the fresh-process test."""
    return tmp_path_factory.mktemp("exports")


@pytest.mark.parametrize("name", MODELS)
def test_weights_and_saved_model_cycle(name, exports):
    entry = zoo.get_model_entry(name)
    keras.utils.set_random_seed(0)
    model = zoo.create_model(name, **entry.test_overrides)
    inputs = _inputs(entry, model)
    expected = model(inputs, training=False)
    weights = exports / f"{name}.weights"
    kb.io.save_weights(model, weights)
    twin = zoo.create_model(name, **entry.test_overrides)
    assert kb.io.load_weights(twin, weights).ok
    np.testing.assert_allclose(
        twin(inputs, training=False), expected, rtol=1e-5, atol=1e-6
    )
    directory = exports / name
    kb.io.export_saved_model(model, directory)
    restored = kb.io.load_model(directory)
    assert type(restored) is type(model)
    assert restored.get_config() == model.get_config()
    np.testing.assert_allclose(
        restored(inputs, training=False), expected, rtol=1e-5, atol=1e-6
    )
    # Eager: the restored variables train. (A graph step traced the
    # gradient of every model once more, most of this test's time; the
    # conformance suite runs each model's forward pass in graph and XLA
    # and its gradients eagerly, and kb-train's tests train in graph.)
    step = compile_train_step(
        restored,
        keras.optimizers.SGD(1e-3),
        keras.losses.SparseCategoricalCrossentropy(),
        mode="eager",
    )
    before = [w.numpy().copy() for w in restored.trainable_weights]
    loss = step(inputs, _labels(restored, inputs))["loss"]
    assert np.isfinite(loss)
    assert any(
        not np.array_equal(a, w.numpy())
        for a, w in zip(before, restored.trainable_weights, strict=True)
    )
    again = exports / f"{name}.keras"
    kb.io.save_model(restored, again)
    np.testing.assert_allclose(
        kb.io.load_model(again)(inputs, training=False),
        restored(inputs, training=False),
        rtol=1e-5,
        atol=1e-6,
    )
    flat = tf.nest.flatten(inputs)
    np.savez(exports / f"{name}.npz", *[np.asarray(t) for t in flat])
    np.save(exports / f"{name}.expected.npy", np.asarray(expected))


def test_plain_tensorflow_serves_every_export(exports):
    """One fresh process, no kerasblocks/zoo import, all exports."""
    names = [n for n in MODELS if (exports / n).is_dir()]
    assert names == MODELS, "run with the per-model tests"
    script = textwrap.dedent(
        """
        import json, sys
        import numpy as np
        import tensorflow as tf

        root, names = sys.argv[1], json.loads(sys.argv[2])
        worst = {}
        for name in names:
            serve = tf.saved_model.load(f"{root}/{name}").signatures[
                "serving_default"
            ]
            arrays = np.load(f"{root}/{name}.npz")
            keys = sorted(serve.structured_input_signature[1])
            feeds = {
                k: tf.constant(arrays[f"arr_{i}"]) for i, k in enumerate(keys)
            }
            (out,) = serve(**feeds).values()
            expected = np.load(f"{root}/{name}.expected.npy")
            worst[name] = float(np.max(np.abs(out.numpy() - expected)))
        ours = [
            m for m in sys.modules if m.split(".")[0] in ("kerasblocks", "zoo")
        ]
        print(json.dumps({"worst": worst, "imported": ours}))
        """
    )
    import json

    done = run_python(
        "-c",
        script,
        str(exports),
        json.dumps(names),
        timeout=1200,
        env={"PYTHONPATH": ""},
        cwd=str(exports),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["imported"] == []
    for name, worst in result["worst"].items():
        assert worst <= 1e-4, (name, worst)


def test_h5_of_a_wrapped_model_with_a_frozen_backbone_reloads(tmp_path):
    """A fine-tuned run's export: a zoo model inside a wrapper, its
    backbone frozen. Keras's legacy writer lists a layer's trainable
    weights first, and the rebuilt model (every layer trainable) read
    the head's kernel into the first convolution."""
    inner = zoo.create_model("lenet_bn")
    for layer in inner.layers[:-1]:
        layer.trainable = False
    x = keras.Input((28, 28, 1))
    model = keras.Model(x, inner(x))
    rng = np.random.default_rng(0)
    for variable in model.weights:
        variable.assign(rng.uniform(0.5, 1.5, variable.shape))
    path = str(tmp_path / "model.h5")
    kb.io.save_model(model, path)
    reloaded = kb.io.load_model(path, compile=False)
    images = rng.uniform(0, 1, (2, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(model(images), reloaded(images))
    # The model that was saved keeps its frozen layers.
    assert [layer.trainable for layer in inner.layers[-3:]] == [
        False,
        False,
        True,
    ]
