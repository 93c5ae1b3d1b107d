"""kb-predict and kb-evaluate on every kind of model a run leaves, as a
user runs them: real processes on a small image folder the test writes.

The run starts from a keras.applications weights file, so its model
takes 0-255 pixels and is served with MobileNetV2's central crop: an
export read with kb-train's usual [0, 1] pixels would answer otherwise.
"""

import csv
import io
import json
import os

import h5py
import numpy as np
import pytest

from tests.tools._cli import run_tool
from tests.tools.test_transfer import MODEL

CLASSES = ("blue", "green", "red")


def _write_split_folder(root):
    """train/ and val/ folders of 3 classes of 32x32 RGB PNGs (the class
    is the bright channel), so the validation files are known."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("val", 4)):
        for channel, name in enumerate(("red", "green", "blue")):
            folder = root / split / name
            os.makedirs(folder)
            for i in range(count):
                image = rng.integers(0, 90, (32, 32, 3)).astype(np.uint8)
                image[..., channel] += 120
                tf.io.write_file(
                    str(folder / f"{i}.png"), tf.io.encode_png(image)
                )


def _write_applications_file(path, folder):
    """A keras.applications MobileNetV2 weights file (legacy HDF5, no
    top) from a seeded `weights=None` model whose batch-norm statistics
    are those of the test's images: with a random file's statistics its
    deep features saturate and every image gets the same answer."""
    import keras
    import tensorflow as tf
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(7)
    model = keras.applications.MobileNetV2(
        weights=None, input_shape=(32, 32, 3), include_top=False, alpha=0.35
    )
    images = np.stack(
        [
            tf.io.decode_png(tf.io.read_file(str(p))).numpy()
            for p in sorted(folder.glob("train/*/*.png"))
        ]
    )
    layers = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    for layer in layers:
        layer.momentum = 0.0  # one training-mode call sets the statistics
    model(images.astype("float32") / 127.5 - 1.0, training=True)
    for layer in layers:
        layer.momentum = 0.999
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A fine-tuned run (pixels "raw") with SavedModel, .keras, .h5 and
    LiteRT exports, and an ONNX export carrying the run's metadata."""
    root = tmp_path_factory.mktemp("predict")
    _write_split_folder(root / "images")
    _write_applications_file(str(root / "notop.h5"), root / "images")
    out = root / "run"
    done = run_tool(
        "train",
        *MODEL,
        f"--dataset=folder:{root / 'images'}",
        f"--init_from={root / 'notop.h5'}",
        # A frozen backbone keeps the file's batch-norm statistics, so
        # the answers depend on the pixels (a 6-step run that trained
        # them would answer every image alike).
        "--freeze=backbone",
        "--epochs=2",
        "--batch_size=8",
        "--learning_rate=0.01",
        "--jit_compile=false",
        "--export=saved_model,keras,h5,tflite",
        f"--out_dir={out}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    import zoo  # noqa: F401
    from kerasblocks import io as kb_io
    from kerasblocks.training import deploy, runs, transfer

    run = runs.open_run(str(out))
    model, record = run.model, run.record
    onnx_path = str(root / "model.onnx")
    kb_io.export_onnx(model, onnx_path)
    kb_io.write_image_metadata(
        onnx_path,
        kb_io.ImageMetadata.for_model(
            model, transfer.image_serving(model, record)
        ),
    )
    bare = str(root / "bare.keras")  # a model file that records nothing
    kb_io.save_model(model, bare)
    paths = {
        "bare": bare,
        "run": str(out),
        "saved_model": deploy.export_path(str(out), "saved_model"),
        "keras": deploy.export_path(str(out), "keras"),
        "h5": deploy.export_path(str(out), "h5"),
        "litert": deploy.export_path(str(out), "tflite"),
        "onnx": onnx_path,
    }
    return root, paths, record


def _csv(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_the_run_records_raw_pixels_and_a_crop(run):
    _, _, record = run
    assert record.pixels == "raw"
    assert record.pretrained_cfg["crop_fraction"] < 1.0


def test_every_export_carries_the_runs_convention(run):
    from kerasblocks import io as kb_io

    _, paths, record = run
    for kind in ("saved_model", "keras", "litert", "onnx"):
        meta = kb_io.read_image_metadata(paths[kind])
        assert meta is not None, kind
        assert meta.pixels == "raw", kind
        assert meta.serving.preprocessing == "none"
        assert meta.serving.crop_fraction == pytest.approx(
            record.pretrained_cfg["crop_fraction"]
        )
        assert list(meta.serving.class_names) == list(record.class_names)
        assert meta.serving.image_size == (32, 32)
    assert kb_io.read_image_metadata(paths["h5"]) is None


def _all_files(root):
    """Every image with its class, train split first (kb-evaluate's
    --split=all order does not matter: only counts are compared)."""
    return [
        (str(root / "images" / split / name / f"{i}.png"), name)
        for split, count in (("train", 8), ("val", 4))
        for name in sorted(CLASSES)
        for i in range(count)
    ]


KINDS = ("run", "saved_model", "keras", "litert", "onnx")


@pytest.fixture(scope="module")
def evaluations(run, tmp_path_factory):
    """kb-evaluate --split=all of the run and of each export (and of a
    .keras file that records no convention): stdout and
    evaluation.json."""
    root, paths, _ = run
    found = {}
    for kind in (*KINDS, "bare"):
        out = tmp_path_factory.mktemp(f"evaluation_{kind}")
        where = [f"--run_dir={paths['run']}"]
        if kind != "run":
            where = [
                f"--model_path={paths[kind]}",
                f"--dataset=folder:{root / 'images'}",
            ]
        done = run_tool("evaluate", *where, "--split=all", f"--out_dir={out}")
        assert done.returncode == 0, (kind, done.stderr[-3000:])
        report = json.loads((out / "evaluation.json").read_text())
        found[kind] = (done.stdout, report, out)
    return found


@pytest.fixture(scope="module")
def predictions(run):
    """kb-predict's JSON top 3 of every image, from each kind of model;
    the images given as a folder, a glob and files."""
    root, paths, _ = run
    files = [f for f, _ in _all_files(root)]
    found = {}
    for kind in KINDS:
        done = run_tool(
            "predict",
            f"--model_path={paths[kind]}",
            "--top_k=3",
            "--format=json",
            f"--images={root / 'images' / 'train' / 'blue'}",
            str(root / "images" / "train" / "green" / "*.png"),
            *files[16:],
        )
        assert done.returncode == 0, (kind, done.stderr[-3000:])
        found[kind] = (json.loads(done.stdout), done.stderr)
    return root, files, found


def test_evaluate_gives_the_runs_accuracy_on_every_export(evaluations):
    _, expected, _ = evaluations["run"]
    assert expected["examples"] == 36
    assert np.array(expected["confusion_matrix"]).sum() == 36
    # Its answers depend on the image (not one class for all).
    assert np.count_nonzero(np.sum(expected["confusion_matrix"], 0)) > 1
    for kind in KINDS[1:]:
        stdout, found, _ = evaluations[kind]
        assert "records no image convention" not in stdout
        assert found["accuracy"] == expected["accuracy"], kind
        assert found["confusion_matrix"] == expected["confusion_matrix"]
        assert found["loss"] == pytest.approx(expected["loss"], rel=1e-3)
        assert found["class_names"] == ["blue", "green", "red"]


def test_the_convention_is_what_makes_the_answers_equal(run):
    """The same .keras file read as [0, 1] pixels answers otherwise."""
    import zoo  # noqa: F401
    from kerasblocks.training import inference

    root, paths, _ = run
    files = [f for f, _ in _all_files(root)][:6]
    recorded = inference.open_model(paths["keras"])
    unit = inference.open_model(paths["keras"], pixels="unit")
    assert (recorded.pixels, unit.pixels) == ("raw", "unit")
    difference = np.abs(
        recorded.predict_files(files) - unit.predict_files(files)
    )
    assert difference.max() > 0.05


def test_a_file_without_a_convention_says_what_is_assumed(run, evaluations):
    _, paths, _ = run
    stdout, found, _ = evaluations["bare"]
    lines = [x for x in stdout.splitlines() if "records no" in x]
    assert lines == [
        f"{paths['bare']} records no image convention: assuming [0, 1] "
        "pixels (--pixels=unit), the whole image resized bilinearly, "
        "classes by index; give --pixels=raw for a model that takes 0-255."
    ]
    assert found["class_names"] == ["blue", "green", "red"]  # the data's


def test_per_class_precision_and_recall_are_sklearns_on_predict(
    evaluations, predictions
):
    """sklearn on kb-predict's top-1 answers gives kb-evaluate's
    per-class precision, recall and support."""
    from sklearn import metrics

    root, _, found = predictions
    result, _ = found["run"]
    truth = dict(_all_files(root))
    predicted = [r["predictions"][0]["class"] for r in result]
    labels = [truth[r["image"]] for r in result]
    precision, recall, _, support = metrics.precision_recall_fscore_support(
        labels, predicted, labels=sorted(CLASSES), zero_division=0
    )
    stdout, report, out = evaluations["run"]
    per_class = report["per_class"]
    assert [row["class"] for row in per_class] == sorted(CLASSES)
    np.testing.assert_allclose([r["precision"] for r in per_class], precision)
    np.testing.assert_allclose([r["recall"] for r in per_class], recall)
    assert [r["support"] for r in per_class] == list(support) == [12] * 3
    text = (out / "confusion.txt").read_text().splitlines()
    assert text[0].split() == ["true\\pred", "blue", "green", "red"]
    assert [line.split()[0] for line in text[1:]] == ["blue", "green", "red"]
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert "precision recall support" in stdout


def test_predict_answers_alike_from_every_kind_of_model(predictions):
    _, files, found = predictions
    reference, _ = found["run"]
    expected_order = sorted(files[:8]) + sorted(files[8:16]) + files[16:]
    for kind, (result, stderr) in found.items():
        assert "records no" not in stderr, kind
        assert [r["image"] for r in result] == expected_order, kind
        for mine, theirs in zip(result, reference, strict=True):
            assert len(mine["predictions"]) == 3
            total = sum(p["probability"] for p in mine["predictions"])
            assert total == pytest.approx(1.0, abs=1e-4)
            assert {p["class"] for p in mine["predictions"]} == set(CLASSES)
            ours = {p["class"]: p["probability"] for p in mine["predictions"]}
            want = {p["class"]: p["probability"] for p in theirs["predictions"]}
            for name in CLASSES:
                assert ours[name] == pytest.approx(want[name], abs=1e-4), kind


def test_predict_writes_csv(run, tmp_path):
    root, paths, _ = run
    out = tmp_path / "answers.csv"
    done = run_tool(
        "predict",
        f"--model_path={paths['keras']}",
        "--top_k=2",
        f"--output={out}",
        str(root / "images" / "val" / "red"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == ""
    rows = _csv(out.read_text())
    expected = [
        str(root / "images" / "val" / "red" / f"{i}.png") for i in range(4)
    ]
    assert [r["image"] for r in rows] == [f for f in expected for _ in range(2)]
    assert [r["rank"] for r in rows] == ["1", "2"] * 4
    for first, second in zip(rows[::2], rows[1::2], strict=True):
        assert float(first["probability"]) >= float(second["probability"])
        assert first["class"] in CLASSES


def test_help_answers_before_tensorflow(no_tensorflow):
    done = run_tool("predict", "--help", env=no_tensorflow)
    assert done.returncode == 0, done.stderr[-2000:]
    for flag in ("--model_path", "--run_dir", "--top_k", "--format"):
        assert flag in done.stdout
    assert "tensorflow" not in done.stdout.lower()


@pytest.mark.parametrize(
    "images, message",
    [
        (["{root}/nothing.jpg"], "{root}/nothing.jpg: no such file or folder"),
        (["{root}/*.gif"], "{root}/*.gif: the glob matches no file"),
        (["{root}/notes.jpg"], "{root}/notes.jpg: not an image (JPEG, PNG"),
        (["{root}/empty"], "{root}/empty: the folder has no images"),
        ([], "no images: give files, folders or globs"),
    ],
)
def test_bad_images_are_one_line_before_tensorflow(
    images, message, no_tensorflow, tmp_path
):
    (tmp_path / "notes.jpg").write_text("not a picture")
    (tmp_path / "empty").mkdir()
    (tmp_path / "model.keras").write_bytes(b"")
    done = run_tool(
        "predict",
        f"--model_path={tmp_path / 'model.keras'}",
        *[i.format(root=tmp_path) for i in images],
        env=no_tensorflow,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "kb-predict: error: " + message.format(root=tmp_path)
    )


def test_a_damaged_image_is_one_line(run, tmp_path):
    _, paths, _ = run
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    done = run_tool("predict", f"--model_path={paths['keras']}", str(broken))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == (
        f"kb-predict: error: {broken}: damaged image, cannot be decoded"
    )


def test_an_image_declaring_a_huge_size_is_refused_in_capped_memory(tmp_path):
    import resource
    import subprocess
    import sys

    import kerasblocks as kb
    import zoo
    from kerasblocks import testing
    from tests.tools._cli import REPO

    model = zoo.create_model("lenet", input_shape=(16, 16, 3), num_classes=3)
    kb.io.save_model(model, tmp_path / "model.keras")
    bomb = tmp_path / "huge.png"
    bomb.write_bytes(testing.oversized_png(40000, 40000))
    # kb-predict's address space: ~2.5 GB for TensorFlow and Keras; the
    # image decoded as RGB would need 4.8 GB more.
    cap = 4 << 30
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.predict",
            f"--model_path={tmp_path / 'model.keras'}",
            str(bomb),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (cap, cap)),
    )
    assert done.returncode == 2, done.stderr[-3000:]
    # The notice that the file records no image convention, then:
    assert done.stderr.strip().splitlines()[1:] == [
        f"kb-predict: error: {bomb}: 40000x40000 = 1600000000 pixels, over "
        "the limit max_image_pixels=67108864"
    ]
    # --max_image_pixels moves the limit: a 16x16 image (256 pixels) is
    # refused under 255 and predicted under 256.
    image = tmp_path / "small.png"
    image.write_bytes(testing.oversized_png(16, 16, rows=16))
    model_flag = f"--model_path={tmp_path / 'model.keras'}"
    done = run_tool("predict", model_flag, "--max_image_pixels=255", str(image))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == (
        f"kb-predict: error: {image}: 16x16 = 256 pixels, over the limit "
        "max_image_pixels=255"
    )
    done = run_tool("predict", model_flag, "--max_image_pixels=256", str(image))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[0] == "image,rank,class,probability"
    assert len(done.stdout.splitlines()) == 1 + 3
