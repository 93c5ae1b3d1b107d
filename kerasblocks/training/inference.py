"""An image classifier ready to answer, whatever it was saved as.

`open_model(path)` takes a kb-train run directory, a `.keras` or `.h5`
file, a SavedModel directory, a `.tflite` or an `.onnx` file, and
returns a `Predictor`: the model run in its own runtime (Keras for a
run and Keras files, TensorFlow's SavedModel loader, LiteRT,
onnxruntime), with the image convention the export carries
(`kerasblocks.io.image_metadata`) or the run records. A file that
records none is taken as kb-train's from-scratch convention ([0, 1]
pixels, the whole image, bilinear), and `Predictor.assumed` says so
in one line. kb-predict and kb-evaluate both read models here, so they
see the pixels serving sees.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

import numpy as np

from kerasblocks import choices
from kerasblocks import io as kb_io
from kerasblocks.data import streams
from kerasblocks.data.dataset import DataError
from kerasblocks.io import _image_header
from kerasblocks.io.image_metadata import ImageMetadata, model_format
from kerasblocks.training import transfer
from kerasblocks.training.errors import UserInputError

KINDS = ("run", *choices.FORMATS)


@dataclasses.dataclass
class Predictor:
    """A classifier, how it takes images, and how to call it.

    Attributes:
        kind: one of `KINDS`.
        path: what was opened.
        metadata: the view, pixel convention, class names and outputs.
        forward: float batch in the model's convention -> its outputs.
        assumed: one line saying which convention was assumed, when the
            model records none (else None).
        encoded: for a SavedModel with image signatures, its
            `serving_bytes`: encoded images -> probabilities.
        max_pixels: an image file whose header declares more pixels
            (height x width) is refused before it is decoded.
    """

    kind: str
    path: str
    metadata: ImageMetadata
    forward: Callable[[np.ndarray], np.ndarray]
    assumed: str | None = None
    encoded: Callable[[Sequence[bytes]], np.ndarray] | None = None
    # False for a model that records no convention: its outputs are
    # taken as probabilities when they look like them.
    outputs_recorded: bool = True
    max_pixels: int = streams.MAX_PIXELS

    @property
    def pixels(self) -> str:
        return self.metadata.pixels

    @property
    def class_names(self) -> list[str] | None:
        names = self.metadata.serving.class_names
        return [str(n) for n in names] if names else None

    def probabilities(self, x) -> np.ndarray:
        """Class probabilities of a float batch (softmax of logits)."""
        scores = np.asarray(self.forward(x), dtype=np.float32)
        if not self.outputs_recorded and _look_like_probabilities(scores):
            return scores
        if self.metadata.outputs == "logits":
            scores = scores - scores.max(axis=-1, keepdims=True)
            scores = np.exp(scores)
            scores /= scores.sum(axis=-1, keepdims=True)
        return scores

    def model_input(self, x):
        """A batch as the pipeline gives it ("unit" or "raw" pixels) in
        the model's own convention (an outside preprocessing mode, such
        as "caffe", applied here)."""
        mode = self.metadata.serving.preprocessing
        if mode in ("none", "unit"):
            return x
        from kerasblocks.layers.preprocessing import ImagePreprocessing

        return ImagePreprocessing(mode)(x)

    def predict_files(self, paths: Sequence[str]) -> np.ndarray:
        """Probabilities `[len(paths), classes]` of image files, each
        cropped, resized and preprocessed as the model is served."""
        limit = self.max_pixels
        if self.encoded is not None:
            return self.encoded([read_image_bytes(p, limit) for p in paths])
        import tensorflow as tf

        serving = self.metadata.serving
        images = [decode_image(p, limit)[tf.newaxis] for p in paths]
        batch = tf.concat([serving.prepare(image) for image in images], 0)
        return self.probabilities(batch.numpy())


def _look_like_probabilities(scores: np.ndarray) -> bool:
    return bool(
        scores.size
        and scores.min() >= 0
        and np.allclose(scores.sum(axis=-1), 1.0, atol=1e-3)
    )


def read_image_bytes(path: str, max_pixels: int = streams.MAX_PIXELS) -> bytes:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such image file")
    with open(path, "rb") as f:
        data = f.read()
    _check_image(path, data, max_pixels)
    return data


def _check_image(path: str, data: bytes, max_pixels: int) -> None:
    import tensorflow as tf

    kinds = {
        b"\xff\xd8\xff": "jpeg",
        b"\x89PNG": "png",
        b"GIF8": "gif",
        b"BM": "bmp",
    }
    if not any(data.startswith(magic) for magic in kinds):
        raise DataError(f"{path}: not an image (JPEG, PNG, BMP or GIF)")
    # From the header, before decoding: a 1.5 MB file can declare 1.6 GB.
    height, width, _ = _image_header.encoded_image_shape(data).numpy()
    why = streams.over_limit(int(height), int(width), max_pixels)
    if why:
        raise DataError(f"{path}: {why}")
    try:
        tf.io.decode_image(data, channels=3, expand_animations=False)
    except tf.errors.InvalidArgumentError:
        raise DataError(f"{path}: damaged image, cannot be decoded") from None


def decode_image(path: str, max_pixels: int = streams.MAX_PIXELS):
    """One image file as uint8 `[height, width, 3]`; a missing file, one
    that is not a readable image or one over `max_pixels` is one clear
    error."""
    import tensorflow as tf

    data = read_image_bytes(path, max_pixels)
    return tf.io.decode_image(data, channels=3, expand_animations=False)


def open_model(
    path: str,
    *,
    checkpoint: str = "latest",
    pixels: str | None = None,
    max_pixels: int = streams.MAX_PIXELS,
) -> Predictor:
    """The classifier at `path` (see the module docstring).

    Args:
        path: a run directory or a model file or export.
        checkpoint: for a run: "latest", "best" or a `ckpt-*` name.
        pixels: "unit" or "raw" to override the recorded convention.
        max_pixels: `predict_files` refuses an image whose header
            declares more pixels (height x width), before decoding it.

    Raises:
        FileNotFoundError, CorruptFileError, UserInputError: a path that
            holds no usable image classifier.

    Example:

    >>> import os, tempfile, keras, numpy as np, tensorflow as tf
    >>> from kerasblocks import io as kb_io
    >>> net = keras.Sequential([keras.Input((4, 4, 3)),
    ...     keras.layers.Flatten(), keras.layers.Dense(2)])
    >>> where = tempfile.mkdtemp()
    >>> kb_io.save_model(net, os.path.join(where, "net.keras"))
    >>> kb_io.write_image_metadata(
    ...     os.path.join(where, "net.keras"),
    ...     kb_io.ImageMetadata(kb_io.ImageServing(
    ...         (4, 4), preprocessing="unit", class_names=("cat", "dog")),
    ...         outputs="logits"))
    >>> image = os.path.join(where, "a.png")
    >>> tf.io.write_file(image, tf.io.encode_png(np.zeros((9, 9, 3), "uint8")))
    >>> model = open_model(os.path.join(where, "net.keras"))
    >>> model.kind, model.pixels, model.class_names
    ('keras', 'unit', ['cat', 'dog'])
    >>> model.predict_files([image]).shape
    (1, 2)
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file or directory")
    if pixels not in (None, "unit", "raw"):
        raise ValueError(f"pixels must be 'unit' or 'raw'. Received: {pixels}")
    streams.check_max_pixels(max_pixels)
    if transfer.is_run_directory(path):
        predictor = _open_run(path, checkpoint)
    else:
        kind = model_format(path)
        opener = {
            "keras": _open_keras,
            "h5": _open_keras,
            "saved_model": _open_saved_model,
            "litert": _open_litert,
            "onnx": _open_onnx,
        }[kind]
        predictor = opener(path)
        predictor.kind = kind
    if pixels is not None and pixels != predictor.pixels:
        serving = dataclasses.replace(
            predictor.metadata.serving,
            preprocessing="none" if pixels == "raw" else "unit",
        )
        predictor.metadata = dataclasses.replace(
            predictor.metadata, serving=serving
        )
        predictor.encoded = None  # the served signature keeps its own
    if pixels is not None:
        predictor.assumed = None
    predictor.max_pixels = max_pixels
    return predictor


