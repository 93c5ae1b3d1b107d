"""Text generation with the zoo's language models and encoder-decoders.

`generate` runs one compiled function (`tf.function`, optionally XLA)
whose loop over positions is a `tf.while_loop` of fixed length, not a
Python loop. With `use_cache=True` (the default) each step feeds one
token through the model's decoding protocol (`start_decoding`,
`decode_step`): recurrent states, or the Transformer blocks' key/value
caches, so a step costs the same at every position. With
`use_cache=False` each step reruns the whole model on the fixed-size
buffer and reads the logits at the current position (the reference:
both give the same tokens).

Beam search (`num_beams > 1`, in `zoo._decoding`) runs in the same kind
of loop, with the caches reordered by beam.
"""

from __future__ import annotations

import secrets

import keras
import numpy as np
import tensorflow as tf

from kerasblocks._validation import positive_int
from zoo._decoding import beam_loop, mask_pad, write_tokens

STRATEGIES = ("greedy", "sample")


def _uniform(shape, seed, step):
    """Uniform (0, 1) noise from a counter-based hash of (seed, step,
    row, column): the same numbers eagerly, in graphs and under XLA
    (TensorFlow's stateless generators differ between the last two)."""
    bits = tf.bitwise

    def word(value):
        return tf.constant(value, tf.uint32)

    def mix(a, b):
        return bits.bitwise_xor(a, b)

    rows = tf.cast(tf.range(shape[0]), tf.uint32)[:, None]
    columns = tf.cast(tf.range(shape[1]), tf.uint32)[None, :]
    h = mix(
        mix(
            tf.cast(seed, tf.uint32) * word(0x9E3779B1), rows * word(0xC2B2AE3D)
        ),
        mix(
            tf.cast(step, tf.uint32) * word(0x85EBCA77),
            columns * word(0x27D4EB2F),
        ),
    )
    # MurmurHash3's finalizer.
    for shift, factor in ((16, 0x85EBCA6B), (13, 0xC2B2AE35), (16, None)):
        h = mix(h, bits.right_shift(h, word(shift)))
        if factor is not None:
            h = h * word(factor)
    top = tf.cast(bits.right_shift(h, word(8)), tf.float32)
    return (top + 0.5) / float(2**24)


def _choose(logits, step, strategy, temperature, seed):
    if strategy == "greedy":
        return tf.argmax(logits, axis=-1, output_type=tf.int32)
    # Gumbel-max: argmax(logits / T + Gumbel noise) samples from
    # softmax(logits / T).
    noise = -tf.math.log(-tf.math.log(_uniform(tf.shape(logits), seed, step)))
    scaled = tf.cast(logits, tf.float32) / temperature
    return tf.argmax(scaled + noise, axis=-1, output_type=tf.int32)


def _loop(model, options):
    """The function `(prompt, temperature, seed) -> ids` for `model`."""
    kind = model.kind
    new = options["max_new_tokens"]
    strategy, use_cache = options["strategy"], options["use_cache"]
    eos_id, pad_id = options["eos_id"], options["pad_id"]

    def run(prompt, temperature, seed):
        batch = tf.shape(prompt)[0]
        fill = tf.fill(tf.stack([batch, new]), tf.constant(pad_id, tf.int32))
        if kind == "lm":
            start, first = prompt, tf.shape(prompt)[1] - 1
        else:
            start = tf.fill(tf.stack([batch, 1]), options["bos_id"])
            first = tf.constant(0)
        buffer = tf.concat([start, fill], axis=1)
        total = tf.shape(buffer)[1]
        done = tf.zeros(tf.stack([batch]), tf.bool)

        def advance(i, buffer, logits, done):
            logits = mask_pad(logits, pad_id)
            tokens = _choose(logits, i, strategy, temperature, seed)
            generated = tf.fill(tf.stack([batch]), i >= first)
            return write_tokens(
                buffer, i + 1, tokens, done, eos_id, pad_id, generated
            )

        if use_cache:
            if kind == "lm":
                state = model.start_decoding(batch, total)
            else:  # the decoder reads bos and all but the last token
                state = model.start_decoding(prompt, total - 1)

            def body(i, buffer, state, done):
                logits, state = model.decode_step(buffer[:, i], i, state)
                buffer, done = advance(i, buffer, logits, done)
                return i + 1, buffer, state, done

            _, buffer, _, _ = tf.while_loop(
                lambda i, *_: i < total - 1,
                body,
                (tf.constant(0), buffer, state, done),
            )
        else:

            def body(i, buffer, done):
                if kind == "lm":
                    logits = model(buffer, training=False)
                else:
                    logits = model([prompt, buffer[:, :-1]], training=False)
                buffer, done = advance(i, buffer, logits[:, i], done)
                return i + 1, buffer, done

            _, buffer, _ = tf.while_loop(
                lambda i, *_: i < total - 1, body, (first, buffer, done)
            )
        return buffer if kind == "lm" else buffer[:, 1:]

    return run


