"""The book's BatchNorm from scratch against keras.layers.BatchNormalization."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb


@pytest.mark.parametrize("shape", [(8, 5), (4, 6, 6, 3)])
def test_scratch_batch_norm_matches_keras(shape):
    rng = np.random.default_rng(0)
    scratch = kb.layers.BatchNorm(momentum=0.9, epsilon=1e-5)
    reference = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    channels = shape[-1]
    scratch.build(shape)
    reference.build(shape)
    gamma = rng.uniform(0.5, 1.5, channels).astype("float32")
    beta = rng.uniform(-0.5, 0.5, channels).astype("float32")
    for layer in (scratch, reference):
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
    for _ in range(3):
        x = tf.constant(rng.normal(2.0, 3.0, shape).astype("float32"))
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            ys, yr = scratch(x, training=True), reference(x, training=True)
            ls, lr = tf.reduce_sum(ys**2), tf.reduce_sum(yr**2)
        np.testing.assert_allclose(ys, yr, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(
            tape.gradient(ls, x), tape.gradient(lr, x), rtol=1e-3, atol=1e-3
        )
        np.testing.assert_allclose(
            scratch.moving_mean, reference.moving_mean, rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(
            scratch.moving_variance, reference.moving_variance, rtol=1e-4
        )
    x = tf.constant(rng.normal(size=shape).astype("float32"))
    np.testing.assert_allclose(
        scratch(x, training=False),
        reference(x, training=False),
        rtol=1e-4,
        atol=1e-5,
    )


def test_scratch_batch_norm_in_lenet_bn_trains():
    import zoo

    model = zoo.create_model("lenet_bn", batch_norm="scratch", num_classes=3)
    names = [type(layer).__name__ for layer in model.layers]
    assert names.count("BatchNorm") == 4
    x = np.random.default_rng(0).uniform(size=(4, 28, 28, 1)).astype("float32")
    before = model.get_layer("conv1_bn").moving_mean.numpy().copy()
    model(x, training=True)
    assert not np.array_equal(before, model.get_layer("conv1_bn").moving_mean)


def test_bad_arguments():
    with pytest.raises(ValueError, match="momentum must be in"):
        kb.layers.BatchNorm(momentum=1.0)
    with pytest.raises(ValueError, match="epsilon must be positive"):
        kb.layers.BatchNorm(epsilon=0)
    layer = kb.layers.BatchNorm()
    layer(tf.ones((2, 3)), training=True)
    with pytest.raises(
        ValueError, match="expected axis -1 of input shape to have value 3"
    ):
        layer(tf.ones((2, 4)))
