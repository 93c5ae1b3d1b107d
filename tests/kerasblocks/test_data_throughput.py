"""The pipeline / step / end-to-end measurement counts what it runs."""

import os

import keras
import numpy as np
import tensorflow as tf

from kerasblocks.compile import compile_train_step
from kerasblocks.data import dataset as data_lib
from kerasblocks.data import throughput


def test_measures_a_folder_pipeline_and_a_step(tmp_path):
    for label in range(2):
        os.makedirs(tmp_path / f"c{label}")
        for i in range(6):
            image = np.full((12, 12, 3), 200 * label, np.uint8)
            tf.io.write_file(
                str(tmp_path / f"c{label}" / f"{i}.png"),
                tf.io.encode_png(image),
            )
    dataset = data_lib.load_dataset(f"folder:{tmp_path}")
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    optimizer = keras.optimizers.SGD(0.01)
    step = compile_train_step(
        model,
        optimizer,
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        mode="graph",
    )
    report = throughput.measure_data_throughput(
        lambda: data_lib.make_pipeline(
            dataset,
            "train",
            3,
            image_shape=(8, 8, 3),
            shuffle_seed=0,
            augment=True,
            drop_remainder=True,
            repeat=True,
        ),
        step,
        batches=4,
        rounds=2,
    )
    for kind in throughput.KINDS:
        assert report[kind]["warmup"]["images"] == 12
        assert report[kind]["best"] >= report[kind]["median"] > 0
    # Step alone and end to end each ran 4 steps, in the warm-up and
    # in each of the 2 rounds.
    assert int(optimizer.iterations.numpy()) == 2 * 4 * 3
    assert set(report["ratios"]) == {"end_to_end/step", "pipeline/step"}
    table = throughput.format_throughput(report).splitlines()
    assert [line.split()[0] for line in table[1:4]] == list(throughput.KINDS)
