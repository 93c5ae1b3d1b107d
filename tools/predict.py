"""kb-predict: the top classes of image files, from any model or export.

kb-predict --model_path=runs/photos photo.jpg more/ 'shots/*.png'
kb-predict --model_path=runs/photos/export/model.tflite --format=json \\
    --top_k=3 --images=photo.jpg

Images are files, folders (their image files, not their subfolders) or
globs, given as arguments or with --images. The model is a kb-train run
directory (--run_dir or --model_path; its --checkpoint), a .keras or
.h5 file, a SavedModel directory, a .tflite or an .onnx file, each run
in its own runtime (Keras, the SavedModel's own signatures, LiteRT,
onnxruntime) and fed the view it serves: the central crop, resize
method and pixel convention (0-255 or [0, 1]) the export records, and
its class names. A model that records none is fed [0, 1] pixels of the
whole image, named classes by index, and one line on stderr says so
(--pixels overrides).

Output: CSV (image,rank,class,probability; one row per image and rank)
or JSON (a list of {"image", "predictions": [{"class", "probability"}]}),
on stdout or atomically to --output. A missing file, a file that is not
an image, a glob that matches nothing: one line and exit 2, and nothing
is written.
"""

from __future__ import annotations

import glob
import os
import sys

from absl import flags

from kerasblocks import choices
from tools import _common

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "model_path",
    None,
    "A kb-train run directory, .keras, .h5, SavedModel directory, .tflite "
    "or .onnx.",
)
flags.DEFINE_string("run_dir", None, "Or: a kb-train run directory.")
flags.DEFINE_string(
    "checkpoint", "latest", "For a run: latest, best, or a ckpt-* name."
)
flags.DEFINE_list(
    "images",
    [],
    "Image files, folders or globs (comma-separated); also taken as "
    "arguments after the flags.",
)
flags.DEFINE_integer("top_k", 5, "How many classes per image.", lower_bound=1)
flags.DEFINE_enum("format", "csv", ["csv", "json"], "Output format.")
flags.DEFINE_string("output", None, "Write here instead of stdout.")
flags.DEFINE_enum(
    "pixels",
    None,
    ["unit", "raw"],
    "How the model takes images, unit ([0, 1]) or raw (0-255), "
    "overriding what it records.",
)
flags.DEFINE_integer("batch_size", 32, "Images per model call.", lower_bound=1)
flags.DEFINE_integer(
    "max_image_pixels",
    choices.MAX_IMAGE_PIXELS,
    "An image whose header declares more pixels (height x width) is "
    "refused before it is decoded: one line, exit 2. Default 8192x8192.",
    lower_bound=1,
)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# The first bytes of the formats TensorFlow decodes.
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")
_GLOB = set("*?[")


def expand_images(items: list[str]) -> list[str]:
    """Files from files, folders and globs, in the order given (a
    folder's and a glob's sorted); a `UsageError` for a missing file,
    an empty folder or glob, or a file that is not an image."""
    found = []
    for item in items:
        if _GLOB & set(item):
            matches = sorted(p for p in glob.glob(item) if os.path.isfile(p))
            if not matches:
                raise _common.UsageError(f"{item}: the glob matches no file")
            found += matches
        elif os.path.isdir(item):
            matches = sorted(
                os.path.join(item, name)
                for name in os.listdir(item)
                if name.lower().endswith(IMAGE_EXTENSIONS)
                and os.path.isfile(os.path.join(item, name))
            )
            if not matches:
                raise _common.UsageError(f"{item}: the folder has no images")
            found += matches
        elif os.path.isfile(item):
            found.append(item)
        else:
            raise _common.UsageError(f"{item}: no such file or folder")
    for path in found:
        with open(path, "rb") as f:
            head = f.read(8)
        if not head.startswith(_MAGIC):
            raise _common.UsageError(
                f"{path}: not an image (JPEG, PNG, BMP or GIF)"
            )
    return found


_images: list[str] = []


def _check(argv: list[str]) -> None:
    if bool(FLAGS.run_dir) == bool(FLAGS.model_path):
        raise _common.UsageError(
            "give exactly one of --model_path and --run_dir"
        )
    model = FLAGS.model_path or FLAGS.run_dir
    if not os.path.exists(model):
        raise _common.UsageError(f"{model}: no such model file or run")
    items = [*FLAGS.images, *argv]
    if not items:
        raise _common.UsageError(
            "no images: give files, folders or globs after the flags or "
            "with --images"
        )
    _images[:] = expand_images(items)


def format_rows(results: list[dict], kind: str) -> str:
    """CSV or JSON text of `[{"image", "predictions"}]`.

    Example:

    >>> rows = [{"image": "a.jpg", "predictions": [
    ...     {"class": "cat", "probability": 0.75}]}]
    >>> print(format_rows(rows, "csv"), end="")
    image,rank,class,probability
    a.jpg,1,cat,0.750000
    """
    if kind == "json":
        import json

        return json.dumps(results, indent=1) + "\n"
    import csv
    import io

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["image", "rank", "class", "probability"])
    for result in results:
        for rank, row in enumerate(result["predictions"], 1):
            writer.writerow(
                [
                    result["image"],
                    rank,
                    row["class"],
                    f"{row['probability']:.6f}",
                ]
            )
    return text.getvalue()


def _predict() -> int:
    import numpy as np

    import zoo  # noqa: F401  (registers the zoo's classes)
    from kerasblocks.training import inference

    predictor = inference.open_model(
        FLAGS.model_path or FLAGS.run_dir,
        checkpoint=FLAGS.checkpoint,
        pixels=FLAGS.pixels,
        max_pixels=FLAGS.max_image_pixels,
    )
    if predictor.assumed:
        print(predictor.assumed, file=sys.stderr)
    names = predictor.class_names
    results = []
    for start in range(0, len(_images), FLAGS.batch_size):
        paths = _images[start : start + FLAGS.batch_size]
        scores = predictor.predict_files(paths)
        k = min(FLAGS.top_k, scores.shape[-1])
        for path, row in zip(paths, scores, strict=True):
            top = np.argsort(-row, kind="stable")[:k]
            results.append(
                {
                    "image": path,
                    "predictions": [
                        {
                            "class": names[i] if names else str(i),
                            "probability": float(row[i]),
                        }
                        for i in top
                    ],
                }
            )
    text = format_rows(results, FLAGS.format)
    if FLAGS.output:
        from kerasblocks.io._atomic import atomic_path

        with atomic_path(FLAGS.output) as temporary:
            with open(temporary, "w") as f:
                f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def main(argv):
    return _common.run_main(
        "kb-predict", _predict, lambda: _check(list(argv[1:]))
    )


def run():
    _common.run_app(main, "kb-predict", __name__)


if __name__ == "__main__":
    run()
