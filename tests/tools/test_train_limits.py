"""kb-train against hostile and faulty data, as real processes: an image
whose header declares 40000x40000 pixels (1.5 MB on disk, 1.6 GB
decoded) under a memory cap, labels outside the classes, symlink loops,
a folder with only val/, and a set whose first image is grayscale."""

import io
import json
import re
import resource

import numpy as np
import pytest

from kerasblocks import testing
from tests.records import write_image_shard
from tests.tools._cli import run_tool

# kb-train's address space: TensorFlow, Keras and the zoo take ~2.5 GB of
# it; decoding the oversized image would need 1.6 GB more (6.4 as float).
MEMORY_CAP = 4 << 30
TINY = [
    "--model=lenet",
    "--image_size=16",
    "--batch_size=4",
    "--epochs=1",
    "--jit_compile=false",
    "--export=keras",
]


def _cap():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def train(*args, capped=False):
    return run_tool("train", *TINY, *args, preexec_fn=_cap if capped else None)


def write_images(folder, colour, count, gray=()):
    from PIL import Image

    rng = np.random.default_rng(len(str(folder)))
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        noise = rng.integers(-25, 25, (12, 12, 3))
        image = Image.fromarray(
            np.clip(np.asarray(colour) + noise, 0, 255).astype(np.uint8)
        )
        if i in gray:
            image = image.convert("L")
        image.save(folder / f"{i:03d}.png")


def write_classes(root, per_class=6, gray=()):
    for name, colour in (("a", (220, 30, 30)), ("b", (30, 30, 220))):
        write_images(
            root / name, colour, per_class, gray if name == "a" else ()
        )
    return root


def assert_one_line_error(done, out, message):
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [
        line
        for line in done.stderr.strip().splitlines()
        if "Warning" not in line and not line.startswith("  ")
    ]
    assert len(lines) == 1, lines
    assert lines[0].startswith("kb-train: error: "), lines[0]
    assert message in lines[0], lines[0]
    assert not out.exists()


@pytest.fixture(scope="module")
def oversized(tmp_path_factory):
    root = write_classes(tmp_path_factory.mktemp("oversized") / "images")
    bomb = root / "a" / "000-huge.png"
    bomb.write_bytes(testing.oversized_png(40000, 40000))
    assert bomb.stat().st_size < 2_000_000
    return root, bomb


def test_an_oversized_image_is_skipped_by_name_and_training_goes_on(
    oversized, tmp_path
):
    root, bomb = oversized
    out = tmp_path / "run"
    done = train(f"--dataset=folder:{root}", f"--out_dir={out}", capped=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        f"skipping 1 unreadable image(s): {bomb} (40000x40000 = "
        "1600000000 pixels, over the limit max_image_pixels=67108864)"
    ) in done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    # The seeded split of 13 files trains on 10 (9 if the skipped one is
    # among them): 2 full batches of 4.
    assert metrics["history"][-1]["step"] == 2


def test_an_oversized_image_under_strict_data_is_one_line(oversized, tmp_path):
    root, bomb = oversized
    out = tmp_path / "run"
    done = train(
        f"--dataset=folder:{root}",
        "--strict_data",
        "--max_image_pixels=1000",
        f"--out_dir={out}",
        capped=True,
    )
    # The 12x12 images (144 pixels) are within the flag's limit.
    assert_one_line_error(
        done,
        out,
        f"1 unreadable image(s): {bomb} (40000x40000 = 1600000000 pixels, "
        "over the limit max_image_pixels=1000)",
    )


def test_max_image_pixels_is_refused_for_a_built_in_data_set(tmp_path):
    out = tmp_path / "run"
    done = train("--dataset=digits", "--max_image_pixels=100")
    assert_one_line_error(
        done, out, "--max_image_pixels applies to the folder:, tfrecord:"
    )


def _shard(path, records):
    """A shard of one 8x8 image per `(label, class name or None)`."""
    import tensorflow as tf

    png = tf.io.encode_png(np.full((8, 8, 3), 100, np.uint8)).numpy()
    write_image_shard(path, [(png, label, text) for label, text in records])


NAMED = [(0, "cat"), (1, "dog")] * 4


@pytest.mark.parametrize(
    "records, message",
    [
        (
            [*NAMED, (5, None)],
            "label 5 is outside the classes 0..1 (the 2 classes "
            "image/class/text names: cat, dog)",
        ),
        (
            [(0, None), (1, None)] * 4 + [(2**40, None)],
            f"label {2**40} is outside the classes 0..1 (label 2 does not "
            "occur",
        ),
    ],
    ids=["unnamed", "absurd"],
)
def test_a_label_outside_the_classes_is_one_line(tmp_path, records, message):
    shard = tmp_path / "data.tfrecord"
    _shard(shard, records)
    out = tmp_path / "run"
    done = train(f"--dataset=tfrecord:{shard}", f"--out_dir={out}")
    assert_one_line_error(done, out, message)


def test_the_models_num_classes_is_the_class_list(tmp_path):
    shard = tmp_path / "data.tfrecord"
    _shard(shard, [(0, None), (1, None)] * 4 + [(3, None)])
    out = tmp_path / "run"
    done = train(
        f"--dataset=tfrecord:{shard}",
        '--model_overrides={"num_classes": 3}',
        f"--out_dir={out}",
    )
    assert_one_line_error(
        done, out, "label 3 is outside the classes 0..2 (num_classes=3)"
    )


