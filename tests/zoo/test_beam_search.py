"""Beam search in `zoo.generate`: width 1 is greedy decoding, wider beams
find sequences at least as likely, a beam wide enough finds the most
likely sequence (checked by brute force), and XLA equals graph mode."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from zoo._decoding import beam_loop


def _model(name, **extra):
    keras.utils.set_random_seed(0)
    args = {**zoo.get_model_entry(name).test_overrides, **extra}
    return zoo.create_model(name, **args)


def _log_probs(logits):
    """Log-softmax over every token but padding (id 0), in float64."""
    logits = np.asarray(logits, np.float64).copy()
    logits[..., 0] = -np.inf
    top = logits.max(-1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))


def _lm_scores(model, sequences, prompt_length):
    """Summed log-probabilities of each row's continuation."""
    log_probs = _log_probs(model(tf.constant(sequences[:, :-1])))
    steps = range(prompt_length, sequences.shape[1])
    return np.array(
        [
            sum(log_probs[r, i - 1, sequences[r, i]] for i in steps)
            for r in range(len(sequences))
        ]
    )


def _seq2seq_scores(model, source, targets):
    bos = model.get_config()["bos_id"]
    inputs = np.concatenate(
        [np.full((len(targets), 1), bos), targets[:, :-1]], axis=1
    )
    log_probs = _log_probs(model([tf.constant(source), tf.constant(inputs)]))
    rows = np.arange(len(targets))[:, None]
    columns = np.arange(targets.shape[1])[None, :]
    return log_probs[rows, columns, targets].sum(-1)


@pytest.mark.parametrize("name", ["transformer_lm", "seq2seq_attention"])
def test_width_one_is_greedy_decoding_through_the_beam_loop(name):
    model = _model(name)
    prompt = np.array([[3, 4, 5], [6, 7, 8]])
    greedy = zoo.generate(model, prompt, 5)
    np.testing.assert_array_equal(
        zoo.generate(model, prompt, 5, num_beams=1), greedy
    )
    # The beam loop itself, at width 1, chooses the same tokens.
    options = {
        "max_new_tokens": 5,
        "use_cache": True,
        "eos_id": None if model.kind == "lm" else model.get_config()["eos_id"],
        "pad_id": 0,
        "bos_id": model.get_config().get("bos_id"),
        "num_beams": 1,
        "length_penalty": 0.0,
    }
    beam = tf.function(beam_loop(model, options))
    ids = beam(tf.constant(prompt, tf.int32), 1.0, 0).numpy()
    np.testing.assert_array_equal(ids, greedy)


def test_beam_search_scores_at_least_greedy_and_reorders_the_cache():
    model = _model("lstm_lm", units=16)
    prompt = np.array([[3, 4], [5, 6], [7, 8], [9, 10]])
    greedy = zoo.generate(model, prompt, 6)
    beam = zoo.generate(model, prompt, 6, num_beams=4)
    recomputed = zoo.generate(model, prompt, 6, num_beams=4, use_cache=False)
    np.testing.assert_array_equal(beam, recomputed)
    np.testing.assert_array_equal(beam[:, :2], prompt)
    greedy_scores = _lm_scores(model, greedy, 2)
    beam_scores = _lm_scores(model, beam, 2)
    assert np.all(beam_scores >= greedy_scores - 1e-5)
    # The beams found something greedy decoding missed.
    assert np.any(beam_scores > greedy_scores + 1e-3)


@pytest.mark.parametrize("new_tokens, num_beams", [(2, 5), (3, 16)])
def test_a_wide_enough_beam_finds_the_most_likely_sequence(
    new_tokens, num_beams
):
    # 4 real tokens and padding: a beam as wide as the vocabulary holds
    # every first token, so two steps are exhaustive; three need 4 ** 2.
    model = _model("transformer_lm", vocab_size=5)
    prompt = np.array([[1, 2]])
    beam = zoo.generate(model, prompt, new_tokens, num_beams=num_beams)
    every = np.array(
        [
            [1, 2, *tail]
            for tail in itertools.product(range(1, 5), repeat=new_tokens)
        ]
    )
    scores = _lm_scores(model, every, 2)
    np.testing.assert_array_equal(beam[0], every[np.argmax(scores)])
    assert np.sort(scores)[-1] > np.sort(scores)[-2] + 1e-6  # no tie


def test_beam_search_under_xla_equals_graph_and_stops_at_eos():
    model = _model("transformer")
    source = np.array([[3, 4, 5, 6], [7, 8, 9, 0]])
    graph = zoo.generate(model, source, 6, num_beams=3)
    xla = zoo.generate(model, source, 6, num_beams=3, jit_compile=True)
    np.testing.assert_array_equal(xla, graph)
    greedy = zoo.generate(model, source, 6)
    assert np.all(
        _seq2seq_scores(model, source, graph)
        >= _seq2seq_scores(model, source, greedy) - 1e-5
    )
    # After the end token comes padding only, as in greedy decoding.
    eos = model.get_config()["eos_id"]
    for row in graph:
        if eos in row:
            assert np.all(row[list(row).index(eos) + 1 :] == 0)


def test_length_penalty_and_bad_arguments():
    model = _model("lstm_lm", units=16)
    prompt = np.array([[3, 4]])
    free = zoo.generate(model, prompt, 6, num_beams=3)
    # An end token that the best beam generates: a strong length penalty
    # then prefers a longer sequence, a weak one may stop early.
    eos = int(free[0, 3])
    short = zoo.generate(
        model, prompt, 6, num_beams=3, eos_id=eos, length_penalty=-2.0
    )
    long = zoo.generate(
        model, prompt, 6, num_beams=3, eos_id=eos, length_penalty=2.0
    )

    def length(row):
        tail = list(row[2:])
        return tail.index(eos) + 1 if eos in tail else len(tail)

    assert length(short[0]) <= length(long[0])
    for call, message in [
        (dict(num_beams=0), "num_beams must be a positive int"),
        (dict(num_beams=2, strategy="sample"), "num_beams > 1 takes"),
        (dict(num_beams=2, length_penalty=float("nan")), "length_penalty"),
    ]:
        with pytest.raises(ValueError, match=message):
            zoo.generate(model, prompt, 3, **call)
