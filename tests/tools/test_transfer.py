"""Transfer learning in kb-train and raw-image serving from kb-export, as a
user runs them: real processes on a small image folder the test writes."""

import json
import os

import h5py
import numpy as np
import pytest

from tests.tools._cli import run_python, run_tool

CLASSES = ("blue", "green", "red")
MODEL = [
    "--model=mobilenetv2",
    '--model_overrides={"alpha": 0.35, "input_shape": [32, 32, 3]}',
]


def _write_folder(root):
    """3 classes of 32x32 RGB PNGs; the class is the bright channel."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for channel, name in enumerate(("red", "green", "blue")):
        os.makedirs(root / name)
        for i in range(8):
            image = rng.integers(0, 60, (32, 32, 3)).astype(np.uint8)
            image[..., channel] += 180
            tf.io.write_file(
                str(root / name / f"{i}.png"), tf.io.encode_png(image)
            )


def _write_applications_file(path):
    """A keras.applications weights file (legacy HDF5, no top) from a
    seeded `weights=None` model, with non-trivial BN statistics."""
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(7)
    model = keras.applications.MobileNetV2(
        weights=None, input_shape=(32, 32, 3), include_top=False, alpha=0.35
    )
    rng = np.random.default_rng(7)
    for variable in model.weights:
        if variable.path.endswith("moving_mean"):
            variable.assign(rng.normal(0, 0.1, variable.shape))
        elif variable.path.endswith("moving_variance"):
            variable.assign(rng.uniform(0.5, 1.5, variable.shape))
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    _write_folder(root / "images")
    _write_applications_file(str(root / "mobilenet_v2_notop.h5"))
    return root


def _common(files):
    return [
        *MODEL,
        f"--dataset=folder:{files / 'images'}",
        f"--init_from={files / 'mobilenet_v2_notop.h5'}",
        "--freeze=backbone",
        "--unfreeze_at_epoch=2",
        "--finetune_lr_scale=0.5",
        "--epochs=2",
        "--batch_size=6",
        "--checkpoint_every=2",
        "--keep_checkpoints=10",
        "--jit_compile=false",
        "--deterministic",
    ]


@pytest.fixture(scope="module")
def whole(files):
    """An uninterrupted fine-tune: epoch 1 frozen, epoch 2 unfrozen."""
    out = files / "whole"
    done = run_tool("train", *_common(files), f"--out_dir={out}")
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done


def _variables(model):
    import kerasblocks as kb

    return {v.path: v.numpy() for v in kb.params.unique_variables(model)}


def _checkpoint(run, name):
    import zoo  # noqa: F401
    from kerasblocks.training import runs

    return _variables(runs.load_run_model(str(run), name))


def test_fine_tune_freezes_then_unfreezes(files, whole):
    import zoo

    out, done = whole
    # 19 training images, batch 6: 3 steps an epoch.
    lines = done.stdout.splitlines()
    assert lines[0] == (
        f"init_from {files / 'mobilenet_v2_notop.h5'}: loaded 260 weights; "
        "new (not loaded): predictions"
    ), done.stdout
    assert "epoch 2: the whole model trains from here, at 0.5 x the " in (
        done.stdout
    )
    record = json.loads((out / "model_config.json").read_text())
    assert record["init_from"] == str(files / "mobilenet_v2_notop.h5")
    assert record["pixels"] == "raw"
    assert record["class_names"] == list(CLASSES)
    assert record["pretrained_cfg"]["keras_application"] == "MobileNetV2"
    assert record["pretrained_cfg"]["preprocessing"] == "tf"

    loaded = _variables(
        zoo.create_model(
            "mobilenetv2",
            alpha=0.35,
            input_shape=(32, 32, 3),
            num_classes=3,
            weights=str(files / "mobilenet_v2_notop.h5"),
            include_preprocessing=True,
        )
    )
    frozen = _checkpoint(out, "ckpt-000000003")  # the end of epoch 1
    final = _checkpoint(out, "ckpt-000000006")
    assert set(frozen) == set(loaded)
    head = {p for p in loaded if p.startswith("predictions/")}
    assert len(head) == 2
    statistics = [p for p in loaded if p.endswith("moving_mean")]
    assert len(statistics) == 52
    for path, value in loaded.items():
        if path in head:
            assert not np.allclose(frozen[path], value), path
        else:
            # Every backbone weight, BN moving statistics included.
            np.testing.assert_array_equal(frozen[path], value, err_msg=path)
    changed = [p for p in loaded if not np.allclose(final[p], frozen[p])]
    assert set(statistics) <= set(changed)
    assert len(changed) > 200


def test_kill_after_the_unfreeze_and_resume_is_exact(files, whole):
    out = files / "killed"
    killed = run_tool(
        "train",
        *_common(files),
        f"--out_dir={out}",
        env={"KB_FAULT_KILL_AT_STEP": "5"},
    )
    assert killed.returncode == -9
    assert sorted(os.listdir(out / "checkpoints"))[-1] == "ckpt-000000004"
    resumed = run_tool("train", *_common(files), f"--out_dir={out}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from ckpt-000000004 (step 4)" in resumed.stdout
    reference = _checkpoint(whole[0], "ckpt-000000006")
    again = _checkpoint(out, "ckpt-000000006")
    for path, value in reference.items():
        np.testing.assert_array_equal(again[path], value, err_msg=path)

    def figures(run):
        metrics = json.loads((run / "metrics.json").read_text())
        return [
            {k: v for k, v in h.items() if k != "examples_per_s"}
            for h in metrics["history"]
        ]

    assert figures(out) == figures(whole[0])


SERVE = """
import json, sys
import numpy as np
import tensorflow as tf

