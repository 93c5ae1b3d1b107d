"""How a zoo model is a keras.applications model: the declarative part.

A registered zoo model that is identical to a keras.applications model
carries a `KerasTwin` (`register_model(keras_twin=...)`): the name
keras.applications gives the model, a few rules that turn each zoo
layer path into keras.applications' layer name, and the arguments that
only the Keras model's layers reveal (a width in its name, a dropout
rate). `zoo._porting` does the rest, the same way for every family.
The registration also carries the model's `PretrainedCfg` (what its
pretrained weights expect); `register_model` records both here, in a
table the port and `zoo.pretrained` read without importing the
registry.

A rule is `(pattern, replacement)`: `re.sub` on the zoo layer path
(e.g. `"conv2_block1/conv1"`), applied in order; whatever "/" is left
becomes "_". A replacement is a `re.sub` template, a function of the
match, or a tuple of names of which the first the Keras model has is
taken. `{name}` in the result stands for the Keras model's name, and a
name ending in "#" for the layers Keras named by counting (`conv2d`,
`conv2d_1`, ...; see `auto_named_layers`), taken in the order the zoo
model's layers come.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Callable
from typing import Any

import keras

Rule = tuple[str, "str | tuple[str, ...] | Callable[[re.Match], str]"]
# The last character of a name that stands for the auto-named layers.
AUTO = "#"


def auto_named_layers(keras_model: keras.Model, prefix: str) -> list[str]:
    """Names of the layers of `keras_model` that Keras named `prefix`,
    `prefix_1`, `prefix_2`, ..., in the order they were created.

    Some keras.applications families (Inception-v3, Inception-ResNet-v2,
    Xception's shortcuts) leave layers unnamed, so Keras names them
    after their class with a counter. The counter is global to the
    session, but it grows in creation order, which is the only identity
    those layers have.
    """
    pattern = re.compile(rf"{re.escape(prefix)}(?:_(\d+))?")
    found = []
    for layer in keras_model.layers:
        match = pattern.fullmatch(layer.name)
        if match is not None:
            found.append((int(match.group(1) or 0), layer.name))
    return [name for _, name in sorted(found)]


class Source:
    """What a keras.applications model shows of the arguments it was
    built with, for a `KerasTwin`'s `arguments` and `top_arguments`.

    `kind` below is a layer class (isinstance) or a shell-style pattern
    of layer names.
    """

    def __init__(self, keras_model: keras.Model, include_top: bool):
        self.model = keras_model
        self.name = keras_model.name
        self.include_top = include_top

    def layers(self, kind) -> list:
        if isinstance(kind, str):
            return [
                la
                for la in self.model.layers
                if fnmatch.fnmatchcase(la.name, kind)
            ]
        return [la for la in self.model.layers if isinstance(la, kind)]

    def count(self, kind) -> int:
        """How many layers of `kind` the model has."""
        return len(self.layers(kind))

    def rate(self, kind, default: float | None) -> float | None:
        """The `rate` of the first layer of `kind` (a dropout), else
        `default`."""
        found = self.layers(kind)
        return float(found[0].rate) if found else default

    def number_in_name(self, pattern: str, form: str) -> float:
        """The number that `pattern`'s first group matches in the model's
        name (`form` says how keras.applications names it)."""
        match = re.fullmatch(pattern, self.name)
        if match is None:
            raise ValueError(
                f"Cannot port {self.name!r}: keras.applications names this "
                f"model {form!r}."
            )
        return float(match.group(1))


@dataclasses.dataclass(frozen=True)
class KerasTwin:
    """A zoo model's keras.applications identity (see the module
    docstring).

    Attributes:
        name: the keras.applications model's `name`, or a shell-style
            pattern of names ("mobilenetv2_*").
        layers: rules from zoo layer paths to Keras layer names.
        classifier: the Keras classifier layer (a Dense or a 1x1
            convolution); `{name}` is the model's name.
        arguments: `Source -> dict` of the zoo arguments the Keras model
            shows only through its layers (None values are left out).
        top_arguments: the same, read only when the model has its top.
    """

    name: str = ""
    layers: tuple[Rule, ...] = ()
    classifier: str = "predictions"
    arguments: Callable[[Source], dict[str, Any]] | None = None
    top_arguments: Callable[[Source], dict[str, Any]] | None = None

    def named(self, name: str) -> KerasTwin:
        """This family's twin for the Keras model called `name`."""
        return dataclasses.replace(self, name=name)

    def matches(self, keras_name: str) -> bool:
        return fnmatch.fnmatchcase(keras_name, self.name)

    def family_arguments(self, source: Source) -> dict[str, Any]:
        found = dict(self.arguments(source) if self.arguments else {})
        if source.include_top and self.top_arguments:
            found.update(self.top_arguments(source))
        return {k: v for k, v in found.items() if v is not None}

    def keras_layer(
        self, zoo_layer: str, keras_name: str, has_layer: Callable
    ) -> str:
        """The Keras layer name of the zoo layer path `zoo_layer`
        (ending in "#" for an auto-named one)."""
        name = zoo_layer
        for pattern, replacement in self.layers:
            if isinstance(replacement, tuple):
                if re.search(pattern, name) is None:
                    continue
                names = [r.replace("{name}", keras_name) for r in replacement]
                name = next((n for n in names if has_layer(n)), names[0])
                continue
            name = re.sub(pattern, replacement, name)
        return name.replace("/", "_").replace("{name}", keras_name)


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


@dataclasses.dataclass(frozen=True)
class RegisteredTwin:
    """A registered model's keras.applications side: the function that
    builds it, its `KerasTwin` and its `PretrainedCfg` (either may be
    None)."""

    name: str
    build: Callable[..., keras.Model]
    keras_twin: KerasTwin | None
    pretrained_cfg: PretrainedCfg | None


# Filled by zoo.register_model; read by the port and zoo.pretrained,
# which thus need not import the registry (it imports them).
_TWINS: dict[str, RegisteredTwin] = {}


def register_twin(twin: RegisteredTwin) -> None:
    _TWINS[twin.name] = twin


def registered_twin(name: str) -> RegisteredTwin | None:
    return _TWINS.get(name)


def registered_twins() -> list[RegisteredTwin]:
    return list(_TWINS.values())
