"""kb-train then kb-export to LiteRT int8 and ONNX, as a user runs them:
a runnable full-integer `.tflite`, an `.onnx`, TF Serving's versioned
SavedModel with warm-up requests, and a report of their agreement."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.tools.test_train import run_tool


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("deploy") / "lenet"
    trained = run_tool(
        "train",
        "--model=lenet",
        "--dataset=digits",
        "--batch_size=32",
        "--epochs=3",
        "--formats=saved_model",
        f"--out_dir={out}",
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    exported = run_tool(
        "export",
        f"--run_dir={out}",
        "--formats=litert,onnx",
        "--quantize=int8",
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    return out, exported


def _digits_val(out):
    """The run's validation inputs as the model sees them."""
    import zoo  # noqa: F401
    from kerasblocks.data import dataset as data_lib
    from kerasblocks.training import deploy, models, runs

    model = runs.load_run_model(str(out))
    dataset = data_lib.load_dataset("digits")
    validation, _ = deploy.run_data(
        dataset, image_shape=models.image_shape(model, dataset)
    )
    batches = list(validation.as_numpy_iterator())
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    return model, x, y


def test_int8_litert_onnx_and_report(run):
    import kerasblocks as kb

    out, exported = run
    export = out / "export"
    assert sorted(os.listdir(export)) == [
        "deploy_report.json",
        "model.onnx",
        "model.tflite",
        "saved_model",
    ]
    assert f"litert: {export / 'model.tflite'}" in exported.stdout
    model, x, y = _digits_val(out)
    reference = np.asarray(model(x, training=False))
    quantized = kb.io.run_litert(export / "model.tflite", x)
    onnx = kb.io.run_onnx(export / "model.onnx", x)
    assert np.abs(onnx - reference).max() < 1e-4 * np.abs(reference).max()
    agreement = np.mean(quantized.argmax(1) == reference.argmax(1))
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(export / "model.tflite"))
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    report = json.loads((export / "deploy_report.json").read_text())
    assert report["quantize"] == "int8" and report["examples"] == len(x)
    litert = report["formats"]["litert"]
    assert litert["file"] == os.path.join("export", "model.tflite")
    assert litert["size_bytes"] == os.path.getsize(export / "model.tflite")
    assert litert["quantize"] == "int8"
    assert litert["top1_agreement"] == pytest.approx(agreement)
    assert agreement >= 0.98
    assert litert["keras_accuracy"] == pytest.approx(
        np.mean(reference.argmax(1) == y)
    )
    assert litert["accuracy"] == pytest.approx(
        np.mean(quantized.argmax(1) == y)
    )
    assert litert["max_abs_diff"] == pytest.approx(
        np.abs(quantized - reference).max(), rel=1e-5
    )
    assert report["formats"]["onnx"]["top1_agreement"] == 1.0
    assert "accuracy" not in report["formats"]["onnx"]
    # kb-train's entry stays beside kb-export's: the report describes
    # every file in export/, not only the last call's.
    saved = report["formats"]["saved_model"]
    assert saved["file"] == os.path.join("export", "saved_model", "1")
    assert saved["top1_agreement"] == 1.0


def test_saved_model_is_versioned_with_warmup_requests(run):
    from tensorflow_serving.apis import prediction_log_pb2

    out, _ = run
    base = out / "export" / "saved_model"
    assert os.listdir(base) == ["1"]  # kb-train's export
    again = run_tool("export", f"--run_dir={out}", "--formats=saved_model")
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(os.listdir(base)) == ["1", "2"]
    assert (base / "2" / "saved_model.pb").is_file()
    warmup = base / "2" / "assets.extra" / "tf_serving_warmup_requests"
    records = list(tf.data.TFRecordDataset(str(warmup)).as_numpy_iterator())
    assert len(records) == 1
    log = prediction_log_pb2.PredictionLog.FromString(records[0])
    request = log.predict_log.request
    assert request.model_spec.signature_name == "serving_default"
    images = tf.make_ndarray(request.inputs["images"])
    assert images.dtype == np.uint8 and images.shape[0] == 1
    # The request is one the signature answers.
    served = tf.saved_model.load(str(base / "2"))
    answer = served.signatures["serving_default"](images=images)
    assert answer["probabilities"].shape == (1, 10)
    # The kerasblocks integrity manifest covers the warm-up file.
    import kerasblocks as kb

    assert kb.io.load_model(base / "2") is not None


def test_int8_below_min_agreement_writes_no_model(run, tmp_path):
    out, _ = run
    # Calibrating on black images collapses the input range: the int8
    # file then answers (nearly) one class for every digit.
    folder = tmp_path / "black"
    for label in ("a", "b"):
        (folder / label).mkdir(parents=True)
        for i in range(4):
            Image.new("L", (28, 28)).save(folder / label / f"{i}.png")
    refused = run_tool(
        "export",
        f"--run_dir={out}",
        "--formats=litert",
        "--quantize=int8",
        f"--calibration=folder:{folder}",
        f"--out_dir={tmp_path / 'refused'}",
    )
    assert refused.returncode == 2, refused.stderr[-3000:]
    lines = refused.stderr.strip().splitlines()
    assert "below --min_agreement=0.98" in lines[-1]
    assert lines[-1].startswith("kb-export: error: ")
    export = tmp_path / "refused" / "export"
    assert os.listdir(export) == ["deploy_report.json"]
    report = json.loads((export / "deploy_report.json").read_text())
    assert report["formats"]["litert"]["top1_agreement"] < 0.5
    assert "refused" in report["formats"]["litert"]


def test_export_sets_the_serving_limits(run, tmp_path):
    import re

    import kerasblocks as kb

    # kb-export's default is ImageServing's (tools.export is not imported
    # here: its flags would clash with kb-train's in this process).
    assert kb.io.ImageServing((8, 8)).max_batch == 32
    helped = run_tool("export", "--help")
    assert re.search(r"--max_batch:.*?\(default: '32'\)", helped.stdout, re.S)
    out, _ = run
    exported = run_tool(
        "export",
        f"--run_dir={out}",
        "--formats=saved_model",
        "--max_image_pixels=2000",
        "--max_batch=2",
        f"--out_dir={tmp_path}",
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    path = tmp_path / "export" / "saved_model" / "1"
    served = tf.saved_model.load(str(path)).signatures
    fits = tf.io.encode_png(np.zeros((40, 50, 1), np.uint8))
    over = tf.io.encode_png(np.zeros((40, 51, 1), np.uint8))
    answer = served["serving_bytes"](images=tf.stack([fits, fits]))
    assert answer["probabilities"].shape == (2, 10)
    for signature, images, limit in (
        ("serving_bytes", tf.stack([fits, over]), "max_pixels=2000"),
        ("serving_bytes", tf.stack([fits] * 3), "max_batch=2"),
        ("serving_default", tf.zeros((1, 40, 51, 3), tf.uint8), "=2000"),
    ):
        with pytest.raises(tf.errors.InvalidArgumentError, match=limit):
            served[signature](images=images)
    manifest = path / "assets" / "kerasblocks" / "serving.json"
    recorded = json.loads(manifest.read_text())["image_serving"]
    assert (recorded["max_pixels"], recorded["max_batch"]) == (2000, 2)
