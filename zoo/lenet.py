"""LeNet (LeCun et al., 1998, "Gradient-based learning applied to document
recognition"), as in the book's chapter "Convolutional Neural Networks",
and its batch-normalized variant (Ioffe & Szegedy, 2015, "Batch
Normalization"), as in the book's section on batch normalization.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

import kerasblocks as kb
from zoo._image import ImageHead, ImageModel, Stage
from zoo._registry import register_model

_NORMS = (None, "keras", "scratch")


@kb.register(package="zoo")
class LeNet(ImageModel):
    """LeNet-5: two sigmoid conv + average-pool stages, three dense layers.

    Args:
        batch_norm: None (the original), "keras" (the book's concise
            version, `keras.layers.BatchNormalization`) or "scratch"
            (`kerasblocks.layers.BatchNorm`). With batch norm the first
            convolution is unpadded, as in the book.
        activation: activation of the hidden layers (the book's sigmoid).
        input_shape, num_classes, include_top, pooling,
            classifier_activation: as in keras.applications.
        features_only: output the two stages' feature maps.
    """

    def __init__(
        self,
        *,
        batch_norm: str | None = None,
        activation: str = "sigmoid",
        input_shape: tuple[int, int, int] = (28, 28, 1),
        num_classes: int = 10,
        include_top: bool = True,
        pooling: str | None = None,
        classifier_activation: str | Callable | None = "softmax",
        features_only: bool = False,
        name: str = "lenet",
        **kwargs,
    ):
        if batch_norm not in _NORMS:
            raise ValueError(
                f"batch_norm must be one of {_NORMS}. Received: {batch_norm=}"
            )
        head = ImageHead(
            "LeNet",
            input_shape=input_shape,
            num_classes=num_classes,
            include_top=include_top,
            pooling=pooling,
            classifier_activation=classifier_activation,
            features_only=features_only,
            min_input_size=12 if batch_norm is None else 16,
        )

        def norm_act(x, index, kind):
            if batch_norm == "keras":
                x = keras.layers.BatchNormalization(name=f"{kind}{index}_bn")(x)
            elif batch_norm == "scratch":
                x = kb.layers.BatchNorm(name=f"{kind}{index}_bn")(x)
            return keras.layers.Activation(
                activation, name=f"{kind}{index}_act"
            )(x)

        inputs = head.inputs()
        stages = []
        x = inputs
        for index, filters in enumerate((6, 16), start=1):
            padding = "same" if index == 1 and batch_norm is None else "valid"
            x = keras.layers.Conv2D(
                filters, 5, padding=padding, name=f"conv{index}"
            )(x)
            x = norm_act(x, index, "conv")
            x = keras.layers.AveragePooling2D(
                2, strides=2, name=f"pool{index}"
            )(x)
            stages.append(Stage(f"pool{index}", x, 2**index))

        def top(x):
            x = keras.layers.Flatten(name="flatten")(x)
            for index, units in enumerate((120, 84), start=1):
                x = keras.layers.Dense(units, name=f"fc{index}")(x)
                x = norm_act(x, index, "fc")
            return x

        outputs = head.outputs(stages, top)
        self._finish(head, inputs, outputs, name, kwargs)


@register_model
def lenet(**overrides) -> LeNet:
    """LeNet-5 for 28x28x1 images with sigmoid activations (the book's)."""
    return LeNet(**overrides)


@register_model
def lenet_bn(**overrides) -> LeNet:
    """LeNet-5 with batch normalization after each conv/dense layer."""
    return LeNet(**{"batch_norm": "keras", "name": "lenet_bn", **overrides})
