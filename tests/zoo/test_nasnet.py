"""NASNet: keras.applications parity through weight porting, parameter
counts, the cell plan, feature maps and argument errors."""

import importlib.util
import os

import keras
import pytest

import kerasblocks as kb
import zoo
from kerasblocks.params import count_parameters
from zoo.nasnet import cell_plan

# The shared helpers, loaded by path (see applications_twins.py).
_TWINS = os.path.join(os.path.dirname(__file__), "applications_twins.py")
_SPEC = importlib.util.spec_from_file_location("applications_twins", _TWINS)
twins = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(twins)


_ported_outputs = twins.ported_outputs
_split_counts = twins.trainable_and_not


_KERAS = {
    "nasnet_mobile": keras.applications.NASNetMobile,
    "nasnet_large": keras.applications.NASNetLarge,
}


def test_port_at_224_with_top_gives_equal_logits():
    keras_model = keras.applications.NASNetMobile(
        weights=None, classifier_activation=None
    )
    model, actual, expected = _ported_outputs(keras_model)
    assert isinstance(model, zoo.nasnet.NASNet)
    assert _split_counts(keras_model) == (5_289_978, 36_738)
    assert _split_counts(model) == (5_289_978, 36_738)
    config = model.get_config()
    assert config["penultimate_filters"] == 1056
    assert config["num_blocks"] == 4
    assert config["skip_reduction"] is False
    assert config["classifier_activation"] is None
    twins.assert_same_outputs(actual, expected, (1, 1000), spread=0.1)


def test_port_at_another_size_without_top_gives_equal_features():
    keras_model = keras.applications.NASNetMobile(
        weights=None, input_shape=(96, 112, 3), include_top=False
    )
    model, actual, expected = _ported_outputs(keras_model, seed=1)
    assert model.get_config()["pooling"] is None
    assert count_parameters(model) == count_parameters(keras_model)
    assert count_parameters(model) == 4_269_716
    twins.assert_same_outputs(actual, expected, (1, 3, 4, 1056), spread=0.1)


def test_large_counts_and_port_at_the_smallest_size():
    # Parameters do not depend on the input size, so NASNetLarge is
    # built at 32x32, the smallest size keras.applications accepts. The
    # port covers skip_reduction=True and the 6-cell stacks.
    keras_model = keras.applications.NASNetLarge(
        weights=None,
        input_shape=(32, 32, 3),
        classes=7,
        classifier_activation=None,
    )
    model, actual, expected = _ported_outputs(keras_model, seed=2)
    counts = (88_753_150 - 4_032 * 993 - 993, 196_668)
    assert _split_counts(keras_model) == counts
    assert _split_counts(model) == counts
    config = model.get_config()
    assert config["skip_reduction"] is True
    assert config["penultimate_filters"] == 4032
    assert config["num_classes"] == 7
    twins.assert_same_outputs(actual, expected, (1, 7), spread=0.1)


def test_port_of_a_truncated_model_names_the_missing_weight():
    full = keras.applications.NASNetMobile(
        weights=None, input_shape=(32, 32, 3), include_top=False
    )
    twins.assert_port_refused(
        twins.truncated(full, "normal_concat_3", name="nasnet_mobile"),
        r"zoo reduction_4/adjust_conv_projection/kernel "
        r"\(1, 1, 264, 88\) has no source; nasnet_mobile has no layer "
        r"'adjust_conv_projection_reduce_4' with weights\.$",
    )


def test_cell_plan_numbers_cells_as_keras_applications():
    plan = cell_plan(2, 44, 2)
    assert plan == [
        ("reduction", "stem_1", 11),
        ("reduction", "stem_2", 22),
        ("normal", "0", 44),
        ("normal", "1", 44),
        ("reduction", "reduce_2", 88),
        ("normal", "3", 88),
        ("normal", "4", 88),
        ("reduction", "reduce_4", 176),
        ("normal", "5", 176),
        ("normal", "6", 176),
    ]


def test_features_and_adjust_steps():
    model = zoo.create_model(
        "nasnet_mobile", input_shape=(64, 64, 3), features_only=True
    )
    info = [(f.name, f.stride, f.channels) for f in model.feature_info]
    assert info == [
        ("stem_bn", 2, 32),
        ("reduction_stem_1", 4, 44),
        ("normal_3", 8, 264),
        ("normal_8", 16, 528),
        ("top_relu", 32, 1056),
    ]
    assert [tuple(t.shape[1:3]) for t in model.outputs] == [
        (31, 31),
        (16, 16),
        (8, 8),
        (4, 4),
        (2, 2),
    ]
    adjust = {
        layer.name: layer.adjust
        for layer in model.layers
        if hasattr(layer, "adjust")
    }
    # After a reduction the next cell halves its `previous`; after a
    # normal cell it projects it to the new width.
    assert adjust["reduction_stem_1"] is None
    assert adjust["reduction_stem_2"] == "reduce"
    assert adjust["normal_0"] == "reduce"
    assert adjust["normal_1"] == "project"
    assert adjust["normal_2"] == "project"
    assert adjust["reduction_4"] == "project"
    assert adjust["normal_5"] == "reduce"


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="multiple of 24 \\* filter_multi"):
        zoo.create_model("nasnet_mobile", penultimate_filters=1000)
    with pytest.raises(ValueError, match="at least 32"):
        zoo.create_model("nasnet_mobile", input_shape=(31, 64, 3))
    with pytest.raises(ValueError, match="adjust must be one of"):
        kb.layers.NASNetNormalCell(4, adjust="shrink")
    cell = kb.layers.NASNetNormalCell(4)
    with pytest.raises(ValueError, match="needs previous with 4 channels"):
        cell.build([(2, 5, 5, 8), (2, 5, 5, 6)])
    cell = kb.layers.NASNetNormalCell(4, adjust="project")
    with pytest.raises(ValueError, match="cannot match previous"):
        cell.build([(2, 5, 5, 8), (2, 9, 9, 6)])
