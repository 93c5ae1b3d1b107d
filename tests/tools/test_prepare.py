"""kb-prepare writes shards kb-train can read; bad input is one line."""

import os

import numpy as np
import tensorflow as tf

from tests.tools._cli import run_tool


def _run(*args):
    return run_tool("prepare", *args, timeout=300)


def test_prepare_writes_shards_and_refuses_bad_folders(tmp_path):
    for label in range(2):
        os.makedirs(tmp_path / "images" / f"c{label}")
        for i in range(3):
            image = np.full((8, 8, 3), 100 * label, np.uint8)
            tf.io.write_file(
                str(tmp_path / "images" / f"c{label}" / f"{i}.png"),
                tf.io.encode_png(image),
            )
    done = _run(
        f"--folder={tmp_path / 'images'}",
        f"--out_prefix={tmp_path / 'shards' / 'x'}",
        "--num_shards=2",
        "--gzip",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(os.listdir(tmp_path / "shards")) == [
        "x-00000-of-00002",
        "x-00001-of-00002",
    ]
    records = tf.data.TFRecordDataset(
        [str(p) for p in sorted((tmp_path / "shards").iterdir())], "GZIP"
    )
    labels = [
        tf.train.Example.FromString(r.numpy())
        .features.feature["image/class/label"]
        .int64_list.value[0]
        for r in records
    ]
    assert sorted(labels) == [0, 0, 0, 1, 1, 1]
    missing = _run(
        f"--folder={tmp_path / 'none'}", f"--out_prefix={tmp_path / 'y'}"
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1] == (
        f"kb-prepare: error: folder {tmp_path / 'none'}: no such directory"
    )
