"""Serving signatures that take what image clients send.

A TF Serving client sends raw pixels (uint8, any size) or encoded JPEG/PNG
bytes (base64 in the REST API), not float tensors preprocessed exactly as
in training. `ImageServing` describes how an image model wants its pixels
(size, interpolation, central crop, preprocessing) and what to return
(probabilities, the top-k indices and, when known, class names);
`image_endpoints` builds the two signatures `export_saved_model` adds:

- `serving_default`: `images`, uint8 `[batch, height, width, 3]` of any
  height and width;
- `serving_bytes`: `images`, a `[batch]` string tensor of encoded JPEG,
  PNG, BMP or GIF images.

Both crop and resize inside the graph with the same function the
in-process `ImageServing.prepare` uses, so served and in-process answers
agree.

A request's cost is bounded: a batch holds 1 to `max_batch` images, and
an image at most `max_pixels` pixels, which `serving_bytes` reads from
the encoded header before decoding (JPEG, PNG, GIF and BMP only). Over a
limit, an empty batch or a wrong channel count, the answer is an
`InvalidArgumentError` naming the limit, and the server carries on.
Images are decoded one at a time and cropped and resized before they
become float, so one image costs about twice its uint8 size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from kerasblocks.io import _image_header
from kerasblocks.layers.preprocessing import MODES as _MODES
from kerasblocks.layers.preprocessing import ImagePreprocessing

# "unit": pixels scaled to [0, 1], what kb-train's own pipeline feeds.
PREPROCESSING = (*[m for m in _MODES if m != "mean_std"], "unit")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "area")


def crop_and_resize(
    images: tf.Tensor,
    size: tuple[int, int],
    crop_fraction: float = 1.0,
    interpolation: str = "bilinear",
) -> tf.Tensor:
    """The evaluation view of float images `[..., height, width, channels]`
    (one image or a batch): the central `crop_fraction` of each side kept,
    then resized to `size`. Serving and kb-train's evaluation both use it,
    so they see the same pixels.

    Example:

    >>> image = tf.reshape(tf.range(16.0), (4, 4, 1))
    >>> crop_and_resize(image, (2, 2), 0.5)[..., 0].numpy().tolist()
    [[5.0, 6.0], [9.0, 10.0]]
    """
    x = images
    if crop_fraction < 1.0:
        shape = tf.shape(x)
        height, width = shape[-3], shape[-2]
        keep_h = tf.maximum(
            tf.cast(tf.cast(height, tf.float32) * crop_fraction, tf.int32), 1
        )
        keep_w = tf.maximum(
            tf.cast(tf.cast(width, tf.float32) * crop_fraction, tf.int32), 1
        )
        top, left = (height - keep_h) // 2, (width - keep_w) // 2
        x = x[..., top : top + keep_h, left : left + keep_w, :]
    return tf.image.resize(x, size, method=interpolation)


@dataclasses.dataclass(frozen=True)
class ImageServing:
    """How an exported image model takes raw images.

    Attributes:
        image_size: `(height, width)` the model takes.
        channels: the model's channels (1 converts RGB to grayscale).
        interpolation: resize method (`tf.image.resize`'s names).
        crop_fraction: the central fraction kept before resizing
            (timm's `crop_pct`; 1.0 keeps the whole image).
        preprocessing: what is done to the resized 0-255 pixels before
            the model: "none" (the model preprocesses itself), "unit"
            (scaled to [0, 1]), or an `ImagePreprocessing` mode ("caffe",
            "tf", "torch").
        class_names: names of the classes, returned for the top k.
        top_k: how many top classes to return.
        max_pixels: the most pixels (height times width) one image of a
            request may have; default 8192x8192 = 67,108,864.
        max_batch: the most images one request may hold; default 32.

    Example:

    >>> serving = ImageServing((4, 4), preprocessing="unit", top_k=2)
    >>> white = tf.fill((1, 8, 8, 3), tf.constant(255, tf.uint8))
    >>> x = serving.prepare(white)
    >>> x.shape, float(x.numpy().max())
    (TensorShape([1, 4, 4, 3]), 1.0)
    """

    image_size: tuple[int, int]
    channels: int = 3
    interpolation: str = "bilinear"
    crop_fraction: float = 1.0
    preprocessing: str = "none"
    class_names: Sequence[str] | None = None
    top_k: int = 5
    max_pixels: int = _image_header.MAX_PIXELS
    max_batch: int = _image_header.MAX_BATCH

    def __post_init__(self):
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise ValueError(
                "image_size must be (height, width). Received: "
                f"image_size={self.image_size!r}"
            )
        if self.channels not in (1, 3):
            raise ValueError(
                f"channels must be 1 or 3. Received: {self.channels}"
            )
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {INTERPOLATIONS}. Received: "
                f"{self.interpolation!r}"
            )
        if not 0 < self.crop_fraction <= 1:
            raise ValueError(
                "crop_fraction must be in (0, 1]. Received: "
                f"{self.crop_fraction}"
            )
        if self.preprocessing not in PREPROCESSING:
            raise ValueError(
                f"preprocessing must be one of {PREPROCESSING}. Received: "
                f"{self.preprocessing!r}"
            )
        if self.top_k < 1:
            raise ValueError(f"top_k must be positive. Received: {self.top_k}")
        for name in ("max_pixels", "max_batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(
                    f"{name} must be a positive int. Received: {value!r}"
                )
            if value < 1:
                raise ValueError(
                    f"{name} must be a positive int. Received: {value}"
                )

    def prepare(self, images: tf.Tensor) -> tf.Tensor:
        """Crops, resizes and preprocesses a batch of RGB images (any
        dtype holding 0-255 values) into the model's float input."""
        # Cropped and resized in their own dtype (the resize kernels read
        # uint8 and write float32), so a large image never exists as
        # float: that would be 4x its uint8 size.
        x = tf.cast(
            crop_and_resize(
                images,
                self.image_size,
                self.crop_fraction,
                self.interpolation,
            ),
            tf.float32,
        )
        if self.channels == 1:
            x = tf.image.rgb_to_grayscale(x)
        if self.preprocessing == "unit":
            return x / 255.0
        if self.preprocessing == "none":
            return x
        return ImagePreprocessing(self.preprocessing)(x)


def output_kind(model: keras.Model) -> str:
    """ "probabilities" for a classifier ending in a softmax, else
    "logits"."""
    last = model.layers[-1]
    # A model behind its preprocessing ends in the wrapped model.
    while isinstance(last, keras.Model) and last.layers:
        last = last.layers[-1]
    activation = getattr(last, "activation", None)
    if activation is keras.activations.softmax:
        return "probabilities"
    return "logits"


def _probabilities(model: keras.Model, outputs: tf.Tensor) -> tf.Tensor:
    if output_kind(model) == "probabilities":
        return outputs
    return tf.nn.softmax(outputs, axis=-1)


def _batch_checks(size: tf.Tensor, max_batch: int) -> list:
    """In-graph checks that a request holds 1 to `max_batch` images."""
    return [
        tf.debugging.Assert(
            size > 0, ["empty batch: a request must hold at least 1 image"]
        ),
        tf.debugging.Assert(
            size <= max_batch,
            [
                tf.strings.format(
                    "a batch of {} images is over the limit "
                    f"max_batch={max_batch}",
                    [size],
                )
            ],
        ),
    ]


def _answer_function(
    model: keras.Model, serving: ImageServing, forward: Callable
) -> Callable:
    """`answer(x)`: the model's probabilities for a prepared batch `x`
    (through `forward`, its traced inference function) and their top
    `serving.top_k` (indices, scores and, with class names, classes);
    checks that the model is a classifier."""
    outputs = model.output_shape
    if not isinstance(outputs, tuple) or len(outputs) != 2:
        raise ValueError(
            f"Image serving needs a classifier with one [batch, classes] "
            f"output; '{model.name}' outputs {outputs}."
        )
    num_classes = outputs[-1]
    k = min(serving.top_k, num_classes)
    names = None
    if serving.class_names is not None:
        if len(serving.class_names) != num_classes:
            raise ValueError(
                f"{len(serving.class_names)} class names for a model with "
                f"{num_classes} classes."
            )
        names = tf.constant([str(n) for n in serving.class_names])

    def answer(x):
        scores = _probabilities(model, forward(x))
        top = tf.math.top_k(scores, k=k)
        result = {
            "probabilities": scores,
            "top_k_indices": top.indices,
            "top_k_scores": top.values,
        }
        if names is not None:
            result["top_k_classes"] = tf.gather(names, top.indices)
        return result

    return answer


def _pixel_checks(shape, serving: ImageServing) -> list:
    """The limits a batch of uint8 images of `shape` must be within."""
    return _batch_checks(shape[0], serving.max_batch) + [
        tf.debugging.Assert(
            tf.equal(shape[3], 3),
            [
                tf.strings.format(
                    "images must be RGB: [batch, height, width, 3] "
                    "uint8; received {} channel(s)",
                    [shape[3]],
                )
            ],
        ),
        tf.debugging.Assert(
            shape[1] * shape[2] <= serving.max_pixels,
            [
                tf.strings.format(
                    "images of {}x{} ({} pixels) are over the limit "
                    f"max_pixels={serving.max_pixels}",
                    [shape[1], shape[2], shape[1] * shape[2]],
                )
            ],
        ),
    ]


def image_endpoints(
    model: keras.Model,
    serving: ImageServing,
    forward: Callable,
) -> dict[str, tuple[Callable, list[tf.TensorSpec]]]:
    """The `serving_default` (uint8 pixels) and `serving_bytes` (encoded
    images) functions of `model` with their input signatures, for
    Keras's `ExportArchive.add_endpoint`; see the module docstring.
    `forward`: the model's traced inference function (Keras's `serve`
    endpoint), which every endpoint calls: the model is traced once."""
    answer = _answer_function(model, serving, forward)

    def serve_pixels(images):
        shape = tf.shape(images, out_type=tf.int64)
        with tf.control_dependencies(_pixel_checks(shape, serving)):
            images = tf.ensure_shape(tf.identity(images), [None, None, None, 3])
        return answer(serving.prepare(images))

    def decode_and_prepare(data):
        image = _image_header.decode_within(data, 3, serving.max_pixels)
        # Each image has its own size: prepared one at a time, exactly as
        # the pixel signature prepares a batch.
        return serving.prepare(image[tf.newaxis])[0]

    def serve_bytes(images):
        shape = [*serving.image_size, serving.channels]
        checks = _batch_checks(
            tf.size(images, out_type=tf.int64), serving.max_batch
        )
        with tf.control_dependencies(checks):
            images = tf.identity(images)
        return answer(
            tf.map_fn(
                decode_and_prepare,
                images,
                fn_output_signature=tf.TensorSpec(shape, tf.float32),
                # One image decoded at a time: memory is bounded by one
                # image of max_pixels, whatever the batch.
                parallel_iterations=1,
            )
        )

    return {
        "serving_default": (
            serve_pixels,
            # Any channel count reaches the graph, whose check names it
            # (a signature mismatch would be TensorFlow's own error).
            [tf.TensorSpec([None, None, None, None], tf.uint8, name="images")],
        ),
        "serving_bytes": (
            serve_bytes,
            [tf.TensorSpec([None], tf.string, name="images")],
        ),
    }
