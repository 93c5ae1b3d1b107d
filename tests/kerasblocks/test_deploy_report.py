"""The deployment report of `kerasblocks.training.deploy`: sizes,
differences and agreement per format; the dynamic-range int8 warning on
depthwise networks; TF Serving's version numbers."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest

from kerasblocks.io import serving_warmup
from kerasblocks.training import deploy
from kerasblocks.training.errors import UserInputError


def _depthwise_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3), name="images")
    h = keras.layers.Conv2D(8, 3, name="stem")(inputs)
    h = keras.layers.DepthwiseConv2D(3, name="dw")(h)
    h = keras.layers.GlobalAveragePooling2D(name="pool")(h)
    out = keras.layers.Dense(4, activation="softmax", name="head")(h)
    return keras.Model(inputs, out)


def test_dynamic_int8_on_depthwise_warns_with_measured_speed(tmp_path, capsys):
    model = _depthwise_model()
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (24, 16, 16, 3)).astype("float32")
    y = rng.integers(0, 4, 24)
    validation = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 24, 8)]
    written = deploy.export_checked(
        model,
        str(tmp_path),
        ["tflite", "onnx"],  # tflite: the old name of litert
        validation=validation,
        options=deploy.DeployOptions("dynamic_int8"),
    )
    assert set(written) == {"litert", "onnx"}
    err = capsys.readouterr().err
    assert "dynamic_int8 on a depthwise network" in err
    report = json.loads(
        (tmp_path / "export" / "deploy_report.json").read_text()
    )
    assert report["examples"] == 24 and report["quantize"] == "dynamic_int8"
    litert = report["formats"]["litert"]
    assert litert["quantize"] == "dynamic_int8"
    speed = litert["speed"]
    assert speed["litert_ms_per_image"] > 0 and speed["tf_ms_per_image"] > 0
    assert f"{speed['litert_ms_per_image']:.2f} ms" in err
    assert litert["size_bytes"] == os.path.getsize(written["litert"])
    onnx = report["formats"]["onnx"]
    assert onnx["max_abs_diff"] < 1e-5 and onnx["top1_agreement"] == 1.0
    assert "speed" not in onnx and "accuracy" not in onnx


def test_unknown_formats_and_options_are_one_line():
    with pytest.raises(UserInputError, match="unknown formats"):
        deploy.canonical_formats(["saved_model", "pb"])
    with pytest.raises(UserInputError, match="--quantize takes"):
        deploy.DeployOptions("int4")
    with pytest.raises(UserInputError, match="--min_agreement"):
        deploy.DeployOptions("int8", min_agreement=1.5)


def test_versions_count_up_and_old_layout_is_refused(tmp_path):
    base = tmp_path / "export" / "saved_model"
    assert serving_warmup.next_version(base) == 1
    (base / "3").mkdir(parents=True)
    (base / "notes").mkdir()
    assert serving_warmup.next_version(base) == 4
    (base / "saved_model.pb").write_bytes(b"")
    with pytest.raises(UserInputError, match="unversioned SavedModel"):
        deploy.export_checked(
            _depthwise_model(), str(tmp_path), ["saved_model"]
        )


@pytest.mark.parametrize(
    "formats, written",
    [
        (["saved_model"], "saved_model/1"),
        (["keras"], "model.keras"),
        (["h5"], "model.h5"),
        (["litert"], "model.tflite"),  # written by a converter child
        ([], deploy.REPORT_FILE),
    ],
)
def test_a_full_disk_names_the_file_and_leaves_nothing(
    tmp_path, formats, written
):
    from kerasblocks.training.errors import disk_full_path
    from tests.tools.test_run_safety import _files, _fill, _tmpfs

    with _tmpfs(tmp_path / "disk", "1m") as disk:
        _fill(disk / "filler")
        out = disk / "out"
        with pytest.raises(Exception) as raised:
            deploy.export_checked(_depthwise_model(), str(out), formats)
        path = disk_full_path(raised.value)
        assert path == os.path.join(out, "export", written)
        assert _files(out) == []


def test_the_report_keeps_earlier_entries_whose_files_remain(tmp_path):
    model = _depthwise_model()
    x = np.random.default_rng(1).uniform(0, 1, (8, 16, 16, 3))
    validation = [(x.astype("float32"), np.zeros(8, "int64"))]
    report_path = tmp_path / "export" / deploy.REPORT_FILE
    report_path.parent.mkdir()
    report_path.write_text("not json")  # someone else's: ignored
    deploy.export_checked(
        model, str(tmp_path), ["keras"], validation=validation
    )
    deploy.export_checked(model, str(tmp_path), ["h5"], validation=validation)
    formats = json.loads(report_path.read_text())["formats"]
    assert sorted(formats) == ["h5", "keras"]
    assert formats["keras"]["file"] == os.path.join("export", "model.keras")
    assert formats["keras"]["top1_agreement"] == 1.0
    os.remove(tmp_path / "export" / "model.keras")
    deploy.export_checked(model, str(tmp_path), ["h5"], validation=validation)
    formats = json.loads(report_path.read_text())["formats"]
    assert sorted(formats) == ["h5"]
