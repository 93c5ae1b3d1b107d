"""VGG-16/VGG-19 against keras.applications: structure, parameter counts
and ported weights (built with weights=None: nothing downloads)."""

import keras
import numpy as np
import pytest

import zoo


def _uniform(shape, seed):
    # Inputs on the scale of keras.applications' caffe preprocessing.
    rng = np.random.default_rng(seed)
    return rng.uniform(-128.0, 128.0, shape).astype("float32")


def _expanded_names(model):
    """Layer names with each VGGBlock spelled as keras.applications'
    layers (block1 -> block1_conv1, block1_conv2, block1_pool)."""
    names = []
    for layer in model.layers[1:]:
        if hasattr(layer, "convs"):
            subs = [*layer.convs, layer.pool]
            names += [f"{layer.name}_{sub.name}" for sub in subs]
        else:
            names.append(layer.name)
    return names


def test_vgg16_top_ports_from_keras_applications():
    keras.utils.set_random_seed(0)
    source = keras.applications.VGG16(weights=None, classifier_activation=None)
    model = zoo.from_keras_applications(source)
    assert model.name == "vgg16"
    assert model.count_params() == source.count_params() == 138_357_544
    assert _expanded_names(model) == [x.name for x in source.layers[1:]]
    assert model.get_config()["classifier_activation"] is None
    x = _uniform((1, 224, 224, 3), seed=0)
    expected = np.asarray(source(x))
    actual = np.asarray(model(x))
    assert actual.shape == (1, 1000)
    assert np.std(expected) > 1e-2  # logits, not a flat output
    assert np.max(np.abs(actual - expected)) <= 1e-4


def test_vgg19_pooled_features_port_at_another_size():
    keras.utils.set_random_seed(0)
    source = keras.applications.VGG19(
        weights=None, include_top=False, pooling="avg", input_shape=(64, 64, 3)
    )
    model = zoo.from_keras_applications(source)
    config = model.get_config()
    assert (config["include_top"], config["pooling"]) == (False, "avg")
    assert model.count_params() == source.count_params() == 20_024_384
    # keras.applications leaves its pooling layer's name to Keras.
    names = [x.name for x in source.layers[1:-1]]
    assert _expanded_names(model) == [*names, "avg_pool"]
    assert model.get_layer("block3").num_convs == 4
    x = _uniform((1, 64, 64, 3), seed=1)
    expected = np.asarray(source(x))
    actual = np.asarray(model(x))
    assert actual.shape == (1, 512)
    assert np.std(expected) > 1e-2
    assert np.max(np.abs(actual - expected)) <= 1e-4


def _small(application, **kwargs):
    return application(
        weights=None, include_top=False, input_shape=(32, 32, 3), **kwargs
    )


def test_vgg16_renamed_vgg19_does_not_port():
    source = _small(keras.applications.VGG16, name="vgg19")
    with pytest.raises(ValueError, match="Weight 14 does not match") as info:
        zoo.from_keras_applications(source)
    assert "vgg19 has no layer 'block3_conv4'" in str(info.value)
    assert "zoo block3/conv4/kernel (3, 3, 256, 256)" in str(info.value)


def test_vgg16_with_a_layer_missing_does_not_port():
    full = _small(keras.applications.VGG16)
    x = inputs = keras.Input((32, 32, 3))
    for layer in full.layers[1:]:
        if layer.name != "block5_conv3":
            x = layer(x)
    source = keras.Model(inputs, x, name="vgg16")
    with pytest.raises(ValueError, match="Weight 24 does not match") as info:
        zoo.from_keras_applications(source)
    assert "vgg16 has no layer 'block5_conv3'" in str(info.value)


def test_vgg19_renamed_vgg16_has_extra_weights():
    source = _small(keras.applications.VGG19, name="vgg16")
    with pytest.raises(ValueError, match="has no place in the zoo") as info:
        zoo.from_keras_applications(source)
    assert "block3_conv4/kernel (3, 3, 256, 256)" in str(info.value)


def test_vgg_variants_differ_only_in_arguments():
    vgg16 = zoo.create_model("vgg16", input_shape=(32, 32, 3), fc_units=8)
    config = vgg16.get_config()
    assert [list(pair) for pair in config["conv_arch"]] == [
        [2, 64],
        [2, 128],
        [3, 256],
        [3, 512],
        [3, 512],
    ]
    assert config["dropout_rate"] == 0.0
    assert not [x for x in vgg16.layers if isinstance(x, keras.layers.Dropout)]
    assert type(vgg16) is type(
        zoo.create_model("vgg11", input_shape=(32, 32, 1), fc_units=8)
    )