@pytest.mark.parametrize("target", ["self", "parent"])
def test_a_symlink_loop_is_one_line(tmp_path, target):
    root = write_classes(tmp_path / "images")
    loop = root / "loop"
    loop.symlink_to(loop if target == "self" else root)
    out = tmp_path / "run"
    done = train(f"--dataset=folder:{root}", f"--out_dir={out}")
    message = (
        f"folder {loop}: Too many levels of symbolic links (a symlink loop?)"
        if target == "self"
        else f"folder {loop}: a symlink to {root}, which holds it"
    )
    assert_one_line_error(done, out, message)


def test_a_folder_with_only_val_says_train_is_missing(tmp_path):
    root = tmp_path / "images"
    write_classes(root / "val")
    out = tmp_path / "run"
    done = train(f"--dataset=folder:{root}", f"--out_dir={out}")
    assert_one_line_error(
        done, out, f"folder {root}: has val/ but no train/; a split folder"
    )


def test_one_grayscale_image_first_does_not_make_the_set_grayscale(tmp_path):
    # a/000.png, the first file, is grayscale; the other 11 are RGB.
    root = write_classes(tmp_path / "images", gray=(0,))
    out = tmp_path / "run"
    done = train(f"--dataset=folder:{root}", f"--out_dir={out}")
    assert done.returncode == 0, done.stderr[-3000:]
    notices = [line for line in done.stderr.splitlines() if "notice:" in line]
    assert notices == [
        f"notice: folder:{root}: 1 of 12 images have 1 channel(s); "
        "converting to the model's 3."
    ]
    recorded = json.loads((out / "model_config.json").read_text())
    assert recorded["config"]["config"]["input_shape"] == [16, 16, 3]


def test_channels_given_decide_for_the_set_and_the_model(tmp_path):
    root = write_classes(tmp_path / "images", gray=(0,))
    out = tmp_path / "run"
    done = train(f"--dataset=folder:{root}", "--channels=1", f"--out_dir={out}")
    assert done.returncode == 0, done.stderr[-3000:]
    notices = [line for line in done.stderr.splitlines() if "notice:" in line]
    assert notices == [
        f"notice: folder:{root}: 11 of 12 images have 3 channel(s); "
        "converting to the model's 1."
    ]
    recorded = json.loads((out / "model_config.json").read_text())
    assert recorded["config"]["config"]["input_shape"] == [16, 16, 1]
    assert json.loads((out / "flags.json").read_text())["channels"] == 1
    refused = run_tool("train", "--channels=3", timeout=120)
    assert_one_line_error(
        refused, tmp_path / "none", "--channels applies to the folder:"
    )


@pytest.fixture(scope="module")
def tfds_with_a_large_image(tmp_path_factory):
    """A tfds: data set (read with no header check up front) whose
    training split holds one 40x40 image among 12x12 ones."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    def examples(count, large):
        for i in range(count):
            size = 40 if i == large else 12
            image = np.full((size, size, 3), 40 + 150 * (i % 2), np.uint8)
            encoded = io.BytesIO(tf.io.encode_png(image).numpy())
            yield i, {"image": encoded, "label": i % 2}

    class KbOneLarge(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return self.dataset_info_from_configs(
                features=tfds.features.FeaturesDict(
                    {
                        "image": tfds.features.Image(shape=(None, None, 3)),
                        "label": tfds.features.ClassLabel(names=["a", "b"]),
                    }
                ),
                supervised_keys=("image", "label"),
            )

        def _split_generators(self, dl_manager):
            return {"train": examples(12, 5), "test": examples(4, None)}

        def _generate_examples(self):
            raise NotImplementedError  # the splits are made above

    where = tmp_path_factory.mktemp("tfds")
    KbOneLarge(data_dir=str(where)).download_and_prepare(
        download_dir=str(where / "downloads")
    )
    return where


def test_a_streamed_image_over_the_limit_is_named_mid_run(
    tfds_with_a_large_image, tmp_path
):
    source = [
        "--dataset=tfds:kb_one_large",
        f"--data_dir={tfds_with_a_large_image}",
        "--max_image_pixels=1000",
        "--steps=3",
    ]
    over = "(40x40 = 1600 pixels, over the limit max_image_pixels=1000)"
    out = tmp_path / "strict"
    done = train(*source, "--strict_data", f"--out_dir={out}")
    assert_one_line_error(done, out, "kb-train: error: tfds:kb_one_large: ")
    line = done.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        "kb-train: error: tfds:kb_one_large: "
        r"kb_one_large-train\.tfrecord-00000-of-00001__\d+ "
        + re.escape(f"{over}; drop --strict_data to skip such images"),
        line,
    ), line
    out = tmp_path / "run"
    done = train(*source, f"--out_dir={out}")
    assert done.returncode == 0, done.stderr[-3000:]
    name = line.split(": ")[3].split(" ")[0]
    # Named once: the one epoch (3 batches of 4 planned) reads it once,
    # then ends a batch short.
    assert [
        line for line in done.stderr.splitlines() if "skipping" in line
    ] == [f"warning: tfds:kb_one_large: skipping {name} {over}"]
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert history[-1]["step"] == 3


@pytest.mark.parametrize("tool", ["train", "evaluate", "export", "benchmark"])
def test_every_tool_that_reads_data_takes_the_pixel_limit(tool):
    done = run_tool(tool, "--help", timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--max_image_pixels" in done.stdout
    assert "default: '67108864'" in done.stdout
