"""Inception-v3 (Szegedy et al., 2016, "Rethinking the Inception
Architecture for Computer Vision"), laid out exactly as
keras.applications.InceptionV3 builds it, so that its weights port one
to one.

A stem of five `ConvBN` units and two max pools (299 -> 35), three
35x35 `InceptionA` modules, the `InceptionB` reduction, four 17x17
`InceptionC` modules with factorized 7x7 convolutions, the `InceptionD`
reduction and two 8x8 `InceptionE` modules, then the head. The stem is
shared with Inception-ResNet-v2 (`zoo.inception_resnet_v2`).
"""

from __future__ import annotations

from collections.abc import Callable

import keras

import kerasblocks as kb
from kerasblocks.params import unique_variables
from zoo._image import ImageHead, ImageModel, Stage
from zoo._porting import register_porter
from zoo._porting_names import gather_sources
from zoo._porting_order import auto_named_layers
from zoo._registry import register_model

# (name, block, arguments) of the modules, in order (the paper's Table 1
# with keras.applications' names).
MODULES = (
    ("mixed0", "InceptionA", {"pool_filters": 32}),
    ("mixed1", "InceptionA", {"pool_filters": 64}),
    ("mixed2", "InceptionA", {"pool_filters": 64}),
    ("mixed3", "InceptionB", {}),
    ("mixed4", "InceptionC", {"filters_7x7": 128}),
    ("mixed5", "InceptionC", {"filters_7x7": 160}),
    ("mixed6", "InceptionC", {"filters_7x7": 160}),
    ("mixed7", "InceptionC", {"filters_7x7": 192}),
    ("mixed8", "InceptionD", {}),
    ("mixed9", "InceptionE", {}),
    ("mixed10", "InceptionE", {}),
)
# The feature maps `features_only` gives, with their strides.
FEATURES = {"mixed2": 8, "mixed7": 16, "mixed10": 32}
# (filters, kernel size, padding) of the stem's units; a 3x3 max pool of
# stride 2 follows the third and the fifth.
STEM = ((32, 3, "valid"), (32, 3, "valid"), (64, 3, "same"))
STEM_2 = ((80, 1, "valid"), (192, 3, "valid"))


def inception_stem(inputs) -> tuple[keras.KerasTensor, list[Stage]]:
    """Inception-v3's stem (`stem_conv1` ... `stem_conv5`, `stem_pool1`,
    `stem_pool2`): the output and the feature stages at strides 2
    (`stem_conv3`) and 4 (`stem_conv5`)."""
    x, stages = inputs, []
    for index, (filters, kernel_size, padding) in enumerate(STEM + STEM_2):
        if index == len(STEM):
            stages.append(Stage(f"stem_conv{index}", x, 2))
            x = keras.layers.MaxPooling2D(3, strides=2, name="stem_pool1")(x)
        x = kb.layers.ConvBN(
            filters,
            kernel_size,
            strides=2 if index == 0 else 1,
            padding=padding,
            name=f"stem_conv{index + 1}",
        )(x)
    stages.append(Stage(f"stem_conv{len(STEM) + len(STEM_2)}", x, 4))
    x = keras.layers.MaxPooling2D(3, strides=2, name="stem_pool2")(x)
    return x, stages


@kb.register(package="zoo")
class InceptionV3(ImageModel):
    """Inception-v3.

    Layer names: the stem (`stem_conv1` ... `stem_conv5`, each a
    `kerasblocks.layers.ConvBN`, and `stem_pool1`, `stem_pool2`), the
    modules `mixed0` ... `mixed10` (see `MODULES`), then the head
    (`avg_pool`, `predictions`). `features_only` gives `stem_conv3`
    (stride 2), `stem_conv5` (4), `mixed2` (8), `mixed7` (16) and
    `mixed10` (32).

    Args:
        input_shape, num_classes, include_top, pooling,
            classifier_activation: as in keras.applications (height and
            width at least 75).
        features_only: output the feature map of each stride instead.

    Example:

    >>> import zoo
    >>> model = zoo.create_model("inceptionv3", input_shape=(75, 75, 3),
    ...                          num_classes=10)
    >>> model.output_shape, model.get_layer("mixed10").output.shape
    ((None, 10), (None, 1, 1, 2048))
    """

    def __init__(
        self,
        *,
        input_shape: tuple[int, int, int] = (299, 299, 3),
        num_classes: int = 1000,
        include_top: bool = True,
        pooling: str | None = None,
        classifier_activation: str | Callable | None = "softmax",
        features_only: bool = False,
        name: str = "inceptionv3",
        **kwargs,
    ):
        head = ImageHead(
            "InceptionV3",
            input_shape=input_shape,
            num_classes=num_classes,
            include_top=include_top,
            pooling=pooling,
            classifier_activation=classifier_activation,
            features_only=features_only,
            min_input_size=75,
        )
        inputs = head.inputs()
        x, stages = inception_stem(inputs)
        for module, block, arguments in MODULES:
            x = getattr(kb.layers, block)(**arguments, name=module)(x)
            if module in FEATURES:
                stages.append(Stage(module, x, FEATURES[module]))
        outputs = head.outputs(stages)
        self._finish(head, inputs, outputs, name, kwargs)


@register_model(test_overrides={"input_shape": (75, 75, 3), "num_classes": 5})
def inceptionv3(**overrides) -> InceptionV3:
    """Inception-v3 for 299x299x3 images, 1000 classes."""
    return InceptionV3(**overrides)


def conv_bn_locator(model, keras_model, named: dict[str, str]):
    """`locate` for `gather_sources` when keras.applications leaves the
    conv-bn units unnamed.

    The zoo's `ConvBN` units, in the order of the zoo's variables (the
    order keras.applications creates its layers in), pair with the
    auto-named `conv2d` and `batch_normalization` layers in creation
    order. `named` maps the zoo layer paths that keras.applications
    does name (e.g. `"predictions"`) to those names.
    """
    convs = auto_named_layers(keras_model, "conv2d")
    norms = auto_named_layers(keras_model, "batch_normalization")
    units: dict[str, int] = {}
    for variable in unique_variables(model):
        layer = variable.path.rsplit("/", 1)[0]
        unit, _, part = layer.rpartition("/")
        if part == "conv" and layer not in named and unit not in units:
            units[unit] = len(units)

    def locate(path):
        layer, weight = path.rsplit("/", 1)
        if layer in named:
            return named[layer], weight
        unit, _, part = layer.rpartition("/")
        names = {"conv": convs, "bn": norms}.get(part, [])
        index = units.get(unit, len(names))
        # An unpaired unit keeps its own path, which gather_sources
        # reports as missing from the keras model.
        return (names[index] if index < len(names) else layer), weight

    return locate


@register_porter("inception_v3")
def _port_inceptionv3(keras_model, config):
    model = InceptionV3(**config)
    locate = conv_bn_locator(model, keras_model, {"predictions": "predictions"})
    return model, gather_sources(model, keras_model, locate)
