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

The backbone / head split (timm's `forward_features` / `forward_head`):
every image model is `head(forward_features(x))`. `forward_features(x)`
returns the final feature map (what `include_top=False, pooling=None`
outputs: `(batch, height / stride, width / stride, channels)`), computed
by the model's own layers and weights; the head is what follows it
(global pooling and the family's top, then `predictions`).
`reset_classifier(num_classes)` returns a model with the same backbone
and a new head; `num_classes=0` gives the pooled features.

keras.applications' arguments (`zoo._keras_arguments`): every image
model also takes `classes` (beside `num_classes`), `input_tensor` and
`data_format`, and leaves height and width open (None) where
keras.applications does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import keras

from kerasblocks._config import CapturedConfig
from kerasblocks._validation import positive_int as _positive_int
from kerasblocks.io._specs import finalize_state
from zoo import _keras_arguments

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
        input_shape: Sequence[int | None],
        num_classes: int,
        include_top: bool,
        pooling: str | None,
        classifier_activation: str | Callable | None,
        features_only: bool,
        min_input_size: int,
    ):
        build = _keras_arguments.current_build()
        self.data_format = build.data_format
        self.input_tensor = build.input_tensor
        if self.input_tensor is not None:
            # As in keras.applications, the tensor decides the shape.
            input_shape = _keras_arguments.to_channels_last(
                tuple(self.input_tensor.shape[1:]), self.data_format
            )
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
            raise ValueError(
                f"{model_name}: input_shape must be (height, width, channels)."
                f" Received: input_shape={input_shape!r}"
            )
        height, width, channels = input_shape
        _positive_int("input_shape entries", channels)
        for dim in (height, width):
            if dim is not None:
                _positive_int("input_shape entries", dim)
        shown = self._shown(input_shape)
        if any(d is not None and d < min_input_size for d in (height, width)):
            raise ValueError(
                f"{model_name}: input_shape={shown} is too small; this "
                f"architecture needs height and width of at least "
                f"{min_input_size}."
            )
        if (
            include_top
            and not features_only
            and self.input_tensor is None
            and None in (height, width)
        ):
            raise ValueError(
                f"{model_name}: with include_top=True, give a static "
                f"input_shape (keras.applications' rule). Received: "
                f"input_shape={shown}"
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
        self.feature_map = None
        self.model_inputs = None

    def _shown(self, shape) -> tuple:
        """`shape` (height, width, channels) as the caller gave it."""
        if self.data_format == "channels_first":
            return (shape[2], shape[0], shape[1])
        return tuple(shape)

    def inputs(self) -> keras.KerasTensor:
        """The model's input, channels-last (what the family builds on).

        With `input_tensor`, the model's inputs (`model_inputs`) are
        that tensor's source inputs, as in keras.applications."""
        tensor = self.input_tensor
        if tensor is None:
            x = keras.Input(shape=self._shown(self.input_shape), name="images")
            self.model_inputs = x
        else:
            if not keras.backend.is_keras_tensor(tensor):
                # Keras's own refusal, with Keras's message.
                tensor = keras.Input(tensor=tensor, name="images")
            x = tensor
            sources = keras.utils.get_source_inputs(tensor)
            self.model_inputs = sources[0] if len(sources) == 1 else sources
        if self.data_format == "channels_first":
            x = keras.layers.Permute((2, 3, 1), name="channels_last")(x)
        return x

    def _as_given(self, x, name: str):
        if self.data_format == "channels_first":
            return keras.layers.Permute((3, 1, 2), name=name)(x)
        return x

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
                    f"{self.model_name}: input_shape="
                    f"{self._shown(self.input_shape)} is "
                    f"too small; stage {stage.name} has no pixels left "
                    f"(shape {stage.tensor.shape})."
                )
        self.feature_info = [
            FeatureInfo(s.name, s.stride, int(s.tensor.shape[-1]))
            for s in stages
        ]
        x = self.feature_map = stages[-1].tensor
        if self.features_only:
            return [
                self._as_given(s.tensor, f"{s.name}_channels_first")
                for s in stages
            ]
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
        return self._as_given(x, "channels_first")


class _Untracked:
    """Holds a value out of Keras's attribute tracking (a sub-model kept
    here must not become a layer of the model, nor its weights twice)."""

    __slots__ = ("value",)

    def __init__(self, value=None):
        self.value = value


class ImageModel(CapturedConfig, keras.Model):
    """Base class of the zoo's image models.

    A subclass builds its graph in `__init__` with an `ImageHead`, then
    calls `self._finish(head, inputs, outputs, name, kwargs)`.

    Besides Keras's API, an image model has `feature_info`,
    `forward_features(x)` (the final feature map) and
    `reset_classifier(num_classes, pooling)` (a new head).
    """

    # The pooling of the family's classifier top, which
    # `reset_classifier(0)` uses by default.
    top_pooling = "avg"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _keras_arguments.with_keras_arguments(
                cls.__dict__["__init__"]
            )

    def _finish(self, head: ImageHead, inputs, outputs, name, kwargs):
        # Keras's Functional constructor ignores unknown keywords, which
        # would let a misspelt argument pass silently.
        unknown = sorted(set(kwargs) - {"trainable", "dtype"})
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got an unexpected keyword argument "
                f"{unknown[0]!r}"
            )
        del inputs  # the head's: with input_tensor, its source inputs
        # Through super(), not keras.Model.__init__: once Keras has put
        # Functional into the class's bases, calling Model.__init__ again
        # would inject it a second time (an inheritance cycle).
        super(ImageModel, self).__init__(
            inputs=head.model_inputs,
            outputs=outputs,
            name=name,
            **self._base_kwargs(kwargs),
        )
        self.feature_info = tuple(head.feature_info)
        self.data_format = head.data_format
        self._feature_map = _Untracked(head.feature_map)
        self._features_model = _Untracked()
        self._keras_build = _Untracked(
            (head.input_tensor is not None, head.num_classes)
        )

    @property
    def _input(self):
        inputs = self.inputs
        return inputs[0] if len(inputs) == 1 else inputs

    def get_config(self):
        on_tensor, num_classes = self._keras_build.value
        if on_tensor:
            # Built on a caller's tensor: the model is a graph that
            # starts before the zoo's layers (as in keras.applications),
            # so its config is that graph.
            graph = keras.Model(self._input, self.outputs, name=self.name)
            return graph.get_config()
        config = super().get_config()
        config.pop("input_tensor", None)
        if config.pop("classes", None) is not None:
            config["num_classes"] = num_classes
        config["data_format"] = self.data_format
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        if "layers" in config and "input_layers" in config:
            # A graph config (see get_config): a Functional model of the
            # same layers.
            return keras.Model.from_config(config, custom_objects)
        return super().from_config(config)

    def forward_features(self, inputs, training=None):
        """The backbone's final feature map for `inputs`.

        The output the model has with `include_top=False, pooling=None`,
        computed by this model's layers (same weights), so that
        `model(x)` is the head applied to `forward_features(x)`.

        Args:
            inputs: a batch of images, as the model takes them.
            training: as in `model(x, training=...)`.

        Returns:
            `(batch, height, width, channels)` (the last stage of
            `feature_info`).

        Example:

        >>> import numpy as np, zoo
        >>> model = zoo.create_model("resnet18", input_shape=(32, 32, 1))
        >>> model.forward_features(np.zeros((2, 32, 32, 1))).shape
        TensorShape([2, 1, 1, 512])
        """
        if self._features_model.value is None:
            feature_map = self._feature_map.value
            if self.data_format == "channels_first":
                feature_map = keras.layers.Permute((3, 1, 2))(feature_map)
            self._features_model.value = keras.Model(
                self._input, feature_map, name=f"{self.name}_features"
            )
        return self._features_model.value(inputs, training=training)

    def reset_classifier(
        self, num_classes: int, pooling: str | None = None
    ) -> ImageModel:
        """A copy of this model with a new classifier of `num_classes`.

        Returns a new model of the same class, built from this model's
        config with `num_classes` changed (a Keras Functional model
        cannot change its graph in place); every layer except the head
        gets a copy of this model's weights, so the two train
        independently and this model is unchanged. The new
        `predictions` layer (and any other head layer whose shape
        depends on `num_classes`, as NiN's last block) is freshly
        initialized; weighted layers of the family's top that keep
        their shapes (ConvNeXt's `head_layernorm`, VGG's `fc1`, `fc2`)
        keep their weights.

        Args:
            num_classes: classes of the new classifier; 0 removes the
                classifier: the model then outputs the pooled features
                (`include_top=False` with `pooling`).
            pooling: with `num_classes=0`, "avg", "max" or None (the
                feature map); None by default means the family's top
                pooling (`top_pooling`: "avg", or ViT's "token"). A
                classifier always uses the family's top.

        Returns:
            The new model (its config says `num_classes`, `include_top`
            and `pooling`).

        Example:

        >>> import zoo
        >>> model = zoo.create_model("resnet18", input_shape=(32, 32, 1))
        >>> model.reset_classifier(3).output_shape
        (None, 3)
        >>> model.reset_classifier(0).output_shape
        (None, 512)
        """
        config = self.get_config()
        if config.get("features_only"):
            raise ValueError(
                f"{self.name}: a features_only model has no classifier to "
                "reset."
            )
        if (
            isinstance(num_classes, bool)
            or not isinstance(num_classes, int)
            or num_classes < 0
        ):
            raise ValueError(
                "num_classes must be a non-negative int. Received: "
                f"{num_classes=}"
            )
        if num_classes == 0:
            pooling = self.top_pooling if pooling is None else pooling
            config.update(include_top=False, pooling=pooling)
        else:
            if pooling not in (None, self.top_pooling):
                raise ValueError(
                    f"{self.name}: a classifier pools as the family's top "
                    f"({self.top_pooling!r}); pooling applies to "
                    f"num_classes=0. Received: {pooling=}"
                )
            config.update(include_top=True, num_classes=num_classes)
        model = type(self).from_config(config)
        for layer in model.layers:
            if layer.name == "predictions" or not layer.weights:
                continue
            try:
                source = self.get_layer(layer.name)
            except ValueError:
                continue
            shapes = [tuple(w.shape) for w in layer.weights]
            if shapes == [tuple(w.shape) for w in source.weights]:
                layer.set_weights(source.get_weights())
        finalize_state(model)  # a Normalization derives from its weights
        return model
