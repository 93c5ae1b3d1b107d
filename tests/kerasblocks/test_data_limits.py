"""The data sources' limits, in process: images over the pixel limit are
skipped by name before decoding (or refused under strict), labels are
checked against the class list, and a set's channels are its majority's.
kb-train's side of the same is in tests/tools/test_train_limits.py."""

import warnings

import numpy as np
import pytest
import tensorflow as tf

from kerasblocks import testing
from kerasblocks.data import (
    DataError,
    FolderDataset,
    TFRecordSource,
    make_pipeline,
    streams,
    write_image_tfrecords,
)
from kerasblocks.training.config import TrainConfig
from tests.records import write_image_shard
from tools import _common


def _png(size, channels=3, value=100):
    image = np.full((size, size, channels), value, np.uint8)
    return tf.io.encode_png(image).numpy()


def _folder(root, sizes):
    """`{class: [(size, channels), ...]}` as PNG files, in name order."""
    for name, images in sizes.items():
        (root / name).mkdir(parents=True)
        for i, (size, channels) in enumerate(images):
            (root / name / f"{i:03d}.png").write_bytes(_png(size, channels))
    return root


def test_the_tools_default_is_the_librarys():
    assert (
        _common.MAX_IMAGE_PIXELS
        == streams.MAX_PIXELS
        == TrainConfig().max_image_pixels
        == 8192 * 8192
    )


@pytest.mark.parametrize("verify", ["header", "decode"])
def test_a_folder_skips_images_over_the_limit_by_name(tmp_path, verify):
    root = _folder(tmp_path, {"a": [(8, 3)] * 4 + [(11, 3)], "b": [(8, 3)] * 5})
    with pytest.warns(UserWarning) as caught:
        data = FolderDataset(
            str(root), val_fraction=0.2, max_pixels=100, verify=verify
        )
    (warning,) = [str(w.message) for w in caught]
    assert warning == (
        f"folder:{root}: skipping 1 unreadable image(s): {root}/a/004.png "
        "(11x11 = 121 pixels, over the limit max_image_pixels=100)"
    )
    assert data.num_train + data.num_val == 9
    with pytest.raises(DataError, match="over the limit max_image_pixels=100"):
        FolderDataset(str(root), max_pixels=100, strict=True, verify=verify)


def test_the_pipeline_refuses_an_image_that_grew_after_the_check(tmp_path):
    root = _folder(tmp_path, {"a": [(8, 3)] * 4, "b": [(8, 3)] * 4})
    data = FolderDataset(str(root), val_fraction=0.25, max_pixels=100)
    assert data.num_train == 6
    # Replaced after the up-front check: the pipeline reads its header
    # again and drops it, undecoded, with its own label.
    bomb = data._splits["train"][0][0]
    with open(bomb, "wb") as f:
        f.write(testing.oversized_png(40000, 40000))
    expected = sorted(data._splits["train"][1][1:].tolist())
    batches = list(make_pipeline(data, "train", 8, image_shape=(8, 8, 3)))
    labels = np.concatenate([labels.numpy() for _, labels in batches])
    assert sorted(labels.tolist()) == expected
    assert len(expected) == 5


def test_a_tfrecord_source_skips_records_over_the_limit(tmp_path):
    small, large = _png(8), _png(12)
    path = write_image_shard(
        tmp_path / "data.tfrecord",
        [(small, i % 2, None) for i in range(8)]
        + [(large, 1, None), (b"not an image", 0, None)],
    )
    with pytest.warns(UserWarning) as caught:
        data = TFRecordSource(path, max_pixels=100, val_fraction=0.25)
    (warning,) = [str(w.message) for w in caught]
    assert warning == (
        f"tfrecord:{path}: skipping 2 unreadable image(s): {path} record 8 "
        "(12x12 = 144 pixels, over the limit max_image_pixels=100); "
        f"{path} record 9 (not a JPEG, PNG, BMP or GIF image)"
    )
    # The seeded split is drawn over all 10 records, then 2 are skipped.
    assert data.num_train + data.num_val == 8
    for split in ("train", "val"):
        images = [
            x for x, _ in make_pipeline(data, split, 1, image_shape=(8, 8, 3))
        ]
        size = data.num_train if split == "train" else data.num_val
        assert len(images) == size
    with pytest.raises(DataError, match="record 8 \\(12x12 = 144 pixels"):
        TFRecordSource(path, max_pixels=100, strict=True)


