"""Sequence data sets, built in and offline.

- `sine_wave`: the book's noisy sine wave (section "Working with
  Sequences"): `x_t = sin(0.01 t) + N(0, 0.2)` for `t = 1 .. 1000`; each
  example is the `tau = 4` previous values, the target is `x_t`
  (regression); the first 600 examples train, the rest validate, in time
  order as in the book.
- `sequence_reversal`, `sequence_copy`, `addition`: seq2seq tasks
  (token_classification). Inputs are a dict `{"source_ids", "target_ids"}`
  (the names of the zoo encoder-decoders' inputs; targets start with
  `<bos>`), labels are the targets shifted left and ending with `<eos>`,
  padded with `<pad>` (id 0, ignored). Ids 0, 1, 2 are `<pad>`, `<bos>`,
  `<eos>`; `info` holds the vocabulary.
- `char_lm`: character-level language modelling of any text file given
  by `data_dir` (a `.txt` file, or a directory whose `.txt` files are
  read in name order and joined): windows of `num_steps` characters,
  labels the next characters. Id 0 is `<pad>`; the vocabulary is the
  text's characters, sorted.

The token data sets' `info["model_overrides"]` (vocab_size, max_length)
are what a zoo sequence model needs to be built for them.
"""

from __future__ import annotations

import os

import numpy as np

from kerasblocks._validation import positive_int
from kerasblocks.data.dataset import (
    DataError,
    Dataset,
    register_dataset,
    split_train_val,
)

SPECIALS = ("<pad>", "<bos>", "<eos>")
PAD, BOS, EOS = 0, 1, 2


def _positive(name: str, value) -> int:
    return positive_int(name, value, error=DataError)


@register_dataset("sine_wave", reads_files=False)
def _sine_wave(
    data_dir=None,
    num_steps: int = 1000,
    tau: int = 4,
    num_train: int = 600,
    noise: float = 0.2,
    seed: int = 0,
) -> Dataset:
    _positive("num_steps", num_steps)
    _positive("tau", tau)
    if not 0 < num_train < num_steps - tau:
        raise DataError(
            f"num_train must be in (0, {num_steps - tau}). Received: "
            f"{num_train}"
        )
    rng = np.random.default_rng(seed)
    time = np.arange(1, num_steps + 1, dtype=np.float32)
    series = np.sin(0.01 * time) + rng.normal(0.0, noise, num_steps)
    series = series.astype(np.float32)
    features = np.stack(
        [series[i : num_steps - tau + i] for i in range(tau)], axis=1
    )
    labels = series[tau:, None]
    return Dataset(
        "sine_wave",
        features[:num_train],
        labels[:num_train],
        features[num_train:],
        labels[num_train:],
        task="regression",
        info={"time": time[tau:], "tau": tau},
    )


def _token_dataset(
    name, x, y, vocabulary, max_length, val_fraction, seed, **info
) -> Dataset:
    """Splits token inputs `x` and next-token labels `y` into a
    token_classification `Dataset`; its info holds the vocabulary, the
    other `info`, and what a zoo sequence model needs to fit the data
    (`model_overrides`)."""
    x_train, y_train, x_val, y_val = split_train_val(x, y, val_fraction, seed)
    return Dataset(
        name,
        x_train,
        y_train,
        x_val,
        y_val,
        task="token_classification",
        num_classes=len(vocabulary),
        pad_id=PAD,
        info={
            "vocabulary": list(vocabulary),
            "vocab_size": len(vocabulary),
            "max_length": max_length,
            "model_overrides": {
                "vocab_size": len(vocabulary),
                "max_length": max_length,
            },
            **info,
        },
    )


def _pack(sources, targets, vocabulary, name, val_fraction, seed) -> Dataset:
    """Pads token lists into the seq2seq arrays and splits them."""
    source_length = max(len(s) for s in sources)
    target_length = max(len(t) for t in targets) + 1
    count = len(sources)
    source_ids = np.full((count, source_length), PAD, np.int32)
    decoder_inputs = np.full((count, target_length), PAD, np.int32)
    labels = np.full((count, target_length), PAD, np.int32)
    for row, (source, target) in enumerate(zip(sources, targets, strict=True)):
        source_ids[row, : len(source)] = source
        decoder_inputs[row, : len(target) + 1] = [BOS, *target]
        labels[row, : len(target) + 1] = [*target, EOS]
    x = {"source_ids": source_ids, "target_ids": decoder_inputs}
    return _token_dataset(
        name,
        x,
        labels,
        vocabulary,
        max(source_length, target_length),
        val_fraction,
        seed,
        pad_id=PAD,
        bos_id=BOS,
        eos_id=EOS,
    )


