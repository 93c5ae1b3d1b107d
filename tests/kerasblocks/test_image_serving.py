"""Image serving signatures: raw uint8 pixels of any size and encoded
JPEG/PNG bytes, served by plain TensorFlow with the in-process answers."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb
import zoo

CLASSES = ["circle", "square", "line", "dot"]

SERVE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    data = np.load(sys.argv[2])
    pixels = loaded.signatures["serving_default"](
        images=tf.constant(data["pixels"]))
    files = [sys.argv[2] + f".{i}.png" for i in range(len(data["pixels"]))]
    encoded = loaded.signatures["serving_bytes"](
        images=tf.constant([open(f, "rb").read() for f in files]))
    np.savez(sys.argv[3],
             pixel_probs=pixels["probabilities"].numpy(),
             pixel_top=pixels["top_k_indices"].numpy(),
             pixel_names=pixels["top_k_classes"].numpy().astype(str),
             bytes_probs=encoded["probabilities"].numpy())
    print(json.dumps(sorted(m for m in sys.modules
                            if m.split(".")[0] in ("kerasblocks", "zoo"))))
    """
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serving")
    model = zoo.create_model(
        "mobilenetv2",
        input_shape=(32, 32, 3),
        num_classes=4,
        include_preprocessing=True,
    )
    serving = kb.io.ImageServing(
        (32, 32), crop_fraction=0.875, class_names=CLASSES, top_k=2
    )
    path = str(tmp / "export")
    kb.io.export_saved_model(model, path, image_serving=serving)
    return model, serving, path, tmp


def test_pixels_and_bytes_served_by_plain_tf_equal_in_process(exported):
    model, serving, path, tmp = exported
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (3, 50, 40, 3), dtype=np.uint8)
    inputs = str(tmp / "inputs.npz")
    np.savez(inputs, pixels=pixels)
    for i, image in enumerate(pixels):
        with open(f"{inputs}.{i}.png", "wb") as f:
            f.write(tf.io.encode_png(image).numpy())
    outputs = str(tmp / "outputs.npz")
    script = tmp / "serve.py"
    script.write_text(SERVE)
    done = subprocess.run(
        [sys.executable, str(script), path, inputs, outputs],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ""},
        cwd=str(tmp),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    served = np.load(outputs)
    expected = model.predict(serving.prepare(pixels), verbose=0)
    np.testing.assert_allclose(served["pixel_probs"], expected, atol=1e-5)
    # PNG is lossless: the bytes signature sees the same pixels.
    np.testing.assert_allclose(served["bytes_probs"], expected, atol=1e-5)
    top = np.argsort(-expected, axis=1)[:, :2]
    np.testing.assert_array_equal(served["pixel_top"], top)
    assert served["pixel_names"].tolist() == [
        [CLASSES[i] for i in row] for row in top
    ]


def test_jpeg_bytes_decode_like_the_client_would(exported):
    model, serving, path, _ = exported
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (24, 36, 3), dtype=np.uint8)
    jpeg = tf.io.encode_jpeg(image, quality=90)
    served = tf.saved_model.load(path).signatures["serving_bytes"](
        images=tf.stack([jpeg, jpeg])
    )
    decoded = tf.io.decode_jpeg(jpeg)[tf.newaxis]
    expected = model.predict(serving.prepare(decoded), verbose=0)
    np.testing.assert_allclose(
        served["probabilities"].numpy()[:1], expected, atol=1e-5
    )
    assert served["top_k_indices"].shape == (2, 2)


def test_float_signature_and_manifest_are_kept(exported):
    _, serving, path, _ = exported
    loaded = tf.saved_model.load(path)
    assert sorted(loaded.signatures) == [
        "serve",  # Keras's own endpoint, as model.export writes it
        "serving_bytes",
        "serving_default",
        "serving_float",
        "validate",
    ]
    with open(os.path.join(path, "assets", "kerasblocks", "serving.json")) as f:
        manifest = json.load(f)
    assert manifest["image_serving"]["class_names"] == CLASSES
    assert manifest["image_serving"]["crop_fraction"] == 0.875


def test_image_serving_rejects_bad_settings():
    with pytest.raises(ValueError, match="interpolation must be one of"):
        kb.io.ImageServing((8, 8), interpolation="cubic")
    with pytest.raises(ValueError, match="crop_fraction must be in"):
        kb.io.ImageServing((8, 8), crop_fraction=0)
    model = zoo.create_model("lenet", num_classes=3)
    serving = kb.io.ImageServing((28, 28), channels=1, class_names=["a"])
    with pytest.raises(ValueError, match="1 class names for a model with 3"):
        kb.io.export_saved_model(model, "/nonexistent/x", image_serving=serving)