def _compiled(model, options):
    cache = model.__dict__.setdefault("_zoo_generate_functions", {})
    key = tuple(sorted(options.items()))
    if key not in cache:
        loop = beam_loop if options["num_beams"] > 1 else _loop
        cache[key] = tf.function(
            loop(model, options),
            input_signature=[
                tf.TensorSpec([None, None], tf.int32),
                tf.TensorSpec([], tf.float32),
                tf.TensorSpec([], tf.int32),
            ],
            jit_compile=options["jit_compile"],
        )
    return cache[key]


def _check_ids(name, ids, vocab_size, max_length):
    if ids.ndim != 2 or ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError(
            f"{name} must be a non-empty (batch, length) array of token ids."
            f" Received: shape={ids.shape}"
        )
    if ids.min() < 0 or ids.max() >= vocab_size:
        raise ValueError(
            f"{name}: token ids must be in [0, {vocab_size}). Received ids "
            f"from {ids.min()} to {ids.max()}."
        )
    if ids.shape[1] > max_length:
        raise ValueError(
            f"{name} is {ids.shape[1]} tokens long; the model takes at most "
            f"max_length={max_length}."
        )


def _check_options(
    model, config, strategy, max_new_tokens, num_beams, length_penalty
):
    if not getattr(model, "can_generate", False):
        raise ValueError(
            f"{type(model).__name__} '{model.name}' does not generate text; "
            "generate takes a zoo language model or encoder-decoder."
        )
    if config.get("bidirectional"):
        raise ValueError(
            "A bidirectional language model sees the future and cannot "
            "generate text."
        )
    if strategy not in STRATEGIES:
        raise ValueError(
            f"strategy must be one of {STRATEGIES}. Received: {strategy=}"
        )
    positive_int("max_new_tokens", max_new_tokens)
    positive_int("num_beams", num_beams)
    if num_beams > 1 and strategy != "greedy":
        raise ValueError(
            "Beam search is deterministic: num_beams > 1 takes strategy="
            f"'greedy'. Received: {strategy=}, {num_beams=}"
        )
    if isinstance(length_penalty, bool) or not (
        isinstance(length_penalty, (int, float, np.floating))
        and np.isfinite(length_penalty)
    ):
        raise ValueError(
            f"length_penalty must be a finite number. Received: "
            f"{length_penalty=}"
        )


def _check_prompt(model, config, prompt, max_new_tokens, eos_id):
    """Checks the prompt's ids and length; returns the eos id to use."""
    if prompt.dtype.kind not in "iu":
        raise ValueError(
            f"prompt_ids must be integer token ids. Received: {prompt.dtype}"
        )
    max_length = config["max_length"]
    _check_ids("prompt_ids", prompt, config["vocab_size"], max_length)
    target_vocab = config.get("target_vocab_size") or config["vocab_size"]
    if model.kind == "lm":
        needed = prompt.shape[1] + max_new_tokens
        eos_default = None
    else:
        needed = max_new_tokens
        eos_default = config["eos_id"]
    if needed > max_length:
        raise ValueError(
            f"Generating {max_new_tokens} tokens needs {needed} positions; "
            f"the model takes at most max_length={max_length}."
        )
    eos_id = eos_default if eos_id is None else eos_id
    if eos_id is not None and not 0 <= eos_id < target_vocab:
        raise ValueError(f"eos_id must be in [0, {target_vocab}). Got {eos_id}")
    return eos_id


