"""Streaming sources: image folders, TFRecord shards, TFDS directories.

The tests write small images whose class is visible in the pixels (a
solid colour per class), so labels can be checked against the images.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from kerasblocks import data
from kerasblocks.data import dataset as data_lib
from tests.kerasblocks.data_files import (
    _epoch,
    class_of,
    write_folder,
)
from tests.records import example, write_records


def test_folder_order_resume_and_labels(tmp_path):
    write_folder(tmp_path)
    dataset = data_lib.load_dataset(f"folder:{tmp_path}", seed=1)
    assert dataset.class_names == ["class_0", "class_1", "class_2"]
    assert (dataset.num_train, dataset.num_val) == (12, 3)
    assert dataset.num_classes == 3 and dataset.is_image
    assert dataset.example_shape == (24, 40, 3)  # the first file's
    full = _epoch(dataset)
    assert len(full) == 3
    for x, y in full:
        assert x.shape == (4, 16, 16, 3) and x.dtype == np.float32
        np.testing.assert_array_equal(class_of(x), y)
    # The order is a function of (seed, epoch) alone.
    again = _epoch(data_lib.load_dataset(f"folder:{tmp_path}", seed=1))
    for (x, y), (x2, y2) in zip(full, again, strict=True):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    other = _epoch(dataset, epoch=1)
    assert not all(
        np.array_equal(a[1], b[1]) for a, b in zip(full, other, strict=True)
    )
    # Resuming at batch k gives batches k.. of the full epoch, with the
    # same augmentation.
    augmented = _epoch(dataset, augment=True)
    resumed = _epoch(dataset, start_batch=1, augment=True)
    assert len(resumed) == 2
    for (x, y), (x2, y2) in zip(augmented[1:], resumed, strict=True):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    # Validation keeps its own order; every example once.
    val = data_lib.make_pipeline(dataset, "val", 2, image_shape=(8, 8, 3))
    labels = np.concatenate([y.numpy() for _, y in val])
    assert len(labels) == 3


def test_folder_splits_grayscale_cache_and_image_size(tmp_path, capsys):
    root = tmp_path / "split"
    write_folder(root / "train", per_class=(3, 3), gray=True)
    write_folder(root / "val", per_class=(1, 2), gray=True)
    dataset = data_lib.load_dataset(
        "folder:split", data_dir=str(tmp_path), image_size=12, cache="memory"
    )
    assert (dataset.num_train, dataset.num_val) == (6, 3)
    assert dataset.example_shape == (12, 12, 1)
    assert dataset.info["model_overrides"] == {"input_shape": (12, 12, 1)}
    first = _epoch(dataset, batch_size=3)
    second = _epoch(dataset, batch_size=3)
    assert "converting to the model's 3" in capsys.readouterr().err
    _epoch(dataset, batch_size=3)
    assert "converting" not in capsys.readouterr().err  # said once
    for (x, y), (x2, y2) in zip(first, second, strict=True):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
        # Grayscale converted to RGB: equal channels, brightness by class.
        np.testing.assert_allclose(x[..., 0], x[..., 2])
        np.testing.assert_array_equal(x.mean(axis=(1, 2, 3)) > 0.4, y == 1)
    resumed = _epoch(dataset, batch_size=3, start_batch=1)
    np.testing.assert_array_equal(resumed[0][1], first[1][1])
    val = data_lib.make_pipeline(dataset, "val", 3, image_shape=(12, 12, 1))
    assert next(iter(val))[1].numpy().tolist() == [0, 1, 1]
    os.makedirs(root / "val" / "class_9")
    with pytest.raises(data_lib.DataError, match=r"classes \['class_9'\]"):
        data_lib.load_dataset(f"folder:{root}")


def test_folder_corrupt_images_are_skipped_or_refused(tmp_path):
    write_folder(tmp_path, per_class=(4, 4), formats=("png", "jpg"))
    good = (tmp_path / "class_1" / "001.jpg").read_bytes()
    (tmp_path / "class_0" / "000.png").write_bytes(b"not an image")
    (tmp_path / "class_1" / "001.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "class_1" / "notes.txt").write_text("ignored")
    with pytest.warns(UserWarning) as caught:
        dataset = data_lib.load_dataset(f"folder:{tmp_path}")
    message = str(caught[0].message)
    assert "skipping 2 unreadable image(s)" in message
    assert "000.png (not a JPEG, PNG, BMP or GIF image)" in message
    assert "001.jpg (truncated JPEG)" in message
    assert dataset.num_train + dataset.num_val == 6
    for x, y in _epoch(dataset, batch_size=2):
        np.testing.assert_array_equal(class_of(x), y)
    with pytest.raises(data_lib.DataError, match="2 unreadable image"):
        data_lib.load_dataset(f"folder:{tmp_path}", strict=True)
    # A damaged body behind a sound frame: only decoding finds it, which
    # the default does; the header check alone lets it through.
    png = bytearray((tmp_path / "class_0" / "002.png").read_bytes())
    png[len(png) // 2 : len(png) // 2 + 40] = bytes(40)
    (tmp_path / "class_0" / "002.png").write_bytes(bytes(png))
    with pytest.warns(UserWarning, match="skipping 2 unreadable"):
        data_lib.load_dataset(f"folder:{tmp_path}", verify="header")
    with pytest.warns(UserWarning) as caught:
        dataset = data_lib.load_dataset(f"folder:{tmp_path}")
    assert "skipping 3 unreadable" in str(caught[0].message)
    assert "002.png (corrupt)" in str(caught[0].message)
    assert dataset.num_train + dataset.num_val == 5
    with pytest.raises(data_lib.DataError, match="3 unreadable image"):
        data_lib.load_dataset(f"folder:{tmp_path}", strict=True)
    with pytest.raises(ValueError, match="verify must be 'header' or 'dec"):
        data_lib.load_dataset(f"folder:{tmp_path}", verify="full")


def test_folder_bad_input_is_one_line(tmp_path):
    missing = tmp_path / "nowhere"
    cases = [(f"folder:{missing}", f"{missing}: no such directory")]
    (tmp_path / "flat").mkdir()
    cases.append((f"folder:{tmp_path / 'flat'}", "no class subfolders"))
    write_folder(tmp_path / "holes", per_class=(2, 2))
    (tmp_path / "holes" / "class_2").mkdir()
    cases.append(
        (f"folder:{tmp_path / 'holes'}", f"{tmp_path}/holes/class_2: no images")
    )
    for name, expected in cases:
        with pytest.raises(data_lib.DataError) as info:
            data_lib.load_dataset(name)
        assert expected in str(info.value) and "\n" not in str(info.value)
    write_folder(tmp_path / "small", per_class=(2, 2))
    dataset = data_lib.load_dataset(f"folder:{tmp_path / 'small'}")
    with pytest.raises(data_lib.DataError, match="batch size 8 is larger"):
        _epoch(dataset, batch_size=8)
    digits = data_lib.load_dataset("digits")
    with pytest.raises(data_lib.DataError) as info:
        _epoch(digits, batch_size=2000)
    assert str(info.value) == (
        "digits: batch size 2000 is larger than the train split (1438 "
        "examples); lower --batch_size."
    )


def test_tfrecord_shards_order_resume_and_labels(tmp_path):
    write_folder(tmp_path / "images", per_class=(7, 6, 5))
    written = data.write_image_tfrecords(
        str(tmp_path / "images"), str(tmp_path / "shards" / "data"), 3
    )
    assert [os.path.basename(p) for p in written] == [
        f"data-0000{i}-of-00003" for i in range(3)
    ]
    first = next(iter(tf.data.TFRecordDataset(written[0])))
    example = tf.train.Example.FromString(first.numpy()).features.feature
    assert example["image/format"].bytes_list.value[0] in (b"png", b"jpeg")
    assert example["image/height"].int64_list.value[0] in (24, 32)
    label = example["image/class/label"].int64_list.value[0]
    assert example["image/class/text"].bytes_list.value[0] == (
        f"class_{label}".encode()
    )
    name = f"tfrecord:{tmp_path}/shards/data-*"
    dataset = data_lib.load_dataset(name, shuffle_block=5)
    assert (dataset.num_train, dataset.num_val, dataset.num_classes) == (
        14,
        4,
        3,
    )
    assert dataset.class_names == ["class_0", "class_1", "class_2"]
    full = _epoch(dataset, augment=True)
    assert len(full) == 3
    for x, y in full:
        np.testing.assert_array_equal(class_of(x), y)
    again = _epoch(data_lib.load_dataset(name, shuffle_block=5), augment=True)
    resumed = _epoch(dataset, start_batch=2, augment=True)
    for (x, y), (x2, y2) in zip(full, again, strict=True):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(resumed[0][0], full[2][0])
    np.testing.assert_array_equal(resumed[0][1], full[2][1])
    # Gzip shards read the same (compression is told by the first bytes).
    data.write_image_tfrecords(
        str(tmp_path / "images"),
        str(tmp_path / "zipped" / "data"),
        3,
        gzip=True,
    )
    zipped = data_lib.load_dataset(
        f"tfrecord:{tmp_path}/zipped/data-*", shuffle_block=5
    )
    for (x, y), (x2, y2) in zip(
        full, _epoch(zipped, augment=True), strict=True
    ):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    other = _epoch(dataset, epoch=1, augment=True)
    assert not all(
        np.array_equal(a[1], b[1]) for a, b in zip(full, other, strict=True)
    )
    # The seeded split: train and val are disjoint and cover every record.
    val = data_lib.make_pipeline(dataset, "val", 4, image_shape=(8, 8, 3))
    ((x_val, y_val),) = [(x.numpy(), y.numpy()) for x, y in val]
    np.testing.assert_array_equal(class_of(x_val), y_val)
    whole = data_lib.make_pipeline(dataset, "train", 14, image_shape=(8, 8, 3))
    counts = np.bincount(
        np.concatenate([next(iter(whole))[1].numpy(), y_val]), minlength=3
    )
    assert counts.tolist() == [7, 6, 5]


def test_tfrecord_train_and_val_globs_and_bad_records(tmp_path):
    write_folder(tmp_path / "images" / "train", per_class=(3, 3))
    write_folder(tmp_path / "images" / "val", per_class=(1, 1))
    written = data.write_image_tfrecords(
        str(tmp_path / "images"), str(tmp_path / "out"), 2
    )
    assert len(written) == 4
    dataset = data_lib.load_dataset(
        "tfrecord:out-train-*,out-val-*", data_dir=str(tmp_path), num_classes=4
    )
    assert (dataset.num_train, dataset.num_val) == (6, 2)
    assert dataset.num_classes == 4 and dataset.class_names is None
    nowhere = tmp_path / "nothing-*"
    cases = [(f"tfrecord:{nowhere}", f"{nowhere} matches no files")]
    png = tf.io.encode_png(np.zeros((4, 4, 3), np.uint8)).numpy()
    for base, record in (
        ("nolabel", example(**{"image/encoded": png})),
        ("nokey", example(**{"image/class/label": 0})),
        ("range", example(**{"image/encoded": png, "image/class/label": 5})),
    ):
        write_records(tmp_path / base, [record])
    lacks = "a record lacks image/encoded or image/class/label"
    cases += [
        (f"tfrecord:{tmp_path}/nolabel", f"{tmp_path}/nolabel: {lacks}"),
        (f"tfrecord:{tmp_path}/nokey", f"{tmp_path}/nokey: {lacks}"),
    ]
    (tmp_path / "cut").write_bytes(open(written[0], "rb").read()[:-20])
    cases.append((f"tfrecord:{tmp_path}/cut", "cut: corrupt or truncated"))
    for name, expected in cases:
        with pytest.raises(data_lib.DataError) as info:
            data_lib.load_dataset(name)
        assert expected in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(data_lib.DataError, match="range: label 5 is outside"):
        data_lib.load_dataset(f"tfrecord:{tmp_path}/range", num_classes=3)


def test_worker_shards_split_each_global_batch(tmp_path):
    write_folder(tmp_path, per_class=(5, 5, 4))
    folder = data_lib.load_dataset(f"folder:{tmp_path}")
    digits = data_lib.load_dataset("digits")

    def batches(dataset, size, **kw):
        pipeline = data_lib.make_pipeline(
            dataset,
            "train",
            size,
            image_shape=(16, 16, 3),
            shuffle_seed=5,
            epoch=2,
            drop_remainder=True,
            start_batch=1,
            **kw,
        )
        return [(x.numpy(), y.numpy()) for x, y in pipeline.take(2)]

    for dataset, batch in ((folder, 4), (digits, 32)):
        whole = batches(dataset, batch)
        parts = [batches(dataset, batch // 2, shard=(2, i)) for i in range(2)]
        for k, (x, y) in enumerate(whole):
            for i in range(2):
                np.testing.assert_array_equal(parts[i][k][1], y[i::2])
                np.testing.assert_allclose(parts[i][k][0], x[i::2])
    policy = tf.data.experimental.AutoShardPolicy
    for shard, expected in ((None, policy.DATA), ((2, 0), policy.OFF)):
        options = data_lib.make_pipeline(
            folder, "train", 2, shard=shard
        ).options()
        assert options.experimental_distribute.auto_shard_policy == expected
    with pytest.raises(ValueError, match="shard must be"):
        data_lib.make_pipeline(folder, "train", 2, shard=(2, 2))


def test_file_cache_survives_a_killed_writer_and_resumes(tmp_path):
    write_folder(tmp_path / "images", per_class=(4, 4))
    prefix = str(tmp_path / "cache" / "c")
    os.makedirs(tmp_path / "cache")
    # What a run killed while filling its cache leaves behind.
    (tmp_path / "cache" / "c-train_0.lockfile").write_text("stale")
    (
        tmp_path / "cache" / "c-train_0.data-00000-of-00001.tempstate1"
    ).write_text("stale")
    dataset = data_lib.load_dataset(
        f"folder:{tmp_path / 'images'}", val_fraction=0.25, cache=prefix
    )
    first = _epoch(dataset, batch_size=2)
    assert sorted(os.listdir(tmp_path / "cache")) == [
        "c-train.data-00000-of-00001",
        "c-train.index",
    ]
    for x, y in first:
        np.testing.assert_array_equal(class_of(x), y)
    # From the finished cache: the same epoch, and resumed at batch 1.
    np.testing.assert_array_equal(
        _epoch(dataset, batch_size=2)[1][0], first[1][0]
    )
    resumed = _epoch(dataset, batch_size=2, start_batch=1)
    np.testing.assert_array_equal(resumed[0][1], first[1][1])
    np.testing.assert_array_equal(resumed[0][0], first[1][0])
    # A cache in a directory that does not exist yet: made (tf.data does
    # not, and the skipping of bad images then retried its error forever).
    fresh = tmp_path / "new" / "dir"
    dataset = data_lib.load_dataset(
        f"folder:{tmp_path / 'images'}",
        val_fraction=0.25,
        cache=str(fresh / "c"),
    )
    for (x, y), (x2, y2) in zip(
        first, _epoch(dataset, batch_size=2), strict=True
    ):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    assert "c-train.index" in os.listdir(fresh)
