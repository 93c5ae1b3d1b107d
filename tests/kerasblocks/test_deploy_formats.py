"""LiteRT and ONNX exports of users' models, run in their own runtimes.

Parity is float within 1e-4 relative to the largest output; int8 is
checked on a CNN this test trains on the bundled digits: agreement and
accuracy on held-out images, and that the file is full-integer (its
tensors' dtypes).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from sklearn.datasets import load_digits

import kerasblocks as kb
from kerasblocks.io._conversion import convert_many


def _relative_error(out, reference) -> float:
    reference = np.asarray(reference)
    return float(np.abs(out - reference).max() / np.abs(reference).max())


def _user_model():
    """Dict inputs, Rescaling and an adapted Normalization inside."""
    rng = np.random.default_rng(0)
    image = keras.Input((12, 12, 3), name="image")
    extra = keras.Input((5,), name="extra")
    normalize = keras.layers.Normalization(name="norm")
    statistics = rng.normal(3.0, 2.0, (64, 5)).astype("float32")
    normalize.adapt(statistics)
    x = keras.layers.Rescaling(1 / 255, name="scale")(image)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Concatenate(name="join")([x, normalize(extra)])
    out = keras.layers.Dense(3, activation="softmax", name="head")(x)
    keras.utils.set_random_seed(1)
    model = keras.Model({"image": image, "extra": extra}, out)
    inputs = {
        "image": rng.uniform(0, 255, (4, 12, 12, 3)).astype("float32"),
        "extra": rng.normal(3.0, 2.0, (4, 5)).astype("float32"),
    }
    return model, inputs, statistics


def _recurrent_model():
    """Keras's own LSTM and bidirectional GRU over masked token ids."""
    keras.utils.set_random_seed(4)
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(9, 6, mask_zero=True, name="embed")(tokens)
    x = keras.layers.LSTM(8, return_sequences=True, name="lstm")(x)
    x = keras.layers.Bidirectional(keras.layers.GRU(5), name="bigru")(x)
    model = keras.Model(tokens, keras.layers.Dense(3, name="head")(x))
    rng = np.random.default_rng(5)
    for variable in model.weights:  # biases too, as training leaves them
        value = np.asarray(variable)
        variable.assign(value + 0.1 * rng.standard_normal(value.shape))
    ids = rng.integers(1, 9, (3, 7)).astype("int32")
    ids[1, 4:] = 0  # padding, masked
    return model, ids


def test_user_models_with_preprocessing_dict_inputs_and_rnns(tmp_path):
    model, inputs, statistics = _user_model()
    # The adapted statistics are the model's, not a fresh layer's.
    np.testing.assert_allclose(
        model.get_layer("norm").mean.numpy()[0], statistics.mean(0), rtol=1e-5
    )
    recurrent, ids = _recurrent_model()
    # Four files, one child process.
    errors = convert_many(
        [
            (model, tmp_path / "user.tflite", "litert", None, None),
            (model, tmp_path / "user.onnx", "onnx", None, None),
            (recurrent, tmp_path / "rnn.tflite", "litert", None, None),
            (recurrent, tmp_path / "rnn.onnx", "onnx", None, None),
        ]
    )
    assert errors == [None] * 4
    reference = model(inputs)
    litert = kb.io.run_litert(tmp_path / "user.tflite", inputs)
    onnx = kb.io.run_onnx(tmp_path / "user.onnx", inputs)
    assert litert.shape == onnx.shape == (4, 3)
    assert _relative_error(litert, reference) < 1e-4
    assert _relative_error(onnx, reference) < 1e-4
    # A list in the model's input order (Keras's: dict keys sorted)
    # feeds the same files.
    ordered = [inputs["extra"], inputs["image"]]
    np.testing.assert_array_equal(
        kb.io.run_litert(tmp_path / "user.tflite", ordered), litert
    )
    np.testing.assert_array_equal(
        kb.io.run_onnx(tmp_path / "user.onnx", ordered), onnx
    )
    with pytest.raises(ValueError, match=r"missing \['extra'\]"):
        kb.io.run_onnx(tmp_path / "user.onnx", {"image": inputs["image"]})
    # The recurrent model's LiteRT file takes one sequence of any length
    # per call; run_litert runs a batch one sequence at a time.
    reference = np.asarray(recurrent(ids))
    assert reference.shape == (3, 3)
    for out in (
        kb.io.run_litert(tmp_path / "rnn.tflite", ids),
        kb.io.run_onnx(tmp_path / "rnn.onnx", ids),
    ):
        assert _relative_error(out, reference) < 1e-4
    (detail,) = (
        Interpreter(model_path=str(tmp_path / "rnn.tflite"))
        .get_signature_runner()
        .get_input_details()
        .values()
    )
    assert list(detail["shape_signature"]) == [1, -1]


@keras.saving.register_keras_serializable(package="test_deploy")
class SingularValues(keras.layers.Layer):
    """Needs an SVD: neither LiteRT's builtins nor ONNX have one."""

    def call(self, x):
        return keras.ops.svd(x, compute_uv=False)


def test_unconvertible_model_names_op_and_layer(tmp_path):
    inputs = keras.Input((4, 4), name="matrix")
    out = SingularValues(name="spectrum")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(out))
    path = tmp_path / "model.tflite"
    path.write_bytes(b"previous export")
    with pytest.raises(kb.io.ConversionError) as caught:
        kb.io.export_litert(model, path)
    message = str(caught.value)
    assert "\n" not in message
    assert "LiteRT" in message and "Svd" in message
    assert "'spectrum'" in message
    assert path.read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]