def generate(
    model: keras.Model,
    prompt_ids,
    max_new_tokens: int,
    strategy: str = "greedy",
    temperature: float = 1.0,
    seed: int | None = None,
    *,
    eos_id: int | None = None,
    use_cache: bool = True,
    jit_compile: bool = False,
    num_beams: int = 1,
    length_penalty: float = 1.0,
) -> np.ndarray:
    """Generates tokens with a zoo language model or encoder-decoder.

    Args:
        model: a zoo model that generates (`rnn_lm`, `gru_lm`, `lstm_lm`
            (not bidirectional), `transformer_lm`, `seq2seq_gru`,
            `seq2seq_attention`, `transformer`).
        prompt_ids: `(batch, length)` token ids (a 1-D array is one
            sequence): the text to continue (language models; no
            padding) or the source sequences (encoder-decoders; padding
            allowed).
        max_new_tokens: tokens to generate.
        strategy: "greedy" (the most likely token) or "sample" (from
            `softmax(logits / temperature)`).
        temperature: > 0; only for "sample".
        seed: seeds "sample" (the same seed gives the same tokens);
            None picks one at random.
        eos_id: after generating it, a sequence continues with padding;
            None: the model's `eos_id` (encoder-decoders) or no stop
            (language models).
        use_cache: decode incrementally (recurrent states or key/value
            caches) rather than recompute the whole prefix each step.
        jit_compile: compile with XLA.
        num_beams: beam search with this many beams per sequence
            (strategy "greedy" only); 1 is greedy decoding itself. A
            beam's score is the sum of its generated tokens'
            log-probabilities (softmax over every token but padding);
            a beam that generated `eos_id` stops there (padding follows,
            adding nothing to its score) and keeps competing with its
            final score.
        length_penalty: the returned sequence is the final beam with the
            highest `score / length ** length_penalty` (the common
            definition, as in Hugging Face's and Fairseq's), `length`
            counting the generated tokens up to and including `eos_id`;
            0 ranks by the raw score, above 0 favours longer sequences
            (scores are negative). Only matters with `eos_id`: without
            one every beam has `max_new_tokens` tokens.

    Returns:
        int32 token ids: `(batch, length + max_new_tokens)`, the prompt
        then its continuation, for language models; `(batch,
        max_new_tokens)`, the target after `bos_id`, for encoder-decoders.

    Example:

    >>> import numpy as np, zoo
    >>> model = zoo.create_model("transformer_lm", vocab_size=20,
    ...                          hidden_dim=16, mlp_dim=32)
    >>> zoo.generate(model, np.array([[3, 4, 5]]), max_new_tokens=4).shape
    (1, 7)
    """
    config = model.get_config()
    _check_options(
        model, config, strategy, max_new_tokens, num_beams, length_penalty
    )
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be > 0. Received: {temperature=}")
    prompt = np.asarray(prompt_ids)
    single = prompt.ndim == 1
    if single:
        prompt = prompt[None]
    eos_id = _check_prompt(model, config, prompt, max_new_tokens, eos_id)
    pad_id = config.get("pad_id")
    options = {
        "max_new_tokens": int(max_new_tokens),
        "strategy": strategy,
        "use_cache": bool(use_cache),
        "jit_compile": bool(jit_compile),
        "eos_id": None if eos_id is None else int(eos_id),
        "pad_id": 0 if pad_id is None else int(pad_id),
        "bos_id": config.get("bos_id"),
        "num_beams": int(num_beams),
        "length_penalty": float(length_penalty) if num_beams > 1 else 1.0,
    }
    if seed is None:
        seed = secrets.randbelow(2**31 - 1)
    result = _compiled(model, options)(
        tf.constant(prompt, tf.int32),
        tf.constant(temperature, tf.float32),
        tf.constant(int(seed) % (2**31 - 1), tf.int32),
    ).numpy()
    return result[0] if single else result
