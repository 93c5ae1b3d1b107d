"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012, "ImageNet
Classification with Deep Convolutional Neural Networks"), as in the
book's section "Deep Convolutional Neural Networks (AlexNet)": one
input tower, no local response normalization, 224x224 grayscale
(Fashion-MNIST resized) and 10 classes by default.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

import kerasblocks as kb
from zoo._image import ImageHead, ImageModel, Stage, _positive_int
from zoo._registry import register_model

# (filters, kernel_size, strides, padding, pooled afterwards) of conv1..5.
_CONVS = (
    (96, 11, 4, "valid", True),
    (256, 5, 1, "same", True),
    (384, 3, 1, "same", False),
    (384, 3, 1, "same", False),
    (256, 3, 1, "same", True),
)
# The 11x11/4 valid convolution and three 3x3/2 valid pools need
# 67 -> 15 -> 7 -> 3 -> 1 pixels.
_MIN_INPUT_SIZE = 67


@kb.register(package="zoo")
class AlexNet(ImageModel):
    """AlexNet: five ReLU convolutions with three 3x3/2 max pools, then
    two dropout-regularized fully connected layers.

    Layers: conv1..conv5, pool1..pool3, flatten, fc1, drop1, fc2, drop2,
    predictions.

    Args:
        fc_units: width of fc1 and fc2 (the paper's 4096).
        dropout_rate: dropout after fc1 and fc2 (the paper's 0.5).
        input_shape, num_classes, include_top, pooling,
            classifier_activation: as in keras.applications.
        features_only: output the three pooled feature maps.

    Example:

    >>> from zoo.alexnet import AlexNet
    >>> model = AlexNet(input_shape=(67, 67, 1), fc_units=16)
    >>> model.get_layer("pool3").output.shape, model.output_shape
    ((None, 1, 1, 256), (None, 10))
    """

    def __init__(
        self,
        *,
        fc_units: int = 4096,
        dropout_rate: float = 0.5,
        input_shape: tuple[int, int, int] = (224, 224, 1),
        num_classes: int = 10,
        include_top: bool = True,
        pooling: str | None = None,
        classifier_activation: str | Callable | None = "softmax",
        features_only: bool = False,
        name: str = "alexnet",
        **kwargs,
    ):
        _positive_int("fc_units", fc_units)
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(
                f"dropout_rate must be in [0, 1). Received: {dropout_rate=}"
            )
        head = ImageHead(
            "AlexNet",
            input_shape=input_shape,
            num_classes=num_classes,
            include_top=include_top,
            pooling=pooling,
            classifier_activation=classifier_activation,
            features_only=features_only,
            min_input_size=_MIN_INPUT_SIZE,
        )
        inputs = head.inputs()
        x = inputs
        stages, stride, pools = [], 1, 0
        for index, spec in enumerate(_CONVS, start=1):
            filters, kernel_size, strides, padding, pooled = spec
            x = keras.layers.Conv2D(
                filters,
                kernel_size,
                strides=strides,
                padding=padding,
                activation="relu",
                name=f"conv{index}",
            )(x)
            stride *= strides
            if pooled:
                pools += 1
                x = keras.layers.MaxPooling2D(
                    3, strides=2, name=f"pool{pools}"
                )(x)
                stride *= 2
                stages.append(Stage(f"pool{pools}", x, stride))

        def top(x):
            x = keras.layers.Flatten(name="flatten")(x)
            for index in (1, 2):
                x = keras.layers.Dense(
                    fc_units, activation="relu", name=f"fc{index}"
                )(x)
                x = keras.layers.Dropout(dropout_rate, name=f"drop{index}")(x)
            return x

        outputs = head.outputs(stages, top)
        self._finish(head, inputs, outputs, name, kwargs)


@register_model(
    # 4096-unit FC layers would dominate the suite's save round trips;
    # the architecture under test is the same at 64 units.
    test_overrides={
        "input_shape": (_MIN_INPUT_SIZE, _MIN_INPUT_SIZE, 1),
        "fc_units": 64,
    },
)
def alexnet(**overrides) -> AlexNet:
    """AlexNet for 224x224x1 images and 10 classes (the book's)."""
    return AlexNet(**overrides)
