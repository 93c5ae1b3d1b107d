"""kb-train, kb-evaluate and kb-export on the user's own files, as real
processes: image folders and TFRecord shards the tests write (a solid
colour per class with a little noise, so a short run must learn them),
bad input, kill -9 and exact resume (more in test_train_sources_resume)."""

import json

import numpy as np
import pytest

from tests.records import example, write_records
from tests.tools._cli import refusal, run_tool

COLOURS = ((220, 30, 30), (30, 220, 30), (30, 30, 220))
PER_CLASS = 40
# 120 images: 96 to train, 24 to validate; 6 steps an epoch of 16.
# LeNet without batch norm (18 steps are too few for its moving
# statistics) and with ReLUs (sigmoids learn too slowly for 18 steps).
TRAIN = [
    "--model=lenet",
    '--model_overrides={"activation": "relu"}',
    "--image_size=16",
    "--batch_size=16",
    "--steps=18",
    "--checkpoint_every=4",
    "--jit_compile=false",
    "--deterministic",
    "--export=keras",
]


def write_folder(root, per_class=PER_CLASS, gray=False, size=12):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, colour in enumerate(COLOURS):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            noise = rng.integers(-25, 25, (size, size, 3))
            pixels = np.clip(np.asarray(colour) + noise, 0, 255)
            image = Image.fromarray(pixels.astype(np.uint8))
            if gray:
                image = image.convert("L")
            image.save(folder / f"{i:03d}.png")
    return root


def _weights(path):
    import kerasblocks as kb

    return [v.numpy() for v in kb.io.load_model(path, compile=False).weights]


def _figures(run):
    metrics = json.loads((run / "metrics.json").read_text())
    return [
        {k: v for k, v in h.items() if k != "examples_per_s"}
        for h in metrics["history"]
    ]


