"""Streaming sources do not grow with the data set: peak memory of an
epoch over 1x and 4x the images stays within a small margin."""

import os
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
# An epoch held whole would take 4x the decoded images: 192 more images
# of 128x128x3 float32 (192 KiB each), ~36 MiB; the margin is half that.
MARGIN_MB = 18

_EPOCH = """
import resource, sys
from kerasblocks.data import dataset as data_lib
dataset = data_lib.load_dataset(sys.argv[1])
for epoch in range(1):
    for _ in data_lib.make_pipeline(
        dataset, "train", 16, image_shape=(128, 128, 3),
        shuffle_seed=0, epoch=epoch, augment=True, drop_remainder=True,
    ):
        pass
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def _peak_mb(name):
    done = subprocess.run(
        [sys.executable, "-c", _EPOCH, name],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.split()[-1])


def test_peak_memory_does_not_grow_with_the_data(tmp_path):
    rng = np.random.default_rng(0)
    for count, root in ((20, tmp_path / "x1"), (80, tmp_path / "x4")):
        for label in range(4):
            folder = root / f"c{label}"
            folder.mkdir(parents=True)
            for i in range(count):
                image = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
                tf.io.write_file(
                    str(folder / f"{i}.jpg"), tf.io.encode_jpeg(image)
                )
    small = _peak_mb(f"folder:{tmp_path / 'x1'}")
    large = _peak_mb(f"folder:{tmp_path / 'x4'}")
    assert abs(large - small) < MARGIN_MB, (small, large)


def test_a_cached_epoch_reads_about_one_block_ahead():
    # An epoch permutes a cache block by block; tf.data's autotuned
    # buffers used to read three or four blocks of decoded images ahead.
    from kerasblocks.data import streams

    png = tf.io.encode_png(np.zeros((4, 4, 3), np.uint8))
    pulled = tf.Variable(0, dtype=tf.int64)

    class Counted(streams.ImageStream):
        num_train = num_val = 6000

        def _encoded(self, split, seed, epoch, start):
            def bump(index):
                pulled.assign_add(1)
                return png, tf.cast(index % 2, tf.int32)

            return tf.data.Dataset.range(6000).map(bump).skip(start)

    stream = Counted(
        "counted",
        num_classes=2,
        class_names=None,
        example_shape=(4, 4, 3),
        cache="memory",
    )
    batches = iter(stream.pipeline("train", 64, shuffle_seed=1))
    for _ in range(10):
        next(batches)
    time.sleep(1)  # what the buffers take while a step runs
    block = streams.SHUFFLE_BLOCK
    assert block <= int(pulled.numpy()) <= 2 * block, int(pulled.numpy())