def _keras_forward(model):
    from kerasblocks.compile import compile_forward

    forward = compile_forward(model, mode="graph")
    return lambda x: np.asarray(forward(x))


def _view(path, input_shape, outputs: str) -> tuple[ImageMetadata, str]:
    """The convention assumed for a model that records none."""
    shape = tuple(input_shape)
    if len(shape) != 4 or shape[-1] not in (1, 3) or None in shape[1:3]:
        raise UserInputError(
            f"{path}: not an image classifier (input {list(shape)}); "
            "images need a [batch, height, width, 1 or 3] input."
        )
    serving = kb_io.ImageServing(
        tuple(int(s) for s in shape[1:3]),
        channels=int(shape[-1]),
        preprocessing="unit",
    )
    line = (
        f"{path} records no image convention: assuming [0, 1] pixels "
        "(--pixels=unit), the whole image resized bilinearly, classes "
        "by index; give --pixels=raw for a model that takes 0-255."
    )
    return ImageMetadata(serving, outputs), line


def _open_run(run_dir: str, checkpoint: str) -> Predictor:
    from kerasblocks.io.image_serving import output_kind
    from kerasblocks.training import runs

    run = runs.open_run(run_dir, checkpoint)
    model = run.model
    serving = transfer.image_serving(model, run.record)
    if serving is None:
        raise UserInputError(
            f"{run_dir}: its model is not an image classifier (input "
            f"{model.input_shape}, output {model.output_shape})."
        )
    metadata = ImageMetadata(serving, output_kind(model))
    return Predictor("run", run_dir, metadata, _keras_forward(model))