def _same_runs(a, b):
    for x, y in zip(
        _weights(a / "export" / "model.keras"),
        _weights(b / "export" / "model.keras"),
        strict=True,
    ):
        np.testing.assert_array_equal(x, y)
    assert _figures(a) == _figures(b)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One image folder and its TFRecord shards for the whole module."""
    from kerasblocks.data import write_image_tfrecords

    root = tmp_path_factory.mktemp("sources")
    folder = write_folder(root / "images")
    write_image_tfrecords(str(folder), str(root / "shards" / "data"), 4)
    return root


@pytest.fixture(scope="module")
def folder_run(files):
    """An uninterrupted run on the folder."""
    out = files / "runs" / "folder-whole"
    done = run_tool(
        "train",
        *TRAIN,
        f"--dataset=folder:{files / 'images'}",
        f"--out_dir={out}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_a_short_run_on_a_folder_learns_it_and_evaluates_and_exports(
    files, folder_run
):
    history = json.loads((folder_run / "metrics.json").read_text())["history"]
    assert history[-1]["val_accuracy"] >= 0.9, history
    record = json.loads((folder_run / "model_config.json").read_text())
    assert record["image_size"] == [16, 16]
    flags = json.loads((folder_run / "flags.json").read_text())
    assert flags["image_size"] == [16, 16] and flags["cache"] is None
    evaluated = run_tool(
        "evaluate",
        f"--run_dir={folder_run}",
        f"--out_dir={files / 'evaluation'}",
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "(24 examples)" in evaluated.stdout
    result = json.loads((files / "evaluation" / "evaluation.json").read_text())
    assert result["accuracy"] == pytest.approx(history[-1]["val_accuracy"])
    assert np.sum(result["confusion_matrix"]) == 24
    exported = run_tool(
        "export",
        f"--run_dir={folder_run}",
        "--formats=h5",
        f"--out_dir={files / 'exported'}",
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert _weights(files / "exported" / "export" / "model.h5")[0].shape == (
        _weights(folder_run / "export" / "model.keras")[0].shape
    )
    # A model file of the user's (no run): --dataset gives its image
    # signatures the class names of the data.
    exported = run_tool(
        "export",
        f"--model_path={folder_run / 'export' / 'model.keras'}",
        f"--dataset=folder:{files / 'images'}",
        "--formats=saved_model",
        f"--out_dir={files / 'user'}",
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    import tensorflow as tf

    served = tf.saved_model.load(
        str(files / "user" / "export" / "saved_model" / "1")
    )
    colours = np.asarray(COLOURS, np.uint8)[:, None, None, :]
    images = tf.constant(np.broadcast_to(colours, (3, 20, 24, 3)))
    answer = served.signatures["serving_default"](images=images)
    top = [name.decode() for name in answer["top_k_classes"].numpy()[:, 0]]
    assert top == ["class_0", "class_1", "class_2"]
    assert refusal(
        "export",
        f"--run_dir={folder_run}",
        f"--dataset=folder:{files / 'images'}",
    ) == [
        "kb-export: error: --dataset applies to --model_path; a run's export "
        "takes its class names from the run. Drop --dataset."
    ]
    assert refusal(
        "export",
        f"--model_path={folder_run / 'export' / 'model.keras'}",
        "--dataset=digits",
        f"--out_dir={files / 'user-digits'}",
    ) == [
        "kb-export: error: --dataset=digits has 10 classes; the model "
        "outputs 3."
    ]
    assert not (files / "user-digits").exists()
    assert refusal(
        "export",
        f"--model_path={folder_run / 'export' / 'model.keras'}",
        "--dataset=sine_wave",
        f"--out_dir={files / 'user-sine'}",
    ) == [
        "kb-export: error: --dataset=sine_wave: image classification data only"
    ]


def test_kill_and_resume_on_a_folder_matches_the_whole_run(files, folder_run):
    out = files / "runs" / "folder-killed"
    args = [*TRAIN, f"--dataset=folder:{files / 'images'}", f"--out_dir={out}"]
    killed = run_tool("train", *args, env={"KB_FAULT_KILL_AT_STEP": "10"})
    assert killed.returncode == -9
    resumed = run_tool("train", *args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from ckpt-000000008 (step 8)" in resumed.stdout
    _same_runs(folder_run, out)


def test_kill_and_resume_on_tfrecord_shards_with_a_cache(files):
    shards = files / "shards" / "data-*"
    args = [*TRAIN, f"--dataset=tfrecord:{shards}", "--cache=memory"]
    whole = run_tool("train", *args, f"--out_dir={files / 'runs' / 'tw'}")
    assert whole.returncode == 0, whole.stderr[-3000:]
    out = f"--out_dir={files / 'runs' / 'tk'}"
    killed = run_tool("train", *args, out, env={"KB_FAULT_KILL_AT_STEP": "10"})
    assert killed.returncode == -9
    resumed = run_tool("train", *args, out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from ckpt-000000008 (step 8)" in resumed.stdout
    _same_runs(files / "runs" / "tw", files / "runs" / "tk")


def test_a_grayscale_folder_for_an_rgb_model_converts_with_one_notice(
    tmp_path,
):
    folder = write_folder(tmp_path / "gray", per_class=6, gray=True)
    done = run_tool(
        "train",
        "--model=lenet_bn",
        '--model_overrides={"input_shape": [16, 16, 3]}',
        f"--dataset=folder:{folder}",
        "--batch_size=4",
        "--steps=2",
        "--jit_compile=false",
        "--export=keras",
        f"--out_dir={tmp_path / 'run'}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    notices = [line for line in done.stderr.splitlines() if "notice:" in line]
    assert notices == [
        f"notice: folder:{folder}: images have 1 channel(s); converting to "
        "the model's 3."
    ]


@pytest.fixture(scope="module")
def bad_files(files):
    root = files / "bad"
    (root / "empty" / "a").mkdir(parents=True)
    (root / "empty" / "b").mkdir()
    png = (files / "images" / "class_0" / "000.png").read_bytes()
    (root / "empty" / "a" / "0.png").write_bytes(png)
    for name in ("a", "b"):
        (root / "corrupt" / name).mkdir(parents=True)
        for i in range(3):
            (root / "corrupt" / name / f"{i}.png").write_bytes(png)
    (root / "corrupt" / "b" / "3.png").write_bytes(png[: len(png) // 2])
    write_records(
        root / "nolabel.tfrecord", [example(**{"image/encoded": png})]
    )
    write_records(
        root / "label5.tfrecord",
        [
            example(**{"image/encoded": png, "image/class/label": label})
            for label in (0, 5)
        ],
    )
    return root


@pytest.mark.parametrize(
    "dataset, extra, message",
    [
        (
            "folder:{root}/missing",
            [],
            "folder {root}/missing: no such directory",
        ),
        ("folder:{root}/empty", [], "folder {root}/empty/b: no images"),
        (
            "tfrecord:{root}/*.none",
            [],
            "tfrecord: {root}/*.none matches no files",
        ),
        (
            "tfrecord:{root}/nolabel.tfrecord",
            [],
            "nolabel.tfrecord: a record lacks image/encoded or "
            "image/class/label",
        ),
        (
            "tfrecord:{root}/label5.tfrecord,{root}/label5.tfrecord",
            ['--model_overrides={"num_classes": 3}'],
            "label5.tfrecord: label 5 is outside the classes 0..2 "
            "(num_classes=3)",
        ),
        (
            "folder:{root}/corrupt",
            ["--strict_data"],
            "folder:{root}/corrupt: 1 unreadable image(s): "
            "{root}/corrupt/b/3.png (truncated PNG)",
        ),
        (
            "folder:{images}",
            ["--batch_size=500"],
            "--batch_size=500 is larger than the training split of folder:",
        ),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    files, bad_files, tmp_path, dataset, extra, message
):
    where = {"root": bad_files, "images": files / "images"}
    out = tmp_path / "run"
    done = run_tool(
        "train",
        "--model=lenet_bn",
        "--image_size=16",
        f"--dataset={dataset.format(**where)}",
        *extra,
        f"--out_dir={out}",
    )
    assert done.returncode == 2, done.stderr[-3000:]
    lines = [
        line
        for line in done.stderr.strip().splitlines()
        if "Warning" not in line
    ]
    assert lines[-1].startswith("kb-train: error:")
    assert message.format(**where) in lines[-1], lines[-1]
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_benchmark_measures_the_pipeline_against_the_step(files, tmp_path):
    out = tmp_path / "bench.json"
    done = run_tool(
        "benchmark",
        "--model=lenet_bn",
        "--input_size=16",
        f"--dataset=folder:{files / 'images'}",
        "--batch_sizes=8",
        "--modes=graph",
        "--rounds=1",
        f"--out={out}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["setup"]["image_shape"] == [16, 16, 3]
    # 96 training images: 12 batches of 8 per measurement.
    assert report["setup"]["batches_per_measurement"] == 12
    for kind in ("pipeline", "step", "end_to_end"):
        assert report[kind]["warmup"]["images"] == 96
        assert report[kind]["median"] > 0
    rows = [line.split()[0] for line in done.stdout.splitlines()[2:5]]
    assert rows == ["pipeline", "step", "end_to_end"]
    assert "end_to_end/step = " in done.stdout
    # Opening the folder decoded its 120 images once; said, and set
    # against one epoch at the end-to-end rate.
    assert report["open"]["images"] == 120 and report["open"]["seconds"] > 0
    epoch = 96 / report["end_to_end"]["median"]
    assert report["ratios"]["open/epoch"] == pytest.approx(
        report["open"]["seconds"] / epoch
    )
    assert "open: 120 images checked in " in done.stdout