assert "kerasblocks" not in sys.modules and "zoo" not in sys.modules
images = np.load(sys.argv[2])
encoded = [tf.io.encode_png(image).numpy() for image in images]
answers = {}
for name in sys.argv[1].split(","):
    served = tf.saved_model.load(name)
    pixels = served.signatures["serving_default"](images=tf.constant(images))
    png = served.signatures["serving_bytes"](images=tf.constant(encoded))
    answers[name] = {
        "keys": sorted(served.signatures.keys()),
        "pixels": pixels["probabilities"].numpy().tolist(),
        "png": png["probabilities"].numpy().tolist(),
        "classes": [c.decode() for c in pixels["top_k_classes"][:, 0].numpy()],
        "loaded": [m for m in ("kerasblocks", "zoo") if m in sys.modules],
    }
print(json.dumps(answers))
"""


def test_exported_run_serves_raw_pixels_and_png_bytes(files, whole, tmp_path):
    import zoo  # noqa: F401
    from kerasblocks.training import runs, transfer

    out = whole[0]
    exported = run_tool(
        "export",
        f"--run_dir={out}",
        "--formats=saved_model",
        f"--out_dir={tmp_path}",
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    # Clients' images: any size, not the model's 32x32.
    images = np.random.default_rng(1).integers(0, 256, (4, 40, 52, 3))
    images = images.astype(np.uint8)
    images[:, :, :, 2] |= 0xC0  # bright blue
    np.save(tmp_path / "images.npy", images)
    paths = [
        str(tmp_path / "export" / "saved_model" / "1"),
        str(out / "export" / "saved_model" / "1"),  # kb-train's own export
    ]
    served = run_python(
        "-c",
        SERVE,
        ",".join(paths),
        tmp_path / "images.npy",
        timeout=300,
        cwd=str(tmp_path),
    )
    assert served.returncode == 0, served.stderr[-3000:]
    answers = json.loads(served.stdout.splitlines()[-1])

    run = runs.open_run(str(out), "latest")
    model = run.model
    serving = transfer.image_serving(model, run.record)
    assert serving.preprocessing == "none"  # the model preprocesses
    assert serving.image_size == (32, 32)
    assert serving.crop_fraction == 0.875  # MobileNetV2's evaluation crop
    expected = model(serving.prepare(images), training=False).numpy()
    for path in paths:
        answer = answers[path]
        assert answer["loaded"] == []
        assert {"serving_default", "serving_bytes", "serving_float"} <= set(
            answer["keys"]
        )
        np.testing.assert_allclose(answer["pixels"], expected, atol=1e-5)
        np.testing.assert_allclose(answer["png"], expected, atol=1e-5)
        assert answer["classes"] == [
            CLASSES[i] for i in expected.argmax(axis=-1)
        ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--init_from=/no/such/weights.h5"], "no such file or directory"),
        (["--unfreeze_at_epoch=2"], "needs a frozen start"),
    ],
)
def test_bad_starts_end_in_one_line_and_write_nothing(
    files, tmp_path, args, message
):
    out = tmp_path / "run"
    done = run_tool(
        "train",
        *MODEL,
        f"--dataset=folder:{files / 'images'}",
        *args,
        f"--out_dir={out}",
    )
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [
        line for line in done.stderr.splitlines() if "kb-train: error" in line
    ]
    assert len(errors) == 1 and message in errors[0], done.stderr[-3000:]
    assert not out.exists()
    # Refused before TensorFlow is imported.
    assert "oneDNN" not in done.stderr and "cuda" not in done.stderr


def test_weights_that_do_not_fit_are_refused_before_writing(files, tmp_path):
    import zoo  # noqa: F401
    from kerasblocks.training import trainer
    from kerasblocks.training.config import TrainConfig
    from kerasblocks.training.errors import UserInputError

    def start(alpha=0.35, **settings):
        config = TrainConfig(
            model="mobilenetv2",
            model_overrides={"alpha": alpha, "input_shape": [32, 32, 3]},
            dataset=f"folder:{files / 'images'}",
            batch_size=6,
            epochs=1,
            out_dir=str(tmp_path / "run"),
            **settings,
        )
        with pytest.raises(UserInputError) as raised:
            trainer.train(config)
        assert not (tmp_path / "run").exists()
        return str(raised.value)

    weights = str(files / "mobilenet_v2_notop.h5")
    wrong = start(alpha=1.0, init_from=weights)
    assert wrong.startswith(f"--init_from={weights}: mobilenetv2: ")
    os.environ["KERAS_HOME"], home = (
        str(tmp_path / "keras"),
        os.environ.get("KERAS_HOME"),
    )
    try:
        offline = start(init_from="imagenet")
    finally:
        if home is None:
            del os.environ["KERAS_HOME"]
        else:
            os.environ["KERAS_HOME"] = home
    assert (
        "ZOO_OFFLINE=1 and " in offline
        and " is not in Keras's cache" in offline
    )
    assert str(tmp_path / "keras" / "models") in offline


def test_init_from_a_run_directory_takes_its_best_checkpoint(files, whole):
    import zoo  # noqa: F401
    from kerasblocks.data import dataset as data_lib
    from kerasblocks.training import transfer
    from kerasblocks.training.config import TrainConfig

    out = whole[0]
    best = (out / "checkpoints" / "BEST").read_text().strip()
    config = TrainConfig(
        model="mobilenetv2",
        model_overrides={"alpha": 0.35, "input_shape": [32, 32, 3]},
        dataset=f"folder:{files / 'images'}",
        init_from=str(out),
    ).validate()
    start = transfer.start_model(config, data_lib.load_dataset(config.dataset))
    assert start.pixels == "raw"  # as the run it starts from
    assert start.record.pretrained_cfg["keras_application"] == ("MobileNetV2")
    assert start.line == f"init_from {out}: loaded 262 weights; all loaded"
    expected = _checkpoint(out, best)
    for path, value in _variables(start.model).items():
        np.testing.assert_array_equal(value, expected[path], err_msg=path)


def test_pipelines_feed_raw_pixels_for_a_model_that_preprocesses(files):
    from kerasblocks.data import dataset as data_lib

    for name, shape in (
        (f"folder:{files / 'images'}", (32, 32, 3)),
        ("digits", (8, 8, 1)),
    ):
        dataset = data_lib.load_dataset(name)
        unit, raw = (
            next(
                iter(
                    data_lib.make_pipeline(
                        dataset, "val", 4, image_shape=shape, pixels=pixels
                    )
                )
            )[0].numpy()
            for pixels in ("unit", "raw")
        )
        assert 0 <= unit.min() and unit.max() <= 1, name
        assert raw.max() > 200, name
        np.testing.assert_allclose(raw, unit * 255, rtol=1e-6, atol=1e-4)
    with pytest.raises(ValueError, match="pixels must be one of"):
        data_lib.make_pipeline(dataset, "val", 4, pixels="bytes")


def test_a_partial_init_from_is_refused_unless_init_from_strict_is_false(
    files, tmp_path
):
    import zoo
    from kerasblocks.data import dataset as data_lib
    from kerasblocks.training import transfer
    from kerasblocks.training.config import TrainConfig
    from kerasblocks.training.errors import UserInputError
    from tools import train

    shape = {"input_shape": [32, 32, 3]}
    smaller = zoo.create_model("resnet18", num_classes=3, **shape)
    path = str(tmp_path / "resnet18.keras")
    smaller.save(path)
    dataset = data_lib.load_dataset(f"folder:{files / 'images'}")

    def config(**settings):
        return TrainConfig(
            model="resnet34",
            model_overrides=shape,
            dataset=f"folder:{files / 'images'}",
            init_from=path,
            **settings,
        ).validate()

    with pytest.raises(UserInputError) as error:
        transfer.start_model(config(), dataset)
    message = str(error.value)
    assert message.startswith(f"--init_from={path}: resnet34: ")
    assert "backbone weights unloaded" in message
    assert "--init_from_strict=false" in message
    assert "\n" not in message and len(message) < 500
    start = transfer.start_model(config(init_from_strict=False), dataset)
    assert start.line.startswith(f"init_from {path}: loaded ")
    assert "..." in start.line and len(start.line) < 300
    np.testing.assert_array_equal(
        start.model.get_layer("conv1_conv").kernel.numpy(),
        smaller.get_layer("conv1_conv").kernel.numpy(),
    )
    # The flag reaches the config.
    train.FLAGS(["kb-train", "--init_from_strict=false"])
    try:
        assert train.config_from_flags().init_from_strict is False
    finally:
        train.FLAGS.unparse_flags()
