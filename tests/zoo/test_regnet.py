"""RegNet: the book's RegNetX32 and the paper's RegNetX/RegNetY sizes.

The conformance suite (test_conformance.py) covers saving, XLA and
training; here: shapes, the book's parameter count against its own
layer list, and the paper's parameter counts.
"""

import keras
import pytest

import kerasblocks as kb
import zoo
from zoo.regnet import RegNet, uniform_stages

# Parameter counts of the paper's models as pycls (the paper's code)
# counts them: trainable weights (its convolutions have no bias). Rounded,
# they are the paper's Table 3 figures (2.7M, 5.2M, ...).
PAPER = {
    "regnetx_002": (2_684_792, 2.7),
    "regnetx_004": (5_157_512, 5.2),
    "regnetx_006": (6_196_040, 6.2),
    "regnety_002": (3_162_996, 3.2),
    "regnety_004": (4_344_144, 4.3),
    "regnety_006": (6_055_160, 6.1),
}


def _count(variables):
    return sum(int(keras.ops.size(v)) for v in variables)


def test_book_regnetx32_shapes():
    model = zoo.create_model("regnetx32")
    assert model.input_shape == (None, 96, 96, 1)
    assert model.output_shape == (None, 10)
    assert model.get_layer("stem_relu").output.shape == (None, 48, 48, 32)
    assert model.get_layer("stage1_block4").output.shape == (
        None,
        24,
        24,
        32,
    )
    assert model.get_layer("stage2_block6").output.shape == (
        None,
        12,
        12,
        80,
    )
    # Group width 16: 32 / 16 and 80 / 16 groups.
    assert model.get_layer("stage1_block1").conv2.groups == 2
    assert model.get_layer("stage2_block3").conv2.groups == 5
    blocks = [
        layer
        for layer in model.layers
        if isinstance(layer, kb.layers.ResNeXtBlock)
    ]
    assert len(blocks) == 10
    assert [b.strides for b in blocks] == [2, 1, 1, 1, 2, 1, 1, 1, 1, 1]
    assert [b.use_projection for b in blocks] == [
        True,
        False,
        False,
        False,
        True,
        False,
        False,
        False,
        False,
        False,
    ]


def _book_regnetx32_reference():
    """The book's RegNetX32 (AnyNet) written out with plain Keras layers."""

    def block(x, channels, strides, projection):
        y = keras.layers.Conv2D(channels, 1)(x)
        y = keras.layers.ReLU()(keras.layers.BatchNormalization()(y))
        y = keras.layers.Conv2D(
            channels, 3, strides=strides, padding="same", groups=channels // 16
        )(y)
        y = keras.layers.ReLU()(keras.layers.BatchNormalization()(y))
        y = keras.layers.BatchNormalization()(
            keras.layers.Conv2D(channels, 1)(y)
        )
        if projection:
            x = keras.layers.Conv2D(channels, 1, strides=strides)(x)
            x = keras.layers.BatchNormalization()(x)
        return keras.layers.ReLU()(keras.layers.Add()([y, x]))

    inputs = keras.Input((96, 96, 1))
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same")(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    for depth, channels in ((4, 32), (6, 80)):
        for i in range(depth):
            x = block(x, channels, 2 if i == 0 else 1, i == 0)
    x = keras.layers.GlobalAvgPool2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def test_book_regnetx32_parameter_count():
    model = zoo.create_model("regnetx32")
    reference = _book_regnetx32_reference()
    assert kb.params.count_parameters(model) == reference.count_params()
    assert reference.count_params() == 183_226


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_parameter_counts(name):
    exact, millions = PAPER[name]
    model = zoo.create_model(name)
    trainable = _count(model.trainable_variables)
    assert trainable == exact
    assert round(trainable / 1e6, 1) == millions
    assert not kb.params.named_parameters(
        model, "*/conv2/bias", allow_empty=True
    )
    assert model.output_shape == (None, 1000)


def test_paper_stage_layout():
    model = zoo.create_model("regnety_002", features_only=True)
    assert [(f.name, f.stride, f.channels) for f in model.feature_info] == [
        ("stem", 2, 32),
        ("stage1", 4, 24),
        ("stage2", 8, 56),
        ("stage3", 16, 152),
        ("stage4", 32, 368),
    ]
    assert [tuple(o.shape[1:3]) for o in model.outputs] == [
        (112, 112),
        (56, 56),
        (28, 28),
        (14, 14),
        (7, 7),
    ]
    # Group width 8; squeeze-excitation width round(0.25 * block input).
    first = model.get_layer("stage3_block1")
    assert first.conv2.groups == 152 // 8
    assert first.se_reduce.filters == 14  # round(0.25 * 56)
    assert model.get_layer("stage3_block2").se_reduce.filters == 38
    x_model = zoo.create_model("regnetx_006")
    assert len(x_model.get_layer("stage2_block1").weights) > 0
    assert x_model.get_layer("stage2_block3").conv2.groups == 96 // 24
    assert x_model.get_layer("stage4_block7").se_reduce is None
    names = [layer.name for layer in x_model.layers]
    assert "stage2_block4" not in names
    assert "stage4_block7" in names


def test_uniform_stages_and_custom_anynet():
    stages = uniform_stages((1, 2), (16, 24), 8, 0.5, 0.25)
    assert stages == [[1, 16, 8, 0.5, 0.25], [2, 24, 8, 0.5, 0.25]]
    model = RegNet(stages, input_shape=(16, 16, 3), num_classes=4)
    assert model.output_shape == (None, 4)
    block = model.get_layer("stage2_block2")
    assert block.conv1.filters == 12  # round(24 * 0.5)
    assert block.se_reduce.filters == 6  # round(0.25 * 24)
    clone = RegNet.from_config(model.get_config())
    assert kb.params.count_parameters(clone) == kb.params.count_parameters(
        model
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="too small"):
        zoo.create_model("regnetx_002", input_shape=(31, 31, 3))
    with pytest.raises(ValueError, match="too small"):
        zoo.create_model("regnetx32", input_shape=(7, 7, 1))
    with pytest.raises(ValueError, match="stages must be a non-empty"):
        RegNet([])
    with pytest.raises(ValueError, match=r"stages\[1\]=\(2, 24, 8\)"):
        RegNet([(1, 16, 8, 1.0, 0.0), (2, 24, 8)])
    with pytest.raises(ValueError, match="stem_filters"):
        zoo.create_model("regnetx32", stem_filters=0)
    with pytest.raises(ValueError, match="one entry per stage"):
        uniform_stages((1, 2), (16,), 8)
    with pytest.raises(ValueError, match="group_width must be at most"):
        RegNet([(1, 8, 16, 1.0, 0.0)], input_shape=(8, 8, 3))
