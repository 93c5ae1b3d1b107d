"""weights="imagenet" downloads: served over HTTP from 127.0.0.1 by a
real http.server, never from the internet.

The served files are keras.applications weights files written here from
seeded models (statistics randomized), under Keras's file names; the
expected hash is the test's (the table entry is replaced), or none for
MobileNet, whose Keras code publishes none.
"""

import hashlib
import http.server
import logging
import os
import threading

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format

import zoo
from zoo import _download, _download_table
from zoo.pretrained import PretrainedWeightsError

V3_KEY = "small_224_0.75_float"
V3_FILE = f"weights_mobilenet_v3_{V3_KEY}_no_top_v2.h5"
V3_PATH = f"/tensorflow/keras-applications/mobilenet_v3/{V3_FILE}"
V3_ARGS = dict(alpha=0.75, include_top=False, input_shape=(32, 32, 3))
V1_FILE = "mobilenet_2_5_224_tf_no_top.h5"
V1_PATH = f"/tensorflow/keras-applications/mobilenet/{V1_FILE}"
V1_ARGS = dict(alpha=0.25, include_top=False, input_shape=(32, 32, 3))


def _weights_file(path, constructor, seed, **kwargs):
    """A keras.applications weights file (legacy HDF5 layer weights) in
    which every array, statistics included, differs from a fresh one."""
    keras.utils.set_random_seed(seed)
    model = constructor(weights=None, **kwargs)
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if variable.path.endswith("moving_variance"):
            variable.assign(rng.uniform(0.5, 1.5, variable.shape))
        else:
            variable.assign(rng.normal(0, 0.1, variable.shape))
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{served path: bytes}, and where each was written."""
    root = tmp_path_factory.mktemp("served")
    v3 = _weights_file(
        root / V3_FILE, keras.applications.MobileNetV3Small, 3, **V3_ARGS
    )
    v1 = _weights_file(
        root / V1_FILE, keras.applications.MobileNet, 4, **V1_ARGS
    )
    return {V3_PATH: v3, V1_PATH: v1}, root


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1 that serves `files` and
    records the path of every request. `truncate` sends half of each
    file under the whole file's Content-Length, then closes."""

    def __init__(self, files):
        self.files = files
        self.requests = []
        self.truncate = False
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.truncate:
                    body = body[: len(body) // 2]
                    self.close_connection = True
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server(files, tmp_path, monkeypatch):
    """The server as mirror, KERAS_HOME in tmp_path, the network
    allowed, and the test's hash for the MobileNetV3 file."""
    served, _ = files
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("ZOO_OFFLINE", "0")
    digest = hashlib.sha256(served[V3_PATH]).hexdigest()
    top = _download_table.MOBILENET_V3[V3_KEY][0]
    monkeypatch.setitem(_download_table.MOBILENET_V3, V3_KEY, (top, digest))
    http_server = _Server(dict(served))
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", http_server.url)
    yield http_server
    http_server.close()


def _cache(tmp_path):
    directory = tmp_path / "keras" / "models"
    return sorted(os.listdir(directory)) if directory.exists() else []


def _download_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "zoo.download"]


