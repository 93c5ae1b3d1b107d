"""The named choices of a run and the data set names, written once.

`TrainConfig.validate` checks a run's values against these tuples, the
tools declare their flags with them, and the data registry takes the
built-in data sets' and source forms' summaries from them. The module is
plain Python, so a tool can list and check names before TensorFlow is
imported (which takes seconds).

>>> from kerasblocks import choices
>>> choices.SCHEDULES
('constant', 'cosine', 'warmup_cosine', 'step')
>>> choices.dataset_problem("digit")
"Unknown data set 'digit'. Did you mean: digits? Known: addition, ...
>>> choices.dataset_problem("folder:photos") is None
True
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "step")
# Mixed precision compute dtypes ("none": float32 throughout).
PRECISIONS = ("none", "float16", "bfloat16")
JIT = ("auto", "true", "false")
STRATEGIES = ("default", "mirrored", "multi_worker", "one_device", "tpu")
FREEZE = ("none", "backbone", "all_but_head")
# The deployment formats of a run, and old names still taken.
FORMATS = ("saved_model", "keras", "h5", "litert", "onnx")
FORMAT_ALIASES = {"tflite": "litert"}  # the old name, kept for one release
EXPORTS = (*FORMATS, *FORMAT_ALIASES)
# The LiteRT file's quantization.
QUANTIZE = ("none", "float16", "dynamic_int8", "int8")

# The data sets that load by name, with their one-line summaries.
DATASETS = {
    "addition": "'123+45' -> '168', character by character",
    "char_lm": "character-level language modelling of a text file",
    "cifar10": "CIFAR-10 from --data_dir or Keras's cache (python batches)",
    "digits": "scikit-learn's 1,797 bundled 8x8 handwritten digits",
    "fashion_mnist": (
        "Fashion-MNIST from --data_dir or Keras's cache (IDX files)"
    ),
    "mnist": "MNIST from --data_dir or Keras's cache (IDX files)",
    "sequence_copy": "copy a random symbol sequence (seq2seq)",
    "sequence_reversal": "reverse a random symbol sequence (seq2seq)",
    "sine_wave": "the book's noisy sine wave, tau=4 (regression)",
    "synthetic": "random images and labels, for benchmarks",
}
# Users' own files, named `KIND:WHERE`: {KIND: (its form, what it reads)}.
SOURCES = {
    "folder": ("folder:DIR", "one subfolder of images per class"),
    "tfds": ("tfds:NAME", "a data set prepared by tensorflow-datasets"),
    "tfrecord": (
        "tfrecord:TRAIN_GLOB[,VAL_GLOB]",
        "tf.train.Example shards with image/encoded and image/class/label",
    ),
}

# 8192x8192: more than any phone (12-50 MP) or full-frame camera
# (45-61 MP) writes. A decoded image of this size is 192 MiB as uint8;
# a header that declares more pixels is refused before decoding.
MAX_IMAGE_PIXELS = 8192 * 8192
# A served request holds at most this many images: a batcher in front of
# a CPU server gains nothing from bigger batches, while memory grows
# with them (kerasblocks.io.ImageServing's default max_batch).
MAX_BATCH = 32


def source_summary(kind: str) -> str:
    """The one-line summary of the source form `kind`, starting with
    the form itself (`"folder:DIR, one subfolder ..."`)."""
    form, what = SOURCES[kind]
    return f"{form}, {what}"


def dataset_problem(
    name: str,
    names: Iterable[str] = tuple(DATASETS),
    kinds: Iterable[str] = tuple(SOURCES),
) -> str | None:
    """What is wrong with the data set name `name`, or None if nothing.

    Args:
        name: a data set name, or a source form `KIND:WHERE`.
        names: the data set names known (the built-in ones by default).
        kinds: the source `KIND`s known (the built-in ones by default).
    """
    names, kinds = sorted(names), sorted(kinds)
    forms = ", ".join(
        SOURCES[k][0] if k in SOURCES else f"{k}:..." for k in kinds
    )
    kind, colon, where = name.partition(":")
    if not colon:
        if name in names:
            return None
        close = difflib.get_close_matches(name, names, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        return (
            f"Unknown data set {name!r}.{hint} Known: {', '.join(names)}; "
            f"or {forms}"
        )
    if kind not in kinds:
        return f"--dataset={name}: unknown source {kind!r}; use {forms}"
    if not where.strip(", "):
        form = SOURCES[kind][0] if kind in SOURCES else f"{kind}:..."
        return f"--dataset={name}: nothing after {kind!r}; use {form}"
    return None
