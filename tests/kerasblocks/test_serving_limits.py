"""A served image model's requests have bounded cost: hostile requests
(a 1.5 MB PNG declaring 40000x40000 pixels, a forged JPEG header, too
many images, none, the wrong channels) get InvalidArgument naming the
limit from a plain-TensorFlow process under a memory cap, which then
answers a normal request."""

import io
import json
import os
import resource
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb
import zoo
from kerasblocks import testing
from kerasblocks.io import _image_header

CLASSES = ["a", "b", "c"]
# The child's address space: TensorFlow and the loaded model take ~2.1
# GB of it; decoding the hostile PNG alone would need 1.6 GB more.
MEMORY_CAP = 3 << 30

SERVE = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    import tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    pixels = loaded.signatures["serving_default"]
    encoded = loaded.signatures["serving_bytes"]
    files = json.load(open(sys.argv[2]))
    read = lambda name: open(files[name], "rb").read()
    small = read("small")
    requests = [
        ("png_bomb", lambda: encoded(images=tf.constant([read("png")]))),
        ("jpeg_bomb", lambda: encoded(images=tf.constant([read("jpeg")]))),
        ("not_image", lambda: encoded(images=tf.constant([b"GIF? no"]))),
        ("too_many", lambda: encoded(images=tf.constant([small] * 33))),
        ("empty", lambda: encoded(images=tf.constant([], tf.string))),
        ("empty_pixels",
         lambda: pixels(images=tf.zeros((0, 8, 8, 3), tf.uint8))),
        ("gray_pixels",
         lambda: pixels(images=tf.zeros((1, 8, 8, 1), tf.uint8))),
        ("big_pixels",
         lambda: pixels(images=tf.zeros((1, 9000, 8000, 3), tf.uint8))),
        ("normal", lambda: encoded(images=tf.constant([small, small]))),
        ("normal_pixels", lambda: pixels(
            images=tf.constant(np.load(files["pixels"])))),
    ]
    peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    answers = {"peak_mb": {"start": peak()}}
    for name, request in requests:
        try:
            out = request()
            answers[name] = ["ok", out["probabilities"].numpy().tolist()]
        except tf.errors.InvalidArgumentError as error:
            answers[name] = ["InvalidArgument", error.message]
        answers["peak_mb"][name] = peak()
    answers["modules"] = sorted(
        m for m in sys.modules if m.split(".")[0] in ("kerasblocks", "zoo"))
    print(json.dumps(answers))
    """
)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limits")
    model = zoo.create_model("lenet", input_shape=(16, 16, 3), num_classes=3)
    serving = kb.io.ImageServing(
        (16, 16), preprocessing="unit", class_names=CLASSES, top_k=2
    )
    path = str(tmp / "export")
    kb.io.export_saved_model(model, path, image_serving=serving)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    files = {
        "png": tmp / "bomb.png",
        "jpeg": tmp / "bomb.jpg",
        "small": tmp / "small.png",
        "pixels": tmp / "pixels.npy",
    }
    files["png"].write_bytes(testing.oversized_png(40000, 40000))
    files["jpeg"].write_bytes(testing.oversized_jpeg(30000, 30000))
    files["small"].write_bytes(tf.io.encode_png(image).numpy())
    np.save(files["pixels"], image[np.newaxis])
    listing = tmp / "files.json"
    listing.write_text(json.dumps({k: str(v) for k, v in files.items()}))
    script = tmp / "serve.py"
    script.write_text(SERVE)

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    done = subprocess.run(
        [sys.executable, str(script), path, str(listing)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ""},
        cwd=str(tmp),
        preexec_fn=cap,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    expected = model.predict(serving.prepare(image[np.newaxis]), verbose=0)
    return answers, expected


def _refused(answers, name):
    kind, message = answers[name]
    assert kind == "InvalidArgument", (name, message)
    return message


def test_the_defaults_are_the_documented_ones():
    serving = kb.io.ImageServing((8, 8))
    assert serving.max_pixels == 8192 * 8192 == 67_108_864
    assert serving.max_batch == 32


def test_an_oversized_png_is_refused_naming_the_limit(served):
    answers, _ = served
    message = _refused(answers, "png_bomb")
    assert (
        "an image of 40000x40000 (1600000000 pixels) is over the limit "
        "max_pixels=67108864"
    ) in message


def test_a_forged_jpeg_header_is_refused_before_decoding(served):
    answers, _ = served
    assert "an image of 30000x30000 (900000000 pixels)" in _refused(
        answers, "jpeg_bomb"
    )
    assert "not a JPEG, PNG, GIF or BMP image" in _refused(answers, "not_image")


def test_batch_limits_and_channels_are_clear_errors(served):
    answers, _ = served
    assert "a batch of 33 images is over the limit max_batch=32" in (
        _refused(answers, "too_many")
    )
    for name in ("empty", "empty_pixels"):
        assert "empty batch: a request must hold at least 1 image" in (
            _refused(answers, name)
        )
    assert "images must be RGB" in _refused(answers, "gray_pixels")
    assert "received 1 channel(s)" in _refused(answers, "gray_pixels")
    assert (
        "images of 9000x8000 (72000000 pixels) are over the limit "
        "max_pixels=67108864"
    ) in _refused(answers, "big_pixels")


def test_the_process_survives_bounded_and_answers_normally(served):
    answers, expected = served
    # The hostile images cost no memory: the peak grew by far less than
    # one decoded bomb (1.6 GB as uint8).
    peaks = answers["peak_mb"]
    assert peaks["jpeg_bomb"] - peaks["start"] < 100, peaks
    kind, probabilities = answers["normal"]
    assert kind == "ok"
    np.testing.assert_allclose(probabilities[0], expected[0], atol=1e-5)
    np.testing.assert_allclose(probabilities[1], expected[0], atol=1e-5)
    kind, probabilities = answers["normal_pixels"]
    assert kind == "ok"
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    assert answers["modules"] == []


def test_limits_set_at_export_are_the_served_ones(tmp_path):
    model = zoo.create_model("lenet", input_shape=(16, 16, 3), num_classes=3)
    serving = kb.io.ImageServing((16, 16), max_pixels=600, max_batch=2)
    kb.io.export_saved_model(
        model, str(tmp_path), image_serving=serving, warmup=True
    )
    encoded = tf.saved_model.load(str(tmp_path)).signatures["serving_bytes"]
    fits = tf.io.encode_png(np.zeros((20, 30, 3), np.uint8))
    assert encoded(images=tf.stack([fits, fits]))["probabilities"].shape == (
        2,
        3,
    )
    over = tf.io.encode_png(np.zeros((20, 31, 3), np.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_pixels=600"):
        encoded(images=tf.stack([fits, over]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_batch=2"):
        encoded(images=tf.stack([fits] * 3))
    # TF Serving replays the warm-up request before it serves: it must
    # be one the limits let through (24x24, not the usual 32x32).
    from tensorflow_serving.apis import prediction_log_pb2

    warmup = tmp_path / "assets.extra" / "tf_serving_warmup_requests"
    (record,) = tf.data.TFRecordDataset(str(warmup)).as_numpy_iterator()
    request = prediction_log_pb2.PredictionLog.FromString(record)
    images = tf.make_ndarray(request.predict_log.request.inputs["images"])
    assert images.shape == (1, 24, 24, 3)
    pixels = tf.saved_model.load(str(tmp_path)).signatures["serving_default"]
    assert pixels(images=images)["probabilities"].shape == (1, 3)
    manifest = os.path.join(
        str(tmp_path), "assets", "kerasblocks", "serving.json"
    )
    with open(manifest) as f:
        recorded = json.load(f)["image_serving"]
    assert (recorded["max_pixels"], recorded["max_batch"]) == (600, 2)


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_limits_must_be_positive_ints(value):
    with pytest.raises(ValueError, match="max_pixels must be a positive int"):
        kb.io.ImageServing((8, 8), max_pixels=value)
    with pytest.raises(ValueError, match="max_batch must be a positive int"):
        kb.io.ImageServing((8, 8), max_batch=value)


@pytest.mark.parametrize(
    "mode, fmt, channels",
    [
        ("L", "PNG", 1),
        ("LA", "PNG", 2),
        ("RGB", "PNG", 3),
        ("RGBA", "PNG", 4),
        ("P", "PNG", 3),
        ("L", "JPEG", 1),
        ("RGB", "JPEG", 3),
        ("RGB", "GIF", 3),
        ("L", "BMP", 1),
        ("RGB", "BMP", 3),
        ("RGBA", "BMP", 4),
    ],
)
def test_the_header_declares_what_decoding_gives(mode, fmt, channels):
    from PIL import Image

    stream = io.BytesIO()
    Image.new(mode, (37, 23)).save(stream, fmt)
    encoded = stream.getvalue()
    declared = _image_header.encoded_image_shape(encoded).numpy().tolist()
    decoded = tf.io.decode_image(encoded, expand_animations=False).shape
    assert declared == [23, 37, channels] == decoded.as_list()