def _images(seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32")


def _assert_same_as_keras(model, constructor, served_file, **kwargs):
    """The zoo model predicts what keras.applications predicts with the
    served file loaded."""
    reference = constructor(weights=str(served_file), **kwargs)
    images = _images()
    # Eager calls: these models are small, and tracing costs seconds.
    expected = keras.ops.convert_to_numpy(reference(images, training=False))
    got = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_allclose(
        got, expected, atol=1e-5 * np.abs(expected).max(), rtol=0
    )


def test_mirror_download_keeps_the_path_and_caches_once(
    server, files, tmp_path, capsys
):
    served, root = files
    model = zoo.create_model("mobilenetv3_small", weights="imagenet", **V3_ARGS)
    assert server.requests == [V3_PATH]
    # keras.utils.get_file's own line and progress bar.
    out = capsys.readouterr().out
    assert f"Downloading data from {server.url}{V3_PATH}\n" in out
    assert f"{len(served[V3_PATH])}/{len(served[V3_PATH])}" in out
    assert _cache(tmp_path) == [V3_FILE]
    cached = tmp_path / "keras" / "models" / V3_FILE
    assert cached.read_bytes() == served[V3_PATH]
    _assert_same_as_keras(
        model, keras.applications.MobileNetV3Small, root / V3_FILE, **V3_ARGS
    )
    # The verified cache serves the next model: no second request.
    zoo.create_model("mobilenetv3_small", weights="imagenet", **V3_ARGS)
    assert server.requests == [V3_PATH]


def test_offline_with_an_empty_cache_makes_no_request(
    server, tmp_path, monkeypatch
):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(PretrainedWeightsError) as raised:
        zoo.create_model("mobilenetv3_small", weights="imagenet", **V3_ARGS)
    message = str(raised.value)
    assert server.requests == []
    assert "\n" not in message
    assert message.startswith("mobilenetv3_small: ZOO_OFFLINE=1 and ")
    place = tmp_path / "keras" / "models" / V3_FILE
    assert message.endswith(f"{server.url}{V3_PATH} at {place}")
    assert _cache(tmp_path) == []


def test_a_truncated_download_leaves_nothing(server, tmp_path):
    server.truncate = True
    with pytest.raises(PretrainedWeightsError) as raised:
        zoo.create_model("mobilenetv3_small", weights="imagenet", **V3_ARGS)
    message = str(raised.value)
    assert server.requests == [V3_PATH]
    assert "\n" not in message
    assert message.startswith(
        f"mobilenetv3_small: downloading {V3_FILE} from {server.url}"
    )
    assert "retrieval incomplete" in message
    assert message.endswith(
        "nothing was written to " + str(tmp_path / "keras" / "models")
    )
    assert _cache(tmp_path) == []


def test_a_hash_mismatch_leaves_nothing(server, tmp_path, monkeypatch):
    monkeypatch.setitem(
        _download_table.MOBILENET_V3, V3_KEY, ("0" * 64, "1" * 64)
    )
    with pytest.raises(PretrainedWeightsError) as raised:
        zoo.create_model("mobilenetv3_small", weights="imagenet", **V3_ARGS)
    message = str(raised.value)
    assert "\n" not in message
    assert message == (
        f"mobilenetv3_small: the file downloaded from {server.url}{V3_PATH}"
        " does not match the hash keras.applications publishes for "
        f"{V3_FILE} ({'1' * 64}); nothing was written to "
        f"{tmp_path / 'keras' / 'models'}"
    )
    assert _cache(tmp_path) == []


def test_no_published_hash_records_sha256_then_verifies_it(
    server, files, tmp_path, caplog
):
    served, root = files
    digest = hashlib.sha256(served[V1_PATH]).hexdigest()
    with caplog.at_level(logging.WARNING, logger="zoo.download"):
        model = zoo.create_model("mobilenet", weights="imagenet", **V1_ARGS)
    assert server.requests == [V1_PATH]
    assert _cache(tmp_path) == [V1_FILE, f"{V1_FILE}.sha256"]
    cached = tmp_path / "keras" / "models" / V1_FILE
    assert (
        tmp_path / "keras" / "models" / f"{V1_FILE}.sha256"
    ).read_text() == (f"{digest}  {V1_FILE}\n")
    [line] = _download_lines(caplog)
    assert "publishes no hash for " + V1_FILE in line
    assert digest in line and "only a file with this SHA-256" in line
    _assert_same_as_keras(
        model, keras.applications.MobileNet, root / V1_FILE, **V1_ARGS
    )
    # Verified, not fetched again.
    zoo.create_model("mobilenet", weights="imagenet", **V1_ARGS)
    assert server.requests == [V1_PATH]
    # A changed file is refused, and not replaced behind the user's back.
    with open(cached, "ab") as f:
        f.write(b"\0")
    with pytest.raises(PretrainedWeightsError) as raised:
        zoo.create_model("mobilenet", weights="imagenet", **V1_ARGS)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"mobilenet: {cached} has SHA-256 ")
    assert f"not the {digest} recorded in {cached}.sha256" in message
    assert server.requests == [V1_PATH]


def test_a_file_the_user_placed_is_recorded_and_used_offline(
    files, tmp_path, monkeypatch, caplog
):
    served, root = files
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    (tmp_path / "keras" / "models").mkdir(parents=True)
    placed = tmp_path / "keras" / "models" / V1_FILE
    placed.write_bytes(served[V1_PATH])
    digest = hashlib.sha256(served[V1_PATH]).hexdigest()
    with caplog.at_level(logging.WARNING, logger="zoo.download"):
        model = zoo.create_model("mobilenet", weights="imagenet", **V1_ARGS)
    [line] = _download_lines(caplog)
    assert line == (
        f"mobilenet: keras.applications publishes no hash for {V1_FILE}; "
        f"recorded the SHA-256 of the file found at {placed} ({digest}) in "
        f"{placed}.sha256: from now on only a file with this SHA-256 is "
        "accepted"
    )
    assert (tmp_path / "keras" / "models" / f"{V1_FILE}.sha256").exists()
    _assert_same_as_keras(
        model, keras.applications.MobileNet, root / V1_FILE, **V1_ARGS
    )


