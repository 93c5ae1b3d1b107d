"""tfds:NAME reads a directory prepared by tensorflow-datasets, offline."""

import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from kerasblocks.data import dataset as data_lib

COLOURS = ((230, 20, 20), (20, 230, 20), (20, 20, 230))


class KbTinyColours(tfds.core.GeneratorBasedBuilder):
    """Solid 16x16 images whose colour is their class."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(16, 16, 3)),
                    "label": tfds.features.ClassLabel(
                        names=["red", "green", "blue"]
                    ),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {
            "train": self._generate_examples(15),
            "test": self._generate_examples(6),
        }

    def _generate_examples(self, count):
        for i in range(count):
            image = np.broadcast_to(
                np.asarray(COLOURS[i % 3], np.uint8), (16, 16, 3)
            )
            yield i, {"image": image.copy(), "label": i % 3}


def test_tfds_directory_order_resume_and_errors(tmp_path, monkeypatch):
    KbTinyColours(data_dir=str(tmp_path)).download_and_prepare(
        download_dir=str(tmp_path / "downloads")
    )
    dataset = data_lib.load_dataset(
        "tfds:kb_tiny_colours", data_dir=str(tmp_path), shuffle_block=4
    )
    assert (dataset.num_train, dataset.num_val, dataset.num_classes) == (
        15,
        6,
        3,
    )
    assert dataset.class_names == ["red", "green", "blue"]
    assert dataset.example_shape == (16, 16, 3)

    def epoch(epoch=0, start_batch=0):
        pipeline = data_lib.make_pipeline(
            dataset,
            "train",
            5,
            image_shape=(8, 8, 3),
            shuffle_seed=2,
            epoch=epoch,
            augment=True,
            drop_remainder=True,
            start_batch=start_batch,
        )
        return [(x.numpy(), y.numpy()) for x, y in pipeline]

    full = epoch()
    assert len(full) == 3
    for x, y in full:
        brightest = np.argmax(x.mean(axis=(1, 2)), axis=-1)
        np.testing.assert_array_equal(brightest, y)
    labels = np.concatenate([y for _, y in full])
    assert np.bincount(labels).tolist() == [5, 5, 5]
    for (x, y), (x2, y2) in zip(full[1:], epoch(start_batch=1), strict=True):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(labels, np.concatenate([y for _, y in epoch(1)]))

    with pytest.raises(data_lib.DataError) as info:
        data_lib.load_dataset("tfds:mnist", data_dir=str(tmp_path))
    assert "not prepared in" in str(info.value)
    assert "nothing is downloaded" in str(info.value)
    with pytest.raises(data_lib.DataError, match="no such directory"):
        data_lib.load_dataset("tfds:mnist", data_dir=str(tmp_path / "none"))
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(data_lib.DataError, match=r"kerasblocks\[tfds\]"):
        data_lib.load_dataset("tfds:mnist", data_dir=str(tmp_path))
