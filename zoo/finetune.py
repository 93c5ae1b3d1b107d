"""Fine-tuning a zoo image model: which layers train.

`freeze(model, mode)` makes the backbone (or everything but the
classifier) untrainable; `head_layer_names` says which layers form the
top that `include_top=False` leaves out.
"""

from __future__ import annotations

import keras

from kerasblocks.choices import FREEZE as FREEZE_MODES


def _image_model(model: keras.Model):
    from zoo._image import ImageModel

    if isinstance(model, ImageModel):
        return model
    inner = [layer for layer in model.layers if isinstance(layer, ImageModel)]
    if len(inner) != 1:
        raise ValueError(
            f"'{model.name}' is not a zoo image model (nor wraps exactly one)."
        )
    return inner[0]


def head_layer_names(model: keras.Model) -> list[str]:
    """The layers of a zoo image model that `include_top=False` leaves
    out: the pooling, the fully connected layers and the classifier."""
    inner = _image_model(model)
    config = {**inner.get_config(), "include_top": False, "pooling": None}
    backbone = {layer.name for layer in type(inner).from_config(config).layers}
    return [layer.name for layer in inner.layers if layer.name not in backbone]


def freeze(model: keras.Model, mode: str) -> list[str]:
    """Makes part of a zoo image model untrainable, for fine-tuning.

    Args:
        model: a zoo image model (or one behind `with_preprocessing`).
        mode: "none" (all trainable), "backbone" (the layers
            `include_top=False` keeps are frozen; the top, e.g. VGG's
            fully connected layers, trains) or "all_but_head" (only the
            classifier, "predictions", trains).

    Returns:
        The names of the layers left trainable.

    A frozen `BatchNormalization` runs in inference mode (Keras 3's rule
    for `trainable=False`): its moving statistics stay those of the
    pretrained weights, which is what small fine-tuning sets need.

    Example:

    >>> import zoo
    >>> model = zoo.create_model("resnet18", num_classes=3)
    >>> zoo.finetune.freeze(model, "backbone")
    ['avg_pool', 'predictions']
    >>> len(model.trainable_weights)
    2
    """
    if mode not in FREEZE_MODES:
        raise ValueError(
            f"freeze must be one of {FREEZE_MODES}. Received: {mode!r}"
        )
    inner = _image_model(model)
    model.trainable = True
    if mode == "none":
        trainable = [layer.name for layer in inner.layers]
    elif mode == "all_but_head":
        trainable = ["predictions"]
    else:
        trainable = head_layer_names(inner)
    for layer in inner.layers:
        layer.trainable = layer.name in trainable
    return [layer.name for layer in inner.layers if layer.trainable]
