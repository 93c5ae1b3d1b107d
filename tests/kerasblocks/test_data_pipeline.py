"""Data sets from local files in their original formats; pipelines."""

import gzip
import pickle
import tarfile

import numpy as np
import pytest

from kerasblocks.data import dataset as data_lib


def _write_idx(path, array):
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def _idx_files(directory, gz=True, n_train=12, n_val=5):
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (n_train, 28, 28))
    y_train = rng.integers(0, 10, n_train)
    x_val = rng.integers(0, 256, (n_val, 28, 28))
    y_val = rng.integers(0, 10, n_val)
    ext = ".gz" if gz else ""
    _write_idx(directory / f"train-images-idx3-ubyte{ext}", x_train)
    _write_idx(directory / f"train-labels-idx1-ubyte{ext}", y_train)
    _write_idx(directory / f"t10k-images-idx3-ubyte{ext}", x_val)
    _write_idx(directory / f"t10k-labels-idx1-ubyte{ext}", y_val)
    return x_train, y_train, x_val, y_val


@pytest.mark.parametrize(
    "name, gz", [("mnist", True), ("fashion_mnist", False)]
)
def test_idx_data_sets_from_a_directory(tmp_path, name, gz):
    x_train, y_train, x_val, y_val = _idx_files(tmp_path, gz=gz)
    dataset = data_lib.load_dataset(name, str(tmp_path))
    assert dataset.x_train.shape == (12, 28, 28, 1)
    np.testing.assert_array_equal(dataset.x_train[..., 0], x_train)
    np.testing.assert_array_equal(dataset.y_val, y_val)
    assert dataset.num_classes == 10


def test_truncated_idx_file(tmp_path):
    _idx_files(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(data_lib.DataError, match="truncated IDX file"):
        data_lib.load_dataset("mnist", str(tmp_path))


def _cifar_batch(rng, n):
    return {
        b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
        b"labels": rng.integers(0, 10, n).tolist(),
        b"batch_label": b"training batch",
    }


@pytest.mark.parametrize("packed", [False, True])
def test_cifar10_python_batches(tmp_path, packed):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = {f"data_batch_{i}": _cifar_batch(rng, 4) for i in (1, 2)}
    batches["test_batch"] = _cifar_batch(rng, 3)
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch))
    directory = tmp_path
    if packed:
        directory = tmp_path / "packed"
        directory.mkdir()
        with tarfile.open(directory / "cifar-10-python.tar.gz", "w:gz") as tar:
            tar.add(folder, arcname="cifar-10-batches-py")
    dataset = data_lib.load_dataset("cifar10", str(directory))
    assert dataset.x_train.shape == (8, 32, 32, 3)
    first = (
        batches["data_batch_1"][b"data"][0]
        .reshape(3, 32, 32)
        .transpose(1, 2, 0)
    )
    np.testing.assert_array_equal(dataset.x_train[0], first)
    assert dataset.y_val.tolist() == batches["test_batch"][b"labels"]


def test_cifar10_pickle_with_code_is_refused(tmp_path, monkeypatch):
    sentinel = tmp_path / "SENTINEL"

    class Payload:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Payload()}))
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Payload()}))
    with pytest.raises(
        data_lib.DataError, match="refusing to load (io|builtins).open"
    ):
        data_lib.load_dataset("cifar10", str(tmp_path))
    assert not sentinel.exists()


def test_missing_data_set_says_where_it_looked(tmp_path):
    for name in ("mnist", "fashion_mnist", "cifar10"):
        with pytest.raises(data_lib.DataError, match=str(tmp_path)) as info:
            data_lib.load_dataset(name, str(tmp_path))
        assert "--data_dir" in str(info.value)
        assert "nothing is downloaded" in str(info.value)
    with pytest.raises(data_lib.DataError, match="Did you mean: digits"):
        data_lib.load_dataset("digit")


def test_pipeline_order_depends_only_on_seed_and_epoch():
    dataset = data_lib.load_dataset("digits")

    def labels(seed, epoch):
        pipeline = data_lib.make_pipeline(
            dataset,
            "train",
            50,
            image_shape=(8, 8, 1),
            shuffle_seed=seed,
            epoch=epoch,
        )
        return np.concatenate([y.numpy() for _, y in pipeline])

    first = labels(3, 0)
    np.testing.assert_array_equal(first, labels(3, 0))
    assert not np.array_equal(first, labels(3, 1))
    assert sorted(first.tolist()) == sorted(dataset.y_train.tolist())


def test_pipeline_resizes_scales_and_augments():
    dataset = data_lib.load_dataset("digits")

    def first_batch():
        pipeline = data_lib.make_pipeline(
            dataset,
            "train",
            16,
            image_shape=(32, 32, 3),
            shuffle_seed=0,
            augment=True,
        )
        return next(iter(pipeline))

    x, y = first_batch()
    assert x.shape == (16, 32, 32, 3) and y.shape == (16,)
    assert 0.0 <= float(np.min(x)) and float(np.max(x)) <= 1.0
    # The same seed augments the same way in a new pipeline.
    np.testing.assert_array_equal(x, first_batch()[0])
    with pytest.raises(ValueError, match="batch_size must be positive"):
        data_lib.make_pipeline(dataset, "train", 0)


def test_digits_is_real_and_complete():
    dataset = data_lib.load_dataset("digits")
    assert len(dataset.y_train) + len(dataset.y_val) == 1797
    assert dataset.x_train.dtype == np.uint8 and dataset.x_train.max() == 255
    assert set(dataset.y_train.tolist()) == set(range(10))
