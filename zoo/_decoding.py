"""The decoding steps `zoo.generate` shares between its loops, and its
beam search.

Beam search runs in the same fixed-length loop as greedy decoding, over
`batch * num_beams` rows (beam `b` of example `e` is row `e * num_beams
+ b`): each step scores every continuation of every beam by its summed
log-probability, keeps the `num_beams` best per example, and reorders
the token buffer and the decoding state (recurrent states, key/value
caches) by the beams they came from.
"""

from __future__ import annotations

import tensorflow as tf

# The score of an impossible beam: finite, so that adding scores never
# gives inf - inf, and below any real sum of log-probabilities.
_DEAD = -1e9


def write_tokens(buffer, position, tokens, done, eos_id, pad_id, generated):
    """Writes `tokens` at `position` of rows still generating."""
    if eos_id is not None:
        tokens = tf.where(done, pad_id, tokens)
        done = tf.logical_or(
            done, tf.logical_and(generated, tf.equal(tokens, eos_id))
        )
    column = tf.where(generated, tokens, buffer[:, position])
    hit = tf.equal(tf.range(tf.shape(buffer)[1]), position)[None, :]
    return tf.where(hit, column[:, None], buffer), done


def mask_pad(logits, pad_id):
    """Never generate padding: it would be masked when the text is read
    again, so it cannot be part of a continuation."""
    return tf.where(
        tf.equal(tf.range(tf.shape(logits)[-1]), pad_id)[None, :],
        tf.constant(logits.dtype.min, logits.dtype),
        logits,
    )


def _beam_step(logits, scores, done, num_beams, pad_id):
    """Scores every one-token continuation of every beam and keeps the
    `num_beams` best of each example.

    Args:
        logits: `(batch * num_beams, vocab)`, padding masked.
        scores: `(batch, num_beams)` summed log-probabilities.
        done: `(batch * num_beams,)` beams past their end-of-sequence.

    Returns:
        The new scores `(batch, num_beams)`, for each new beam the row it
        extends and its token (both `(batch * num_beams,)`).
    """
    vocab = tf.shape(logits)[-1]
    logprobs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
    is_pad = tf.equal(tf.range(vocab), pad_id)[None, :]
    logprobs = tf.where(is_pad, _DEAD, logprobs)
    # A finished beam continues only with padding, at no cost, so it
    # keeps its score and competes with the unfinished ones.
    logprobs = tf.where(done[:, None], tf.where(is_pad, 0.0, _DEAD), logprobs)
    candidates = tf.reshape(scores, [-1, 1]) + logprobs
    candidates = tf.reshape(candidates, tf.stack([-1, num_beams * vocab]))
    best, index = tf.math.top_k(candidates, k=num_beams)
    examples = tf.range(tf.shape(best)[0])[:, None]
    rows = examples * num_beams + index // vocab
    return best, tf.reshape(rows, [-1]), tf.reshape(index % vocab, [-1])


def _initial_beams(prompt, kind, k, new, pad_id, bos_id):
    """The beams before the first step: each prompt repeated `k` times
    (beam b of example e is row e*k+b), a buffer of padding to write
    into, and one live beam per example (the others are copies)."""
    batch = tf.shape(prompt)[0]
    prompt = tf.repeat(prompt, k, axis=0)
    rows = batch * k
    fill = tf.fill(tf.stack([rows, new]), tf.constant(pad_id, tf.int32))
    if kind == "lm":
        start, first = prompt, tf.shape(prompt)[1] - 1
    else:
        start = tf.fill(tf.stack([rows, 1]), bos_id)
        first = tf.constant(0)
    scores = tf.tile(
        tf.constant([[0.0] + [_DEAD] * (k - 1)]), tf.stack([batch, 1])
    )
    return prompt, tf.concat([start, fill], axis=1), first, scores


def _step_function(model, kind, use_cache, prompt, rows, total, first, advance):
    """The loop body for cached (incremental) or full-prefix decoding,
    its initial decoder state and the position it starts at."""
    if use_cache:
        if kind == "lm":
            state = model.start_decoding(rows, total)
        else:
            state = model.start_decoding(prompt, total - 1)

        def body(i, buffer, state, done, scores, lengths):
            logits, state = model.decode_step(buffer[:, i], i, state)
            return i + 1, *advance(
                i, logits, buffer, state, done, scores, lengths
            )

        return body, state, tf.constant(0)

    def body(i, buffer, state, done, scores, lengths):
        if kind == "lm":
            logits = model(buffer, training=False)
        else:
            logits = model([prompt, buffer[:, :-1]], training=False)
        return i + 1, *advance(
            i, logits[:, i], buffer, state, done, scores, lengths
        )

    return body, (), first


def beam_loop(model, options):
    """The beam-search function `(prompt, temperature, seed) -> ids`."""
    kind, k = model.kind, options["num_beams"]
    new, use_cache = options["max_new_tokens"], options["use_cache"]
    eos_id, pad_id = options["eos_id"], options["pad_id"]
    penalty = options["length_penalty"]

    def run(prompt, temperature, seed):
        del temperature, seed  # beam search is deterministic
        batch = tf.shape(prompt)[0]
        prompt, buffer, first, scores = _initial_beams(
            prompt, kind, k, new, pad_id, options["bos_id"]
        )
        rows, total = batch * k, tf.shape(buffer)[1]
        lengths = tf.zeros(tf.stack([rows]), tf.float32)
        done = tf.zeros(tf.stack([rows]), tf.bool)
        identity = tf.range(rows)

        def advance(i, logits, buffer, state, done, scores, lengths):
            logits = mask_pad(logits, pad_id)
            best, source, tokens = _beam_step(logits, scores, done, k, pad_id)
            generated = i >= first
            source = tf.where(generated, source, identity)
            scores = tf.where(generated, best, scores)

            def gather(tensor):
                return tf.gather(tensor, source)

            buffer, done, lengths = (
                gather(buffer),
                gather(done),
                gather(lengths),
            )
            state = tf.nest.map_structure(gather, state)
            # A sequence's length counts its tokens up to its end token.
            growing = tf.logical_and(generated, tf.logical_not(done))
            lengths += tf.cast(growing, tf.float32)
            buffer, done = write_tokens(
                buffer,
                i + 1,
                tokens,
                done,
                eos_id,
                pad_id,
                tf.fill(tf.stack([rows]), generated),
            )
            return buffer, state, done, scores, lengths

        body, state, start_at = _step_function(
            model, kind, use_cache, prompt, rows, total, first, advance
        )
        _, buffer, _, _, scores, lengths = tf.while_loop(
            lambda i, *_: i < total - 1,
            body,
            (start_at, buffer, state, done, scores, lengths),
        )
        final = scores / tf.reshape(lengths, [-1, k]) ** penalty
        best = tf.argmax(final, axis=-1, output_type=tf.int32)
        buffer = tf.gather(buffer, tf.range(batch) * k + best)
        return buffer if kind == "lm" else buffer[:, 1:]

    return run