def test_a_published_hash_refuses_a_wrong_file_offline(
    files, tmp_path, monkeypatch
):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    (tmp_path / "keras" / "models").mkdir(parents=True)
    placed = tmp_path / "keras" / "models" / V3_FILE
    placed.write_bytes(files[0][V3_PATH])
    expected = _download_table.MOBILENET_V3[V3_KEY][1]
    with pytest.raises(PretrainedWeightsError) as raised:
        zoo.create_model("mobilenetv3_small", weights="imagenet", **V3_ARGS)
    assert str(raised.value).startswith(
        f"mobilenetv3_small: {placed} does not match the hash "
        f"keras.applications publishes ({expected}) and ZOO_OFFLINE=1: "
        "replace it with the file from https://storage.googleapis.com/"
    )
    assert placed.read_bytes() == files[0][V3_PATH]


def test_two_threads_create_models_at_once(server, files, tmp_path):
    results, errors = [None, None], []
    start = threading.Barrier(2)

    def create(index):
        try:
            start.wait()
            results[index] = zoo.create_model(
                "mobilenetv3_small", weights="imagenet", **V3_ARGS
            )
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=create, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # One download; the other thread waited and found it verified.
    assert server.requests == [V3_PATH]
    assert _cache(tmp_path) == [V3_FILE]
    first, second = (m.get_weights() for m in results)
    assert len(first) == len(second) > 100
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    _assert_same_as_keras(
        results[0],
        keras.applications.MobileNetV3Small,
        files[1] / V3_FILE,
        **V3_ARGS,
    )


@pytest.mark.parametrize(
    "mirror, expected",
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/a/b/w.h5"),
        ("https://m.example/keras/", "https://m.example/keras/a/b/w.h5"),
        ("file:///srv/mirror", "file:///srv/mirror/a/b/w.h5"),
    ],
)
def test_mirror_replaces_scheme_and_host(monkeypatch, mirror, expected):
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", mirror)
    assert _download.mirrored("https://storage.googleapis.com/a/b/w.h5") == (
        expected
    )


def test_a_cached_file_with_the_wrong_published_hash_is_fetched_again(
    server, tmp_path, caplog
):
    body = b"the right weights"
    server.files["/t/k/w.h5"] = body
    file = _download_table.WeightsFile(
        "w.h5",
        "https://storage.googleapis.com/t/k/w.h5",
        hashlib.md5(body).hexdigest(),
    )
    (tmp_path / "keras" / "models").mkdir(parents=True)
    (tmp_path / "keras" / "models" / "w.h5").write_bytes(b"stale")
    with caplog.at_level(logging.WARNING, logger="zoo.download"):
        path = _download.fetch("m", file)
    assert server.requests == ["/t/k/w.h5"]
    assert open(path, "rb").read() == body
    assert _cache(tmp_path) == ["w.h5"]
    [line] = _download_lines(caplog)
    assert line.endswith(f"({file.file_hash}); downloading it again")


def test_a_file_mirror_serves_an_air_gapped_site(tmp_path, monkeypatch):
    """`file:///DIR` holds a copy of Keras's URL tree."""
    body = b"weights of a test"
    origin = "https://storage.googleapis.com/t/k/w.h5"
    (tmp_path / "mirror" / "t" / "k").mkdir(parents=True)
    (tmp_path / "mirror" / "t" / "k" / "w.h5").write_bytes(body)
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", (tmp_path / "mirror").as_uri())
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("ZOO_OFFLINE", "0")
    digest = hashlib.md5(body).hexdigest()
    file = _download_table.WeightsFile("w.h5", origin, digest)
    path = _download.fetch("m", file)
    assert path == str(tmp_path / "keras" / "models" / "w.h5")
    assert open(path, "rb").read() == body
    assert _cache(tmp_path) == ["w.h5"]


@pytest.mark.parametrize("mirror", ["127.0.0.1:8080", "ftp://h/x", "http://"])
def test_a_bad_mirror_or_offline_value_is_one_line(monkeypatch, mirror):
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", mirror)
    with pytest.raises(PretrainedWeightsError, match="is not a mirror URL"):
        _download.mirrored("https://storage.googleapis.com/a.h5")
    monkeypatch.setenv("ZOO_OFFLINE", "maybe")
    with pytest.raises(PretrainedWeightsError, match="use 1"):
        _download.offline()


def test_no_imagenet_file_for_other_widths_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(PretrainedWeightsError) as raised:
        zoo.create_model("mobilenet", weights="imagenet", alpha=0.6)
    assert str(raised.value) == (
        "mobilenet: MobileNet has ImageNet weights for alpha in "
        "(0.25, 0.5, 0.75, 1.0). Received: alpha=0.6"
    )