def _register_symbol_task(name: str, transform) -> None:
    """Registers the seq2seq task `name`: random symbol sequences as
    sources, `transform(sources)` as targets."""

    @register_dataset(name, reads_files=False)
    def load(
        data_dir=None,
        size: int = 5000,
        num_symbols: int = 10,
        min_length: int = 3,
        max_length: int = 10,
        val_fraction: float = 0.1,
        seed: int = 0,
    ) -> Dataset:
        for key, value in (
            ("size", size),
            ("num_symbols", num_symbols),
            ("min_length", min_length),
            ("max_length", max_length),
        ):
            _positive(key, value)
        if min_length > max_length:
            raise DataError(
                f"min_length ({min_length}) must not exceed max_length "
                f"({max_length})."
            )
        rng = np.random.default_rng(seed)
        vocabulary = [*SPECIALS, *(f"s{i}" for i in range(num_symbols))]
        sources, targets = [], []
        for length in rng.integers(min_length, max_length + 1, size):
            tokens = rng.integers(
                len(SPECIALS), len(vocabulary), length
            ).tolist()
            sources.append(tokens)
            targets.append(transform(tokens))
        return _pack(sources, targets, vocabulary, name, val_fraction, seed)


_register_symbol_task("sequence_reversal", lambda tokens: tokens[::-1])
_register_symbol_task("sequence_copy", list)


@register_dataset("addition", reads_files=False)
def _addition(
    data_dir=None,
    size: int = 5000,
    num_digits: int = 3,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> Dataset:
    _positive("size", size)
    _positive("num_digits", num_digits)
    vocabulary = [*SPECIALS, *"0123456789", "+"]
    index = {c: i for i, c in enumerate(vocabulary)}
    rng = np.random.default_rng(seed)
    high = 10**num_digits
    sources, targets = [], []
    for a, b in rng.integers(0, high, (size, 2)):
        sources.append([index[c] for c in f"{a}+{b}"])
        targets.append([index[c] for c in str(a + b)])
    return _pack(sources, targets, vocabulary, "addition", val_fraction, seed)


def _read_text(data_dir) -> tuple[str, list[str]]:
    if data_dir is None:
        raise DataError(
            "char_lm reads a text file: pass data_dir=PATH (a .txt file or a "
            "directory holding .txt files); nothing is downloaded."
        )
    path = os.fspath(data_dir)
    if os.path.isdir(path):
        files = sorted(
            os.path.join(path, f)
            for f in os.listdir(path)
            if f.endswith(".txt") and os.path.isfile(os.path.join(path, f))
        )
        if not files:
            raise DataError(
                f"char_lm: no .txt file in {path}. Put a text file there or "
                "pass data_dir=PATH/TO/FILE.txt."
            )
    elif os.path.isfile(path):
        files = [path]
    else:
        raise DataError(
            f"char_lm: {path} does not exist. Pass data_dir=PATH (a .txt "
            "file or a directory holding .txt files)."
        )
    parts = []
    for file in files:
        try:
            with open(file, encoding="utf-8") as f:
                parts.append(f.read())
        except (OSError, UnicodeDecodeError) as error:
            raise DataError(f"char_lm: cannot read {file} ({error})") from None
    return "".join(parts), files


@register_dataset("char_lm")
def _char_lm(
    data_dir=None,
    num_steps: int = 32,
    lowercase: bool = False,
    letters_only: bool = False,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> Dataset:
    _positive("num_steps", num_steps)
    text, files = _read_text(data_dir)
    if letters_only:
        # The book's preprocessing of "The Time Machine".
        text = "".join(c if c.isalpha() else " " for c in text)
        text = " ".join(text.split())
    if lowercase or letters_only:
        text = text.lower()
    windows = (len(text) - 1) // num_steps
    if windows < 2:
        raise DataError(
            f"char_lm: {', '.join(files)} holds {len(text)} characters; "
            f"at least {2 * num_steps + 1} are needed for num_steps="
            f"{num_steps}."
        )
    vocabulary = ["<pad>", *sorted(set(text))]
    index = {c: i for i, c in enumerate(vocabulary)}
    ids = np.array([index[c] for c in text], np.int32)
    usable = windows * num_steps
    x = ids[:usable].reshape(windows, num_steps)
    y = ids[1 : usable + 1].reshape(windows, num_steps)
    return _token_dataset(
        "char_lm", x, y, vocabulary, num_steps, val_fraction, seed, files=files
    )
