"""The image convention an export carries, in every format.

An image classifier's export says how it takes images, so that every
tool feeding it images sees what training and serving saw: the pixel
convention (`preprocessing` "none": 0-255 pixels, the model
preprocesses inside, kb-train's "raw"; "unit": [0, 1]), the evaluation
view (input size, central crop fraction, resize method), the class
names, and whether it outputs probabilities or logits.

| format | where it is kept |
|---|---|
| SavedModel | `assets/kerasblocks/serving.json`, key `image_serving` |
| `.keras` | the archive member `kerasblocks_image.json` |
| `.tflite` | a LiteRT metadata entry named `kerasblocks.image` |
| `.onnx` | the model's `metadata_props`, key `kerasblocks.image` |

The value is the same JSON everywhere (`ImageMetadata.to_json`). It is
read as data: nothing in it runs. LiteRT keeps named metadata buffers
in the model itself (where TFLite Support keeps its own), so the file
stays one file that any LiteRT runtime runs unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile

from kerasblocks.io._atomic import atomic_path
from kerasblocks.io.errors import CorruptFileError
from kerasblocks.io.image_serving import ImageServing

KEY = "kerasblocks.image"
KERAS_MEMBER = "kerasblocks_image.json"
OUTPUTS = ("probabilities", "logits")
# A record is a few class names and numbers; anything larger is not one.
_MAX_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class ImageMetadata:
    """How an exported image classifier takes images and what it returns.

    Attributes:
        serving: the view and pixel convention (`ImageServing`).
        outputs: "probabilities" or "logits".

    Example:

    >>> meta = ImageMetadata(ImageServing((8, 8), preprocessing="none"))
    >>> meta.pixels, ImageMetadata.from_json(meta.to_json()) == meta
    ('raw', True)
    """

    serving: ImageServing
    outputs: str = "probabilities"

    def __post_init__(self):
        if self.outputs not in OUTPUTS:
            raise ValueError(
                f"outputs must be one of {OUTPUTS}. Received: {self.outputs!r}"
            )

    @property
    def pixels(self) -> str:
        """kb-train's name for the convention: "unit" for [0, 1] pixels,
        else "raw" (0-255, preprocessed by the model or by `serving`)."""
        return "unit" if self.serving.preprocessing == "unit" else "raw"

    def to_json(self) -> str:
        serving = dataclasses.asdict(self.serving)
        serving["image_size"] = list(serving["image_size"])
        if serving["class_names"] is not None:
            serving["class_names"] = [str(n) for n in serving["class_names"]]
        return json.dumps(
            {"version": 1, "image_serving": serving, "outputs": self.outputs}
        )

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "") -> ImageMetadata:
        try:
            record = json.loads(text)
            return cls.from_record(record["image_serving"], record["outputs"])
        except (ValueError, KeyError, TypeError) as error:
            raise CorruptFileError(
                where, f"unreadable image metadata ({error})"
            ) from None

    @classmethod
    def for_model(cls, model, serving: ImageServing) -> ImageMetadata:
        """The metadata of `model` served as `serving`."""
        from kerasblocks.io.image_serving import output_kind

        return cls(serving, output_kind(model))

    @classmethod
    def from_record(
        cls, serving: dict, outputs: str = "probabilities"
    ) -> ImageMetadata:
        """From `dataclasses.asdict(ImageServing)` (a SavedModel's
        `serving.json` keeps that)."""
        fields = {f.name for f in dataclasses.fields(ImageServing)}
        values = {k: v for k, v in serving.items() if k in fields}
        values["image_size"] = tuple(values["image_size"])
        if values.get("class_names") is not None:
            values["class_names"] = tuple(values["class_names"])
        return cls(ImageServing(**values), outputs)


def model_format(path: str) -> str:
    """ "saved_model", "keras", "h5", "litert" or "onnx", from the path."""
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            return "saved_model"
        if os.path.exists(os.path.join(path, "config.json")):
            return "keras"
        raise CorruptFileError(path, "a directory that holds no model")
    extension = os.path.splitext(path)[1].lower()
    found = {
        ".keras": "keras",
        ".h5": "h5",
        ".hdf5": "h5",
        ".tflite": "litert",
        ".onnx": "onnx",
    }.get(extension)
    if found is None:
        raise CorruptFileError(
            path,
            "unknown model format; give a .keras, .h5, .tflite or .onnx "
            "file, a SavedModel directory or a kb-train run directory",
        )
    return found


def read_image_metadata(path: str | os.PathLike) -> ImageMetadata | None:
    """The image metadata an export carries (None when it has none).

    Raises:
        FileNotFoundError: no such path.
        CorruptFileError: the metadata or the file is unreadable.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file or directory")
    kind = model_format(path)
    if kind == "saved_model":
        return _read_saved_model(path)
    if kind == "keras":
        if os.path.isdir(path):
            member = os.path.join(path, KERAS_MEMBER)
            if not os.path.exists(member):
                return None
            with open(member, "rb") as f:
                return ImageMetadata.from_json(f.read(_MAX_BYTES), path)
        return _read_keras(path)
    if kind == "litert":
        return _read_litert(path)
    if kind == "onnx":
        return _read_onnx(path)
    return None  # .h5 keeps none