def _open_keras(path: str) -> Predictor:
    from kerasblocks.io.image_serving import output_kind

    model = kb_io.load_model(path, compile=False)
    metadata = kb_io.read_image_metadata(path)
    assumed = None
    if metadata is None:
        metadata, assumed = _view(path, model.input_shape, output_kind(model))
    return Predictor("keras", path, metadata, _keras_forward(model), assumed)


def _open_saved_model(path: str) -> Predictor:
    """Served by TensorFlow's own loader: the float signature
    (`serving_float` beside image signatures, else `serving_default`),
    and `serving_bytes` for encoded images when the export has it."""
    import tensorflow as tf

    from kerasblocks.io import _integrity

    _integrity.verify_directory(path)
    problems = kb_io.check_saved_model(path)
    if problems:
        raise kb_io.UnsafeModelError(path, problems)
    loaded = tf.saved_model.load(path)
    signatures = loaded.signatures
    name = "serving_float" if "serving_float" in signatures else None
    name = name or "serving_default"
    if name not in signatures:
        raise UserInputError(f"{path}: the SavedModel has no {name} signature")
    function = signatures[name]
    inputs = function.structured_input_signature[1]
    if len(inputs) != 1:
        raise UserInputError(
            f"{path}: {name} takes {len(inputs)} inputs; an image "
            "classifier takes one."
        )
    ((key, spec),) = inputs.items()

    def forward(x):
        outputs = function(**{key: tf.convert_to_tensor(x, spec.dtype)})
        return np.asarray(next(iter(outputs.values())))

    metadata = kb_io.read_image_metadata(path)
    assumed = None
    if metadata is None:
        metadata, assumed = _view(path, spec.shape, "logits")
    encoded = None
    if "serving_bytes" in signatures:
        served = signatures["serving_bytes"]

        def encoded(data):
            images = tf.constant(list(data), dtype=tf.string)
            return np.asarray(served(images=images)["probabilities"])

    return Predictor(
        "saved_model",
        path,
        metadata,
        forward,
        assumed,
        encoded,
        outputs_recorded=assumed is None,
    )


def _file_forward(run, path: str):
    """A runtime's `run(path, x)` answering with its first output."""

    def forward(x):
        outputs = run(path, np.asarray(x, np.float32))
        if isinstance(outputs, dict):
            outputs = list(outputs.values())
        if isinstance(outputs, (list, tuple)):
            outputs = outputs[0]
        return np.asarray(outputs)

    return forward


def _open_litert(path: str) -> Predictor:
    forward = _file_forward(kb_io.run_litert, path)
    return _open_file(path, forward, _litert_input_shape)


def _open_onnx(path: str) -> Predictor:
    forward = _file_forward(kb_io.run_onnx, path)
    return _open_file(path, forward, _onnx_input_shape)


def _open_file(path, forward, input_shape) -> Predictor:
    metadata = kb_io.read_image_metadata(path)
    assumed = None
    if metadata is None:
        metadata, assumed = _view(path, input_shape(path), "logits")
    return Predictor(
        "", path, metadata, forward, assumed, outputs_recorded=not assumed
    )


def _litert_input_shape(path: str) -> list:
    from ai_edge_litert import schema_py_generated as schema

    with open(path, "rb") as f:
        model = schema.Model.GetRootAs(f.read(), 0)
    graph = model.Subgraphs(0)
    tensor = graph.Tensors(graph.Inputs(0))
    shape = tensor.ShapeAsNumpy()
    return [None, *[int(s) for s in list(shape)[1:]]]


def _onnx_input_shape(path: str) -> list:
    import onnx

    model = onnx.load(path, load_external_data=False)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value or None for d in dims]
