"""Pretrained weights: what each set expects, and how to load it.

Each zoo model that is identical to a keras.applications model carries a
`PretrainedCfg` (timm's idea): the keras.applications constructor whose
weights fit it, the input size, interpolation and crop fraction its
weights were evaluated with, and the preprocessing they expect.
`zoo.create_model(name, weights=...)` loads (see `zoo._loading`):

- `"imagenet"`: the file keras.applications itself would use (its
  file names, URLs and hashes), downloaded into Keras's cache through
  `keras.utils.get_file` by `zoo._download` (atomic, verified, with
  `ZOO_WEIGHTS_MIRROR` and `ZOO_OFFLINE`);
- a file written from a keras.applications model, in any format Keras
  writes (the legacy `.h5` of keras.applications' own files, `.keras`,
  `.weights.h5`, `.h5` from `model.save`), read by Keras into that
  model, then ported;
- a `.keras`, `.h5`, `.weights.h5` or SavedModel of the same
  architecture, through `kerasblocks.io.load_weights`.

A file with a classifier decides the class count unless `num_classes`
is given. When the requested head differs from the file's
(`include_top=False`, another `num_classes`), the backbone is loaded,
the head is new, and a one-line report says which layers were not
loaded. A backbone weight left unloaded is an error unless
`strict=False`.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import keras

from kerasblocks.layers.preprocessing import ImagePreprocessing
from zoo._download import PretrainedWeightsError as PretrainedWeightsError
from zoo._download import imagenet_weights

# Fine-tuning lives in zoo.finetune; reachable from here too.
from zoo.finetune import FREEZE_MODES as FREEZE_MODES
from zoo.finetune import freeze as freeze
from zoo.finetune import head_layer_names as head_layer_names

logger = logging.getLogger("zoo")

# The arguments keras.applications' constructors share with the zoo's
# image models, under Keras's names.
_SHARED = {
    "input_shape": "input_shape",
    "include_top": "include_top",
    "pooling": "pooling",
    "num_classes": "classes",
    "classifier_activation": "classifier_activation",
}


@dataclasses.dataclass(frozen=True)
class PretrainedCfg:
    """What a set of pretrained weights expects.

    Attributes:
        keras_application: the keras.applications constructor whose
            weights fit this model (e.g. "ResNet50").
        input_size: `(height, width, channels)` the weights were trained
            at.
        interpolation: resize method for other image sizes.
        crop_fraction: central crop used for evaluation (timm's
            `crop_pct`): resize to `input_size / crop_fraction`, crop.
        preprocessing: `ImagePreprocessing` mode: "caffe", "tf", "torch",
            or "builtin" when the model normalizes raw 0-255 pixels
            itself (its `include_preprocessing` argument).
        num_classes: classes of the pretrained classifier.
    """

    keras_application: str
    input_size: tuple[int, int, int] = (224, 224, 3)
    interpolation: str = "bilinear"
    crop_fraction: float = 0.875
    preprocessing: str = "tf"
    num_classes: int = 1000

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _cfg(app, size=224, mode="tf", **kw):
    return PretrainedCfg(app, (size, size, 3), preprocessing=mode, **kw)


# Facts from keras.applications (constructor, default size, the
# preprocess_input mode of each family) and timm's crop fractions.
_EFFICIENTNET_V1 = {
    "b0": (224, 0.875),
    "b1": (240, 0.882),
    "b2": (260, 0.890),
    "b3": (300, 0.904),
    "b4": (380, 0.922),
    "b5": (456, 0.934),
    "b6": (528, 0.942),
    "b7": (600, 0.949),
}
_EFFICIENTNET_V2 = {
    "b0": ("B0", 224),
    "b1": ("B1", 240),
    "b2": ("B2", 260),
    "b3": ("B3", 300),
    "s": ("S", 384),
    "m": ("M", 480),
    "l": ("L", 480),
}
PRETRAINED: dict[str, PretrainedCfg] = {
    **{f"resnet{d}": _cfg(f"ResNet{d}", mode="caffe") for d in (50, 101, 152)},
    **{f"resnet{d}v2": _cfg(f"ResNet{d}V2") for d in (50, 101, 152)},
    "vgg16": _cfg("VGG16", mode="caffe"),
    "vgg19": _cfg("VGG19", mode="caffe"),
    **{
        f"densenet{d}": _cfg(f"DenseNet{d}", mode="torch")
        for d in (121, 169, 201)
    },
    "mobilenet": _cfg("MobileNet"),
    "mobilenetv2": _cfg("MobileNetV2"),
    "mobilenetv3_small": _cfg("MobileNetV3Small", mode="builtin"),
    "mobilenetv3_large": _cfg("MobileNetV3Large", mode="builtin"),
    "xception": _cfg("Xception", 299),
    "inceptionv3": _cfg("InceptionV3", 299),
    "inception_resnet_v2": _cfg("InceptionResNetV2", 299),
    "nasnet_mobile": _cfg("NASNetMobile"),
    "nasnet_large": _cfg("NASNetLarge", 331, crop_fraction=0.911),
    **{
        f"convnext_{s}": _cfg(
            f"ConvNeXt{s.title().replace('Xl', 'XL')}",
            mode="builtin",
            interpolation="bicubic",
        )
        for s in ("tiny", "small", "base", "large", "xlarge")
    },
    **{
        f"efficientnet_{k}": _cfg(
            f"EfficientNet{k.upper()}",
            size,
            mode="builtin",
            interpolation="bicubic",
            crop_fraction=crop,
        )
        for k, (size, crop) in _EFFICIENTNET_V1.items()
    },
    **{
        f"efficientnetv2_{k}": _cfg(
            f"EfficientNetV2{suffix}",
            size,
            mode="builtin",
            interpolation="bicubic",
            crop_fraction=1.0,
        )
        for k, (suffix, size) in _EFFICIENTNET_V2.items()
    },
}


def pretrained_cfg(name: str) -> PretrainedCfg | None:
    """The `PretrainedCfg` of a registered model name, or None.

    Example:

    >>> import zoo
    >>> zoo.get_model_entry("resnet50").pretrained_cfg.preprocessing
    'caffe'
    """
    return PRETRAINED.get(name)


def preprocessing_layer(cfg: PretrainedCfg) -> ImagePreprocessing:
    """The layer mapping 0-255 RGB pixels to what `cfg`'s weights
    expect."""
    mode = "none" if cfg.preprocessing == "builtin" else cfg.preprocessing
    return ImagePreprocessing(mode, name="preprocessing")


def with_preprocessing(model: keras.Model, cfg: PretrainedCfg) -> keras.Model:
    """`model` behind the preprocessing its weights expect: the result
    takes RGB pixels in [0, 255] (any integer or float dtype)."""
    inputs = keras.Input(shape=model.input_shape[1:], name="images")
    outputs = model(preprocessing_layer(cfg)(inputs))
    return keras.Model(inputs, outputs, name=model.name)


# --- finding and reading the files -----------------------------------


# keras.applications gives EfficientNet (V1) one more rescaling when it
# loads its ImageNet file by name, not by path: the zoo model keeps it.
_IMAGENET_LAYOUT = {
    f"EfficientNet{k.upper()}": {"stddev_rescaling": True}
    for k in _EFFICIENTNET_V1
}


def _keras_application(name: str, cfg: PretrainedCfg, weights, args):
    """Builds `keras.applications.<cfg.keras_application>` with
    `weights`, the zoo arguments translated to Keras's names."""
    constructor = getattr(keras.applications, cfg.keras_application)
    keras_args = {_SHARED.get(k, k): v for k, v in args.items()}
    if weights == "imagenet":
        # The file keras.applications would load, fetched into Keras's
        # cache by zoo._download (nothing in Keras is patched).
        weights = imagenet_weights(name, cfg.keras_application, keras_args)
    try:
        return constructor(weights=weights, **keras_args)
    except (ValueError, OSError) as error:
        raise PretrainedWeightsError(
            f"{name}: keras.applications.{cfg.keras_application} cannot "
            f"read {weights!r}: {str(error).splitlines()[0]}"
        ) from None


# Width arguments keras.applications' constructors take under the zoo's
# names; the weights file was written at one of them.
_WIDTHS = ("alpha", "depth_multiplier", "minimalistic")