def write_image_metadata(
    path: str | os.PathLike, metadata: ImageMetadata
) -> None:
    """Records `metadata` in a `.keras`, `.tflite` or `.onnx` file,
    replacing any earlier record; the file is rewritten atomically (a
    SavedModel gets it from `export_saved_model(image_serving=...)`).

    Example:

    >>> import keras, tempfile, os
    >>> from kerasblocks import io as kb_io
    >>> net = keras.Sequential([keras.Input((4, 4, 3)),
    ...     keras.layers.Flatten(), keras.layers.Dense(2)])
    >>> path = os.path.join(tempfile.mkdtemp(), "net.keras")
    >>> kb_io.save_model(net, path)
    >>> meta = ImageMetadata(ImageServing((4, 4), preprocessing="unit"),
    ...                      outputs="logits")
    >>> write_image_metadata(path, meta)
    >>> read_image_metadata(path) == meta
    True
    """
    path = os.fspath(path)
    kind = model_format(path)
    text = metadata.to_json()
    if kind == "keras" and not os.path.isdir(path):
        _write_keras(path, text)
    elif kind == "litert":
        _write_litert(path, text)
    elif kind == "onnx":
        _write_onnx(path, text)
    else:
        raise ValueError(
            f"{path}: image metadata goes into .keras, .tflite and .onnx "
            "files (a SavedModel takes it when exported)."
        )


# --- SavedModel --------------------------------------------------------


def _read_saved_model(directory: str) -> ImageMetadata | None:
    from kerasblocks.io.saved_model import ASSETS, SERVING_FILE

    where = os.path.join(directory, ASSETS, SERVING_FILE)
    if not os.path.exists(where):
        return None
    try:
        with open(where) as f:
            record = json.load(f)
        serving = record.get("image_serving")
        if serving is None:
            return None
        # The image signatures return probabilities whatever the model's
        # last layer; "image_outputs" describes the model's own output
        # (the float signature, and what `load_model` rebuilds).
        return ImageMetadata.from_record(
            serving, record.get("image_outputs", OUTPUTS[0])
        )
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise CorruptFileError(
            directory, f"unreadable {SERVING_FILE} ({error})"
        ) from None


# --- .keras ------------------------------------------------------------


def _read_keras(path: str) -> ImageMetadata | None:
    try:
        with zipfile.ZipFile(path) as archive:
            if KERAS_MEMBER not in archive.namelist():
                return None
            info = archive.getinfo(KERAS_MEMBER)
            if info.file_size > _MAX_BYTES:
                raise CorruptFileError(path, f"{KERAS_MEMBER} is too large")
            text = archive.read(KERAS_MEMBER)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise CorruptFileError(
            path, f"not a .keras archive ({error})"
        ) from None
    return ImageMetadata.from_json(text, path)


def _write_keras(path: str, text: str) -> None:
    from kerasblocks.io import keras_format

    with zipfile.ZipFile(path) as source:
        members = [
            (info, source.read(info.filename))
            for info in source.infolist()
            if info.filename not in (keras_format.MANIFEST, KERAS_MEMBER)
        ]
    with atomic_path(path, suffix=".keras") as temporary:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as target:
            for info, data in members:
                target.writestr(info, data)
            target.writestr(KERAS_MEMBER, text)
        # The manifest and whole-file seal cover the new member too.
        keras_format._finish_archive(temporary, None)


# --- LiteRT ------------------------------------------------------------


def _litert_schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
        from ai_edge_litert.tools import flatbuffer_utils
    except ImportError:
        raise ImportError(
            "LiteRT files need the ai-edge-litert package: pip install "
            "ai-edge-litert"
        ) from None
    return schema, flatbuffer_utils


def _read_litert(path: str) -> ImageMetadata | None:
    schema, _ = _litert_schema()
    with open(path, "rb") as f:
        data = f.read()
    try:
        model = schema.Model.GetRootAs(data, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if (entry.Name() or b"").decode("utf-8") != KEY:
                continue
            buffer = model.Buffers(entry.Buffer())
            if buffer.Offset() > 1:  # stored after the flatbuffer
                start = buffer.Offset()
                payload = data[start : start + buffer.Size()]
            else:
                payload = buffer.DataAsNumpy().tobytes()
            return ImageMetadata.from_json(payload[:_MAX_BYTES], path)
    except (IndexError, AttributeError, UnicodeDecodeError) as error:
        raise CorruptFileError(path, f"not a LiteRT model ({error})") from None
    return None


def _write_litert(path: str, text: str) -> None:
    import numpy as np

    schema, flatbuffer_utils = _litert_schema()
    with open(path, "rb") as f:
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(f.read()))
    kept = [m for m in (model.metadata or []) if m.name != KEY.encode()]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(text.encode("utf-8"), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = KEY
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*kept, entry]
    data = flatbuffer_utils.convert_object_to_bytearray(model)
    with atomic_path(path, suffix=".tflite") as temporary:
        with open(temporary, "wb") as f:
            f.write(data)


# --- ONNX --------------------------------------------------------------


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "ONNX files need the onnx package: pip install onnx"
        ) from None
    return onnx


def _read_onnx(path: str) -> ImageMetadata | None:
    onnx = _onnx()
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as error:  # DecodeError and friends
        raise CorruptFileError(path, f"not an ONNX model ({error})") from None
    for prop in model.metadata_props:
        if prop.key == KEY:
            return ImageMetadata.from_json(prop.value, path)
    return None


def _write_onnx(path: str, text: str) -> None:
    onnx = _onnx()
    model = onnx.load(path, load_external_data=False)
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != KEY]
    del model.metadata_props[:]
    for key, value in [*kept, (KEY, text)]:
        model.metadata_props.add(key=key, value=value)
    with atomic_path(path, suffix=".onnx") as temporary:
        onnx.save(model, temporary)
