"""GoogLeNet (Szegedy et al., 2015, "Going Deeper with Convolutions"), as
in the book's section "Multi-Branch Networks (GoogLeNet)": no auxiliary
classifiers, no local response normalization, 96x96 grayscale and 10
classes by default.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

import kerasblocks as kb
from zoo._image import ImageHead, ImageModel, Stage
from zoo._registry import register_model

# Stage -> (c1, c2, c3, c4) of its Inception blocks, named after the
# paper's table (inception3a, 3b, 4a, ...).
_INCEPTIONS = {
    3: (
        (64, (96, 128), (16, 32), 32),
        (128, (128, 192), (32, 96), 64),
    ),
    4: (
        (192, (96, 208), (16, 48), 64),
        (160, (112, 224), (24, 64), 64),
        (128, (128, 256), (24, 64), 64),
        (112, (144, 288), (32, 64), 64),
        (256, (160, 320), (32, 128), 128),
    ),
    5: (
        (256, (160, 320), (32, 128), 128),
        (384, (192, 384), (48, 128), 128),
    ),
}


@kb.register(package="zoo")
class GoogLeNet(ImageModel):
    """GoogLeNet: a 7x7/2 convolution, a 1x1 and a 3x3 convolution, nine
    `Inception` blocks; every stage ends in a 3x3/2 "same" max pool except
    the last, which is globally averaged.

    Layers: conv1, pool1, conv2_reduce, conv2, pool2, inception3a,
    inception3b, pool3, inception4a..inception4e, pool4, inception5a,
    inception5b, then avg_pool and predictions.

    Every convolution and pool is "same"-padded, so any input size works;
    the final feature map is `ceil(size / 32)` wide.

    Args:
        input_shape, num_classes, include_top, pooling,
            classifier_activation: as in keras.applications.
        features_only: output the feature maps of pool1, pool2, pool3,
            pool4 and inception5b.

    Example:

    >>> from zoo.googlenet import GoogLeNet
    >>> model = GoogLeNet(input_shape=(64, 64, 1), features_only=True)
    >>> [(i.name, i.stride, i.channels) for i in model.feature_info[-2:]]
    [('pool4', 32, 832), ('inception5b', 32, 1024)]
    """

    def __init__(
        self,
        *,
        input_shape: tuple[int, int, int] = (96, 96, 1),
        num_classes: int = 10,
        include_top: bool = True,
        pooling: str | None = None,
        classifier_activation: str | Callable | None = "softmax",
        features_only: bool = False,
        name: str = "googlenet",
        **kwargs,
    ):
        head = ImageHead(
            "GoogLeNet",
            input_shape=input_shape,
            num_classes=num_classes,
            include_top=include_top,
            pooling=pooling,
            classifier_activation=classifier_activation,
            features_only=features_only,
            min_input_size=1,
        )

        def pool(x, index):
            return keras.layers.MaxPooling2D(
                3, strides=2, padding="same", name=f"pool{index}"
            )(x)

        inputs = head.inputs()
        x = keras.layers.Conv2D(
            64, 7, strides=2, padding="same", activation="relu", name="conv1"
        )(inputs)
        x = pool(x, 1)
        stages = [Stage("pool1", x, 4)]
        x = keras.layers.Conv2D(64, 1, activation="relu", name="conv2_reduce")(
            x
        )
        x = keras.layers.Conv2D(
            192, 3, padding="same", activation="relu", name="conv2"
        )(x)
        x = pool(x, 2)
        stages.append(Stage("pool2", x, 8))
        for index, blocks in _INCEPTIONS.items():
            for letter, channels in zip("abcde", blocks, strict=False):
                x = kb.layers.Inception(
                    *channels, name=f"inception{index}{letter}"
                )(x)
            if index < 5:
                x = pool(x, index)
                stages.append(Stage(f"pool{index}", x, 2 ** (index + 1)))
        stages.append(Stage("inception5b", x, 32))
        outputs = head.outputs(stages)
        self._finish(head, inputs, outputs, name, kwargs)


@register_model(test_overrides={"input_shape": (32, 32, 1)})
def googlenet(**overrides) -> GoogLeNet:
    """GoogLeNet for 96x96x1 images and 10 classes (the book's)."""
    return GoogLeNet(**overrides)
