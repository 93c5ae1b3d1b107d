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
    _refusals,
    make_pipeline,
    write_image_tfrecords,
)
from kerasblocks.training.config import TrainConfig
from kerasblocks.training.errors import UserInputError
from tests.records import write_image_shard


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


def _refusal(pipeline):
    """The one-line `DataError` a strict pipeline's refusal comes to."""
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        for _ in pipeline:
            pass
    error = _refusals.data_error(raised.value)
    assert error is not None, raised.value.message
    return str(error)


def test_every_source_names_an_image_it_refuses_mid_run(tmp_path, capfd):
    # The up-front checks pass; then a folder's image and a shard are
    # replaced by ones over the limit. (tfds reads no header up front:
    # tests/tools/test_train_limits.py.)
    root = _folder(tmp_path / "f", {"a": [(8, 3)] * 3, "b": [(8, 3)] * 3})
    train, val = tmp_path / "train.tfrecord", tmp_path / "val.tfrecord"
    small = [(_png(8), i % 2, None) for i in range(4)]
    sources = []
    for strict in (False, True):
        folder = FolderDataset(
            str(root), val_fraction=0.34, max_pixels=100, strict=strict
        )
        write_image_shard(train, small)
        write_image_shard(val, small)
        records = TFRecordSource(
            str(train), str(val), max_pixels=100, strict=strict
        )
        sources.append((folder, records))
    bomb = sources[0][0]._splits["train"][0][2]
    with open(bomb, "wb") as f:
        f.write(_png(11))
    write_image_shard(
        train, small[:2] + [(testing.oversized_png(1000, 1000), 1, None)]
    )
    over = "(11x11 = 121 pixels, over the limit max_image_pixels=100)"
    over_shard = (
        f"{train} record 2 (1000x1000 = 1000000 pixels, over the limit "
        "max_image_pixels=100)"
    )
    (folder, records), (strict_folder, strict_records) = sources
    capfd.readouterr()
    for data, kept in ((folder, 3), (records, 2)):
        labels = [
            y.numpy()
            for _, y in make_pipeline(data, "train", 1, image_shape=(8, 8, 3))
        ]
        assert len(labels) == kept
    assert capfd.readouterr().err.splitlines() == [
        f"warning: folder:{root}: skipping {bomb} {over}",
        f"warning: tfrecord:{train},{val}: skipping {over_shard}",
    ]
    strict = "; drop --strict_data to skip such images"
    assert _refusal(
        make_pipeline(strict_folder, "train", 2, image_shape=(8, 8, 3))
    ) == (f"folder:{root}: {bomb} {over}{strict}")
    assert _refusal(
        make_pipeline(strict_records, "train", 2, image_shape=(8, 8, 3))
    ) == (f"tfrecord:{train},{val}: {over_shard}{strict}")
    # Another error of the same run is no refusal of the user's data.
    assert (
        _refusals.data_error(tf.errors.InvalidArgumentError(None, None, "x"))
        is None
    )
    assert _refusals.data_error(ValueError(_refusals._REFUSED)) is None


def test_channels_given_decide_instead_of_the_majority(tmp_path, capsys):
    root = _folder(tmp_path, {"a": [(8, 1), (8, 3), (8, 3)], "b": [(8, 3)] * 3})
    data = FolderDataset(str(root), val_fraction=0.34, channels=1)
    assert data.example_shape == (8, 8, 1)
    make_pipeline(data, "train", 2)
    assert capsys.readouterr().err.splitlines() == [
        f"notice: folder:{root}: 5 of 6 images have 3 channel(s); "
        "converting to the model's 1."
    ]
    with pytest.raises(DataError, match="channels=1 \\(--channels\\), but the"):
        make_pipeline(data, "train", 2, image_shape=(8, 8, 3))
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        FolderDataset(str(root), channels=2)
    with pytest.raises(UserInputError, match="--channels must be 1 or 3"):
        TrainConfig(channels=4).validate()
