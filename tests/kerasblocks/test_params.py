"""kerasblocks.params and kerasblocks.materialize."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb


@pytest.fixture
def net():
    net = kb.layers.MLP(hidden_units=8, units=3, name="mlp")
    kb.materialize(net, (None, 5))
    return net


def test_named_parameters_wildcards(net):
    assert list(kb.params.named_parameters(net)) == [
        "mlp/hidden/kernel",
        "mlp/hidden/bias",
        "mlp/out/kernel",
        "mlp/out/bias",
    ]
    assert list(kb.params.named_parameters(net, "*/out/*")) == [
        "mlp/out/kernel",
        "mlp/out/bias",
    ]


def test_unknown_pattern_is_an_error_unless_allowed(net):
    with pytest.raises(
        ValueError, match=r"No parameter of 'mlp' matches '\*gamma'"
    ):
        kb.params.named_parameters(net, "*gamma")
    assert kb.params.named_parameters(net, "*gamma", allow_empty=True) == {}
    with pytest.raises(TypeError, match="pattern must be a string"):
        kb.params.named_parameters(net, 3)


def test_count_parameters(net):
    assert kb.params.count_parameters(net) == 5 * 8 + 8 + 8 * 3 + 3
    bn = keras.Sequential([keras.layers.BatchNormalization()])
    kb.materialize(bn, (None, 4))
    assert kb.params.count_parameters(bn) == 16
    assert kb.params.count_parameters(bn, trainable_only=True) == 8


def test_unbuilt_model_raises_not_built_error():
    net = kb.layers.MLP()
    for call in (
        kb.params.named_parameters,
        kb.params.parameter_table,
        kb.params.count_parameters,
        kb.devices.variable_devices,
    ):
        with pytest.raises(kb.NotBuiltError, match="materialize"):
            call(net)
    assert issubclass(kb.NotBuiltError, ValueError)


def test_apply_init_checks_every_pattern_before_changing_anything(net):
    before = [v.numpy().copy() for v in net.weights]
    with pytest.raises(ValueError, match="No parameter"):
        kb.params.apply_init(net, {"*kernel": "ones", "*nothing*": "zeros"})
    for old, variable in zip(before, net.weights, strict=True):
        np.testing.assert_array_equal(old, variable.numpy())


def test_apply_init_with_callable_and_order(net):
    def halves(shape, dtype=None):
        return tf.fill(shape, tf.constant(0.5, dtype))

    changed = kb.params.apply_init(net, {"*": "zeros", "*/out/bias": halves})
    assert changed == [
        "mlp/hidden/kernel",
        "mlp/hidden/bias",
        "mlp/out/kernel",
        "mlp/out/bias",
    ]
    np.testing.assert_array_equal(net.out.bias.numpy(), [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(net.out.kernel.numpy(), np.zeros((8, 3)))


def test_apply_init_rejects_wrong_shape(net):
    with pytest.raises(ValueError, match=r"returned shape \(2,\)"):
        kb.params.apply_init(
            net, {"*/out/bias": lambda s, dtype=None: tf.zeros(2)}
        )


def test_parameter_table_text_and_tie_groups():
    shared = keras.layers.Dense(4, name="shared")
    x = keras.Input((4,))
    model = keras.Model(
        x, keras.layers.Dense(1, name="head")(shared(shared(x)))
    )
    table = kb.params.parameter_table(model)
    groups = {row.path: row.tie_group for row in table}
    assert groups == {
        "shared/kernel": "tie0 (x2)",
        "shared/bias": "tie0 (x2)",
        "head/kernel": "",
        "head/bias": "",
    }
    lines = str(table).splitlines()
    assert (
        lines[0].split()
        == "path shape dtype trainable device tie count".split()
    )
    assert lines[-1] == "total: 25 parameters in 4 variables"
    assert kb.params.tied_layers(model) == {"shared": 2}


def test_materialize_accepts_specs_and_nests():
    net = kb.layers.MLP(units=2)
    out = kb.materialize(net, tf.TensorSpec((None, 3), tf.float32))
    assert out == tf.TensorSpec((None, 2), tf.float32)

    a, b = keras.Input((3,)), keras.Input((4,))
    two = keras.Model(
        [a, b], keras.layers.Concatenate()([a, b]), name="two_inputs"
    )
    assert kb.materialize(two, [(None, 3), (None, 4)]) == tf.TensorSpec(
        (None, 7), tf.float32
    )
    with pytest.raises(TypeError, match="Expected a shape tuple"):
        kb.materialize(kb.layers.MLP(), "20")
    with pytest.raises(ValueError, match="Dimensions must be >= 0"):
        kb.materialize(kb.layers.MLP(), (None, -1))


def test_initializers_thresholded_uniform_and_dirac():
    init = kb.initializers.ThresholdedUniform(seed=3)
    w = np.asarray(init((200, 50)))
    assert np.all((w == 0) | ((np.abs(w) >= 5) & (np.abs(w) <= 10)))
    assert 0.4 < np.mean(w == 0) < 0.6
    np.testing.assert_array_equal(w, np.asarray(init((200, 50))))
    restored = keras.initializers.deserialize(
        keras.initializers.serialize(init)
    )
    assert isinstance(restored, kb.initializers.ThresholdedUniform)
    assert restored.get_config() == init.get_config()
    assert kb.initializers.MyInit is kb.initializers.ThresholdedUniform
    with pytest.raises(ValueError, match="minval must be below maxval"):
        kb.initializers.ThresholdedUniform(minval=1, maxval=0)

    conv = keras.layers.Conv2D(
        3,
        3,
        padding="same",
        kernel_initializer=kb.initializers.Dirac(),
        bias_initializer="zeros",
    )
    x = tf.random.stateless_uniform((1, 5, 5, 3), seed=(2, 2))
    np.testing.assert_allclose(conv(x), x, atol=1e-6)
    dense_kernel = np.asarray(kb.initializers.Dirac(2.0)((2, 3)))
    np.testing.assert_array_equal(dense_kernel, [[2, 0, 0], [0, 2, 0]])
    with pytest.raises(ValueError, match="rank >= 2"):
        kb.initializers.Dirac()((3,))


def test_initializer_usable_by_name_in_a_layer_config():
    layer = keras.layers.Dense(
        3, kernel_initializer=kb.initializers.ThresholdedUniform(seed=0)
    )
    config = keras.saving.serialize_keras_object(layer)
    clone = keras.saving.deserialize_keras_object(config)
    assert isinstance(
        clone.kernel_initializer, kb.initializers.ThresholdedUniform
    )