def test_a_failed_conversion_leaves_the_next_jobs_alone(tmp_path):
    inputs = keras.Input((4, 4), name="matrix")
    out = SingularValues(name="spectrum")(inputs)
    failing = keras.Model(inputs, keras.layers.Dense(2, name="head")(out))
    keras.utils.set_random_seed(3)
    fine = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    # The child that failed stops; a fresh one converts the next job.
    errors = convert_many(
        [
            (failing, tmp_path / "svd.onnx", "onnx", None, None),
            (fine, tmp_path / "fine.tflite", "litert", None, None),
        ]
    )
    message = str(errors[0])
    assert "\n" not in message
    assert "ONNX" in message and "Svd" in message and "'spectrum'" in message
    assert errors[1] is None
    x = np.random.default_rng(0).normal(size=(2, 3)).astype("float32")
    out = kb.io.run_litert(tmp_path / "fine.tflite", x)
    assert _relative_error(out, fine(x)) < 1e-4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fine.tflite"]


def _digits():
    digits = load_digits()
    x = digits.images[..., None].astype("float32")  # pixels 0-16
    y = digits.target.astype("int64")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


def _trained_cnn():
    (x, y), validation = _digits()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1), name="images")
    h = keras.layers.Rescaling(1 / 16, name="scale")(inputs)
    h = keras.layers.Conv2D(16, 3, padding="same", name="conv1")(h)
    h = keras.layers.BatchNormalization(name="bn1")(h)
    h = keras.layers.ReLU(name="relu1")(h)
    h = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(h)
    h = keras.layers.Conv2D(16, 1, activation="relu", name="pw")(h)
    h = keras.layers.Flatten(name="flat")(h)
    out = keras.layers.Dense(10, activation="softmax", name="head")(h)
    model = keras.Model(inputs, out)
    model.compile(
        "adam", "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(x, y, batch_size=64, epochs=12, verbose=0)
    return model, (x, y), validation


def test_int8_is_full_integer_and_agrees_on_a_trained_cnn(tmp_path):
    model, (x, y), (x_val, y_val) = _trained_cnn()
    calibration = tf.data.Dataset.from_tensor_slices((x[:300], y[:300]))
    path = tmp_path / "digits_int8.tflite"
    kb.io.export_litert(
        model, path, quantize="int8", calibration=calibration.batch(32)
    )
    interpreter = Interpreter(model_path=str(path))
    (entry,) = interpreter.get_input_details()
    (exit_,) = interpreter.get_output_details()
    assert entry["dtype"] == np.int8 and exit_["dtype"] == np.int8
    assert entry["quantization"][0] > 0 and exit_["quantization"][0] > 0
    dtypes = {t["dtype"] for t in interpreter.get_tensor_details()}
    # Full-integer: int8 activations and weights, int32 biases only.
    assert dtypes <= {np.int8, np.int32}, dtypes
    reference = np.asarray(model.predict(x_val, verbose=0))
    quantized = kb.io.run_litert(path, x_val)
    assert quantized.dtype == np.float32
    agreement = np.mean(quantized.argmax(1) == reference.argmax(1))
    keras_accuracy = np.mean(reference.argmax(1) == y_val)
    int8_accuracy = np.mean(quantized.argmax(1) == y_val)
    assert keras_accuracy > 0.9
    assert agreement >= 0.98
    assert int8_accuracy >= keras_accuracy - 0.02


def test_float16_and_dynamic_int8_keep_float_inputs(tmp_path):
    # Weights of 1024 elements or fewer stay float in both modes.
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.Input((40,), name="x"),
            keras.layers.Dense(64, activation="relu", name="hidden"),
            keras.layers.Dense(8, name="head"),
        ]
    )
    inputs = np.random.default_rng(0).normal(size=(6, 40)).astype("float32")
    reference = np.asarray(model(inputs))
    modes = {"float16": np.float16, "dynamic_int8": np.int8}
    # Both files in one child process.
    errors = convert_many(
        [
            (model, tmp_path / f"{quantize}.tflite", "litert", quantize, None)
            for quantize in modes
        ]
    )
    assert errors == [None, None]
    for quantize, weights in modes.items():
        path = tmp_path / f"{quantize}.tflite"
        interpreter = Interpreter(model_path=str(path))
        assert {d["dtype"] for d in interpreter.get_input_details()} == {
            np.float32
        }
        dtypes = {t["dtype"] for t in interpreter.get_tensor_details()}
        assert weights in dtypes, (quantize, dtypes)
        out = kb.io.run_litert(path, inputs)
        assert _relative_error(out, reference) < 0.05


def test_bad_quantize_arguments_are_refused(tmp_path):
    model, _, _ = _user_model()
    with pytest.raises(ValueError, match="quantize must be one of"):
        kb.io.export_litert(model, tmp_path / "m.tflite", quantize="int4")
    with pytest.raises(ValueError, match="needs calibration"):
        kb.io.export_litert(model, tmp_path / "m.tflite", quantize="int8")
    with pytest.raises(ValueError, match="only with quantize='int8'"):
        kb.io.export_litert(
            model, tmp_path / "m.tflite", calibration=[np.zeros((1, 5))]
        )
    assert list(tmp_path.iterdir()) == []
