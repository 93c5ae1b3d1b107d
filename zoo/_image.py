"""What every image model of the zoo shares.

`ImageModel` is a Keras Functional model whose config is its constructor
call (so `.keras`, `.h5`, `summary()` and `from_config` all work and the
config names the architecture, not a graph). A family's constructor
builds its feature stages from `kerasblocks` blocks, and `ImageHead`
finishes the model with keras.applications' meanings:

- `include_top=True`: the family's top (by default global average
  pooling), then `Dense(num_classes, classifier_activation)` named
  "predictions";
- `include_top=False`: the last feature map, globally pooled when
  `pooling` is "avg" or "max";
- `features_only=True`: the feature map of every stage, described by
  `model.feature_info` (name, stride, channels).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import keras

from kerasblocks._config import CapturedConfig
from kerasblocks._validation import positive_int as _positive_int

POOLINGS = (None, "avg", "max")


@dataclasses.dataclass(frozen=True)
class FeatureInfo:
    """One stage output of a `features_only` model."""

    name: str
    stride: int
    channels: int


@dataclasses.dataclass
class Stage:
    """A stage output while a model is being built."""

    name: str
    tensor: Any
    stride: int


class ImageHead:
    """Validates the shared image arguments and assembles the outputs.

    Args:
        model_name: the architecture's name, for error messages.
        input_shape: `(height, width, channels)`.
        num_classes: classes of the classifier (used with include_top).
        include_top: put the classifier on top.
        pooling: None, "avg" or "max" (used without include_top).
        classifier_activation: activation of the classifier.
        features_only: output every stage's feature map instead.
        min_input_size: the smallest height/width the architecture takes.
    """

    def __init__(
        self,
        model_name: str,
        *,
        input_shape: Sequence[int],
        num_classes: int,
        include_top: bool,
        pooling: str | None,
        classifier_activation: str | Callable | None,
        features_only: bool,
        min_input_size: int,
    ):
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
            raise ValueError(
                f"{model_name}: input_shape must be (height, width, channels)."
                f" Received: input_shape={input_shape!r}"
            )
        for dim in input_shape:
            _positive_int("input_shape entries", dim)
        height, width, _ = input_shape
        if min(height, width) < min_input_size:
            raise ValueError(
                f"{model_name}: input_shape={tuple(input_shape)} is too small; "
                f"this architecture needs height and width of at least "
                f"{min_input_size}."
            )
        if include_top and not features_only:
            _positive_int("num_classes", num_classes)
        if pooling not in POOLINGS:
            raise ValueError(
                f"{model_name}: pooling must be one of {POOLINGS}. "
                f"Received: pooling={pooling!r}"
            )
        try:
            keras.activations.get(classifier_activation)
        except ValueError:
            raise ValueError(
                f"{model_name}: unknown classifier_activation "
                f"{classifier_activation!r}"
            ) from None
        self.model_name = model_name
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.include_top = bool(include_top)
        self.pooling = pooling
        self.classifier_activation = classifier_activation
        self.features_only = bool(features_only)
        self.feature_info: list[FeatureInfo] = []

    def inputs(self) -> keras.KerasTensor:
        return keras.Input(shape=self.input_shape, name="images")

    def outputs(
        self,
        stages: Sequence[Stage],
        top: Callable[[Any], Any] | None = None,
        *,
        dense_classifier: bool = True,
    ):
        """The model outputs, given its stages and optional top.

        Args:
            stages: every stage, in order; the last is the final feature
                map.
            top: maps the final feature map to the classifier's input
                (e.g. flatten and fully connected layers); global average
                pooling when None.
            dense_classifier: end with `Dense(num_classes)`. When False
                (NiN, whose top already has `num_classes` outputs), the
                top's output only gets the classifier activation, as an
                `Activation` layer named "predictions".
        """
        for stage in stages:
            if any(d is not None and d < 1 for d in stage.tensor.shape[1:3]):
                raise ValueError(
                    f"{self.model_name}: input_shape={self.input_shape} is "
                    f"too small; stage {stage.name} has no pixels left "
                    f"(shape {stage.tensor.shape})."
                )
        self.feature_info = [
            FeatureInfo(s.name, s.stride, int(s.tensor.shape[-1]))
            for s in stages
        ]
        x = stages[-1].tensor
        if self.features_only:
            return [s.tensor for s in stages]
        if self.include_top:
            if top is None:
                x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
            else:
                x = top(x)
            if not dense_classifier:
                return keras.layers.Activation(
                    self.classifier_activation, name="predictions"
                )(x)
            return keras.layers.Dense(
                self.num_classes,
                activation=self.classifier_activation,
                name="predictions",
            )(x)
        if self.pooling == "avg":
            return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if self.pooling == "max":
            return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
        return x


class ImageModel(CapturedConfig, keras.Model):
    """Base class of the zoo's image models.

    A subclass builds its graph in `__init__` with an `ImageHead`, then
    calls `self._finish(head, inputs, outputs, name, kwargs)`.
    """

    def _finish(self, head: ImageHead, inputs, outputs, name, kwargs):
        # Keras's Functional constructor ignores unknown keywords, which
        # would let a misspelt argument pass silently.
        unknown = sorted(set(kwargs) - {"trainable", "dtype"})
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got an unexpected keyword argument "
                f"{unknown[0]!r}"
            )
        # Through super(), not keras.Model.__init__: once Keras has put
        # Functional into the class's bases, calling Model.__init__ again
        # would inject it a second time (an inheritance cycle).
        super(ImageModel, self).__init__(
            inputs=inputs,
            outputs=outputs,
            name=name,
            **self._base_kwargs(kwargs),
        )
        self.feature_info = tuple(head.feature_info)