def test_kb_prepare_skips_an_oversized_image_by_name(tmp_path):
    root = _folder(tmp_path / "images", {"a": [(8, 3)] * 2, "b": [(8, 3)] * 2})
    bomb = root / "a" / "002.png"
    bomb.write_bytes(testing.oversized_png(40000, 40000))
    with pytest.warns(UserWarning, match=f"{bomb} \\(40000x40000"):
        paths = write_image_tfrecords(str(root), str(tmp_path / "out"), 1)
    assert sum(1 for _ in tf.data.TFRecordDataset(paths)) == 4


NAMED = [(0, "cat"), (1, "dog")] * 3


@pytest.mark.parametrize(
    "records, options, message",
    [
        (
            [*NAMED, (5, "bird")],
            {},
            "label 5 is outside the classes 0..1 (the 2 classes "
            "image/class/text names: cat, dog)",
        ),
        (
            [(0, None), (1, None)] * 3 + [(-1, None)],
            {},
            "label -1 is outside the classes 0..1 (label 2 does not occur, "
            "and no image/class/text names the classes; give num_classes if "
            "some classes have no examples)",
        ),
        (
            [(0, None), (2, None)] * 3,
            {},
            "label 2 is outside the classes 0..0 (label 1 does not occur, "
            "and no image/class/text names the classes; give num_classes if "
            "some classes have no examples)",
        ),
        (
            [*NAMED, (1, "cow")],
            {},
            "label 1 has several names in image/class/text: cow, dog",
        ),
        (
            [*NAMED, (2, "bird")],
            {"num_classes": 2},
            "label 2 is outside the classes 0..1 (num_classes=2)",
        ),
    ],
    ids=["named-apart", "negative", "gap", "two-names", "num-classes"],
)
def test_labels_are_checked_against_the_class_list(
    tmp_path, records, options, message
):
    path = write_image_shard(
        tmp_path / "data.tfrecord",
        [(_png(8), label, text) for label, text in records],
    )
    with pytest.raises(DataError) as raised:
        TFRecordSource(path, **options)
    assert str(raised.value).endswith(f"{path}: {message}")


@pytest.mark.parametrize(
    "records, options, classes, names",
    [
        ([*NAMED, (2, "bird")], {}, 3, ["cat", "dog", "bird"]),
        ([(0, None), (1, None)] * 3, {}, 2, None),
        ([(0, None), (2, None)] * 3, {"num_classes": 4}, 4, None),
    ],
)
def test_labels_within_the_class_list_open(
    tmp_path, records, options, classes, names
):
    path = write_image_shard(
        tmp_path / "data.tfrecord",
        [(_png(8), label, text) for label, text in records],
    )
    data = TFRecordSource(path, **options)
    assert (data.num_classes, data.class_names) == (classes, names)


def test_a_sets_channels_are_the_majoritys(tmp_path, capsys):
    # The first file is grayscale; 5 of 6 are RGB.
    root = _folder(tmp_path, {"a": [(8, 1), (8, 3), (8, 3)], "b": [(8, 3)] * 3})
    data = FolderDataset(str(root), val_fraction=0.34)
    assert data.example_shape == (8, 8, 3)
    assert data.channel_counts == {1: 1, 3: 5}
    for split in ("train", "val", "train"):
        make_pipeline(data, split, 2, image_shape=(8, 8, 3))
    assert capsys.readouterr().err.splitlines() == [
        f"notice: folder:{root}: 1 of 6 images have 1 channel(s); "
        "converting to the model's 3."
    ]
    gray = _folder(tmp_path / "gray", {"a": [(8, 1)] * 3, "b": [(8, 3)]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert FolderDataset(str(gray)).example_shape == (8, 8, 1)
