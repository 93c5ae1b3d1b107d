"""ConvNeXt (Liu et al., 2022, "A ConvNet for the 2020s"), computing
exactly what keras.applications' ConvNeXt computes, so that its weights
port one to one.

An optional ImageNet normalization of the raw input, a 4x4/4 "patchify"
stem convolution and layer norm, four stages of `ConvNeXtBlock`s joined
by downsampling layers (layer norm, then a 2x2/2 convolution), and a
head of global average pooling, layer norm and `Dense`. Without the
classifier, keras.applications still layer-normalizes the (pooled or
unpooled) last feature map, and so does this model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras

import kerasblocks as kb
from kerasblocks.layers.regularization import linear_drop_path_rates
from zoo._image import ImageHead, ImageModel, Stage
from zoo._keras_twin import KerasTwin
from zoo._registry import register_model
from zoo.pretrained import PretrainedCfg

# (depths, filters) per variant, as in the paper's Table 9.
VARIANTS = {
    "tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
    "small": ((3, 3, 27, 3), (96, 192, 384, 768)),
    "base": ((3, 3, 27, 3), (128, 256, 512, 1024)),
    "large": ((3, 3, 27, 3), (192, 384, 768, 1536)),
    "xlarge": ((3, 3, 27, 3), (256, 512, 1024, 2048)),
}
# ImageNet's RGB statistics on the 0-255 scale.
_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_VARIANCE = ((0.229 * 255) ** 2, (0.224 * 255) ** 2, (0.225 * 255) ** 2)


def _layer_norm(name):
    return keras.layers.LayerNormalization(epsilon=1e-6, name=name)


def _positive_ints(name, values, length):
    if (
        not isinstance(values, (tuple, list))
        or len(values) != length
        or any(isinstance(v, bool) or not isinstance(v, int) for v in values)
        or any(v < 1 for v in values)
    ):
        raise ValueError(
            f"{name} must be {length} positive ints. Received: {name}="
            f"{values!r}"
        )


@kb.register(package="zoo")
class ConvNeXt(ImageModel):
    """ConvNeXt with four stages of given depths and widths.

    Layer names: `preprocessing` (a `keras.layers.Normalization` with
    ImageNet's mean and variance for 0-255 RGB inputs, when
    `include_preprocessing`), `stem_conv`, `stem_layernorm`,
    `stage_{i}_block_{j}` (`kerasblocks.layers.ConvNeXtBlock`),
    `downsampling_{i}_layernorm` and `downsampling_{i}_conv` (before
    stages 1 to 3), then the head: `avg_pool`, `head_layernorm`,
    `predictions` (without the classifier: pooling if asked, then
    `head_layernorm`). `features_only` gives each stage's output
    (strides 4, 8, 16, 32).

    Preprocessing: like keras.applications (`include_preprocessing=True`
    by default there too), the model takes raw 0-255 RGB images and
    normalizes them itself; pass `include_preprocessing=False` to feed
    already normalized images. With other than 3 input channels it is
    left out, as keras.applications leaves it out. A port
    keeps whatever the keras model does, so both give equal outputs for
    the same raw input.

    Args:
        depths: blocks in each of the four stages.
        filters: channels of each of the four stages.
        drop_path_rate: stochastic depth rate of the last block; the
            rate grows linearly from 0 over the blocks.
        layer_scale_init_value: initial layer scale (None: none).
        zero_init_last: start every block's layer scale at zero, so that
            every block starts as the identity.
        include_preprocessing: normalize raw 0-255 RGB inputs.
        input_shape, num_classes, include_top, pooling,
            classifier_activation: as in keras.applications.
        features_only: output the four stage outputs instead.

    Example:

    >>> import zoo
    >>> model = zoo.create_model("convnext_tiny", input_shape=(64, 64, 3),
    ...                          include_top=False, pooling="avg")
    >>> model.output_shape
    (None, 768)
    """

    def __init__(
        self,
        *,
        depths: Sequence[int] = VARIANTS["tiny"][0],
        filters: Sequence[int] = VARIANTS["tiny"][1],
        drop_path_rate: float = 0.0,
        layer_scale_init_value: float | None = 1e-6,
        zero_init_last: bool = False,
        include_preprocessing: bool = True,
        input_shape: tuple[int, int, int] = (224, 224, 3),
        num_classes: int = 1000,
        include_top: bool = True,
        pooling: str | None = None,
        classifier_activation: str | Callable | None = "softmax",
        features_only: bool = False,
        name: str = "convnext",
        **kwargs,
    ):
        _positive_ints("depths", depths, 4)
        _positive_ints("filters", filters, 4)
        head = ImageHead(
            "ConvNeXt",
            input_shape=input_shape,
            num_classes=num_classes,
            include_top=include_top,
            pooling=pooling,
            classifier_activation=classifier_activation,
            features_only=features_only,
            min_input_size=32,
        )
        inputs = head.inputs()
        x = inputs
        # keras.applications leaves the RGB normalization out for other
        # channel counts; so does the twin.
        if include_preprocessing and head.input_shape[-1] == 3:
            x = keras.layers.Normalization(
                mean=list(_MEAN), variance=list(_VARIANCE), name="preprocessing"
            )(x)
        x = keras.layers.Conv2D(filters[0], 4, strides=4, name="stem_conv")(x)
        x = _layer_norm("stem_layernorm")(x)
        rates = linear_drop_path_rates(drop_path_rate, sum(depths))
        stages, block = [], 0
        for stage, (depth, width) in enumerate(
            zip(depths, filters, strict=True)
        ):
            if stage:
                x = _layer_norm(f"downsampling_{stage}_layernorm")(x)
                x = keras.layers.Conv2D(
                    width, 2, strides=2, name=f"downsampling_{stage}_conv"
                )(x)
            for index in range(depth):
                x = kb.layers.ConvNeXtBlock(
                    width,
                    drop_path_rate=rates[block],
                    layer_scale_init_value=layer_scale_init_value,
                    zero_init_last=zero_init_last,
                    name=f"stage_{stage}_block_{index}",
                )(x)
                block += 1
            stages.append(Stage(f"stage_{stage}", x, 4 * 2**stage))

        def top(x):
            x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
            return _layer_norm("head_layernorm")(x)

        outputs = head.outputs(stages, top)
        if not include_top and not features_only:
            outputs = _layer_norm("head_layernorm")(outputs)
        self._finish(head, inputs, outputs, name, kwargs)


# The suite's training step needs a layer scale far above 1e-6 (whose
# gradients are too small for one step to move float32 weights); narrow
# stages keep its save/reload rounds fast. The full widths are checked
# by the goldens and the porting tests.
_OVERRIDES = {
    "input_shape": (32, 32, 3),
    "filters": (16, 32, 64, 128),
    "layer_scale_init_value": 1.0,
}


def _variant(variant: str, overrides) -> ConvNeXt:
    depths, filters = VARIANTS[variant]
    arguments = {"depths": depths, "filters": filters}
    return ConvNeXt(**{**arguments, "name": f"convnext_{variant}", **overrides})


# keras.applications' ConvNeXt weights take raw pixels, bicubic.
_IMAGENET = {"interpolation": "bicubic", "preprocessing": "builtin"}

# keras.applications prefixes every layer with the model's name, counts
# downsampling layers from 0, keeps the layer scale as a layer of its
# own and, without its top, ends in an unnamed layer normalization.
_KERAS = KerasTwin(
    layers=(
        (r"^stem_(conv|layernorm)$", r"{name}_stem_\1"),
        (
            r"^downsampling_(\d)_(\w+)$",
            lambda m: f"{{name}}_downsampling_{m[2]}_{int(m[1]) - 1}",
        ),
        (
            r"^head_layernorm$",
            ("{name}_head_layernorm", "layer_normalization#"),
        ),
        (r"^(stage_\d+_block_\d+)$", r"{name}_\1_layer_scale"),
        (r"^stage_", "{name}_stage_"),
        (r"^predictions$", "{name}_head_dense"),
    ),
    classifier="{name}_head_dense",
    arguments=lambda k: {
        "include_preprocessing": k.count(f"{k.name}_prestem_normalization") > 0
    },
)


@register_model(
    pretrained_cfg=PretrainedCfg("ConvNeXtTiny", **_IMAGENET),
    keras_twin=_KERAS.named("convnext_tiny"),
    test_overrides=_OVERRIDES,
)
def convnext_tiny(**overrides) -> ConvNeXt:
    """ConvNeXt-T for 224x224x3 images (0-255 RGB), 1000 classes."""
    return _variant("tiny", overrides)


@register_model(
    pretrained_cfg=PretrainedCfg("ConvNeXtSmall", **_IMAGENET),
    keras_twin=_KERAS.named("convnext_small"),
    test_overrides=_OVERRIDES,
    test_covered_by="convnext_tiny",
)
def convnext_small(**overrides) -> ConvNeXt:
    """ConvNeXt-S for 224x224x3 images (0-255 RGB), 1000 classes."""
    return _variant("small", overrides)


@register_model(
    pretrained_cfg=PretrainedCfg("ConvNeXtBase", **_IMAGENET),
    keras_twin=_KERAS.named("convnext_base"),
    test_overrides=_OVERRIDES,
    test_covered_by="convnext_tiny",
)
def convnext_base(**overrides) -> ConvNeXt:
    """ConvNeXt-B for 224x224x3 images (0-255 RGB), 1000 classes."""
    return _variant("base", overrides)


@register_model(
    pretrained_cfg=PretrainedCfg("ConvNeXtLarge", **_IMAGENET),
    keras_twin=_KERAS.named("convnext_large"),
    test_overrides=_OVERRIDES,
    test_covered_by="convnext_tiny",
)
def convnext_large(**overrides) -> ConvNeXt:
    """ConvNeXt-L for 224x224x3 images (0-255 RGB), 1000 classes."""
    return _variant("large", overrides)


@register_model(
    pretrained_cfg=PretrainedCfg("ConvNeXtXLarge", **_IMAGENET),
    keras_twin=_KERAS.named("convnext_xlarge"),
    test_overrides=_OVERRIDES,
    test_covered_by="convnext_tiny",
)
def convnext_xlarge(**overrides) -> ConvNeXt:
    """ConvNeXt-XL for 224x224x3 images (0-255 RGB), 1000 classes."""
    return _variant("xlarge", overrides)
