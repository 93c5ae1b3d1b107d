"""Network in Network (Lin, Chen & Yan, 2014, "Network In Network"), as in
the book's section "Network in Network (NiN)": `NiNBlock`s in place of
AlexNet's convolutions, and a last block with one channel per class,
globally averaged, in place of fully connected layers.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

import kerasblocks as kb
from zoo._image import ImageHead, ImageModel, Stage
from zoo._registry import register_model

# (filters, kernel_size, strides, padding) of nin1..nin3, each followed by
# a 3x3/2 max pool.
_BLOCKS = (
    (96, 11, 4, "valid"),
    (256, 5, 1, "same"),
    (384, 3, 1, "same"),
)
# The 11x11/4 valid convolution and three 3x3/2 valid pools need
# 67 -> 15 -> 7 -> 3 -> 1 pixels.
_MIN_INPUT_SIZE = 67


@kb.register(package="zoo")
class NiN(ImageModel):
    """NiN: three `NiNBlock`s with 3x3/2 max pools; the top is dropout,
    a `NiNBlock` with `num_classes` channels, and global average pooling.

    Layers: nin1, pool1, nin2, pool2, nin3, pool3, then (include_top)
    dropout, nin4, avg_pool, flatten, predictions (an `Activation`: the
    class scores come from nin4, whose ReLU the book keeps).

    Args:
        dropout_rate: dropout before the last block (the book's 0.5).
        input_shape, num_classes, include_top, pooling,
            classifier_activation: as in keras.applications.
        features_only: output the three pooled feature maps.

    Example:

    >>> from zoo.nin import NiN
    >>> model = NiN(input_shape=(67, 67, 1), num_classes=5)
    >>> model.get_layer("nin4").output.shape, model.output_shape
    ((None, 1, 1, 5), (None, 5))
    """

    def __init__(
        self,
        *,
        dropout_rate: float = 0.5,
        input_shape: tuple[int, int, int] = (224, 224, 1),
        num_classes: int = 10,
        include_top: bool = True,
        pooling: str | None = None,
        classifier_activation: str | Callable | None = "softmax",
        features_only: bool = False,
        name: str = "nin",
        **kwargs,
    ):
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(
                f"dropout_rate must be in [0, 1). Received: {dropout_rate=}"
            )
        head = ImageHead(
            "NiN",
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
        stages, stride = [], 1
        for index, (filters, kernel_size, strides, padding) in enumerate(
            _BLOCKS, start=1
        ):
            x = kb.layers.NiNBlock(
                filters, kernel_size, strides, padding, name=f"nin{index}"
            )(x)
            x = keras.layers.MaxPooling2D(3, strides=2, name=f"pool{index}")(x)
            stride *= strides * 2
            stages.append(Stage(f"pool{index}", x, stride))

        def top(x):
            x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
            x = kb.layers.NiNBlock(num_classes, 3, 1, "same", name="nin4")(x)
            x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
            return keras.layers.Flatten(name="flatten")(x)

        outputs = head.outputs(stages, top, dense_classifier=False)
        self._finish(head, inputs, outputs, name, kwargs)


@register_model(
    test_overrides={"input_shape": (_MIN_INPUT_SIZE, _MIN_INPUT_SIZE, 1)}
)
def nin(**overrides) -> NiN:
    """NiN for 224x224x1 images and 10 classes (the book's)."""
    return NiN(**overrides)
