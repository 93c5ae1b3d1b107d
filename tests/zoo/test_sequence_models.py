"""The sequence zoo beyond the conformance suite: bad inputs, padding
end to end, generation (cache vs recomputation, sampling, XLA) and a
short training run on a built-in data set."""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb
import zoo
from kerasblocks.compile import compile_forward
from kerasblocks.data import load_dataset

SEQUENCE_MODELS = [
    n for n in zoo.list_models() if zoo.get_model_entry(n).task == "sequence"
]
GENERATORS = [
    "rnn_lm",
    "gru_lm",
    "lstm_lm",
    "transformer_lm",
    "seq2seq_gru",
    "seq2seq_attention",
    "transformer",
]


@functools.cache
def _model(name, **extra):
    keras.utils.set_random_seed(0)
    args = {**zoo.get_model_entry(name).test_overrides, **extra}
    return zoo.create_model(name, **args)


def _generator(name):
    # The registered gru_lm test is bidirectional, which cannot generate.
    return (
        _model(name, bidirectional=False)
        if name == "gru_lm"
        else (_model(name))
    )


def _inputs(name, model):
    return zoo.get_model_entry(name).test_inputs(model)


def _replace(inputs, index, value):
    inputs = list(inputs) if isinstance(inputs, list) else [inputs]
    inputs[index] = tf.constant(value, tf.int32)
    return inputs if len(inputs) > 1 else inputs[0]


def test_the_sequence_zoo_is_registered():
    assert SEQUENCE_MODELS == sorted(
        [*GENERATORS, "transformer_encoder_classifier"]
    )
    assert "generate" in dir(zoo)


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_bad_token_ids_are_clear_errors_eagerly_and_in_graphs(name):
    model = _model(name)
    inputs = _inputs(name, model)
    graph = compile_forward(model, mode="graph")
    config = model.get_config()
    for index in range(len(model.inputs)):
        vocab = config["vocab_size"]
        if index == 1:
            vocab = config["target_vocab_size"] or vocab
        too_big = np.ones((2, 4), np.int32)
        too_big[1, 2] = vocab
        negative = np.ones((2, 4), np.int32)
        negative[0, 0] = -3
        too_long = np.ones((2, config["max_length"] + 1), np.int32)
        for ids, message in (
            (too_big, rf"token ids must be in \[0, {vocab}\)"),
            (negative, rf"token ids must be in \[0, {vocab}\)"),
            (too_long, f"too long: at most max_length={config['max_length']}"),
        ):
            bad = _replace(inputs, index, ids)
            with pytest.raises(ValueError, match=message):
                model(bad)
            # In a graph, a position layer's check may fire first.
            in_graph = "sequence too long" if ids is too_long else message
            with pytest.raises(tf.errors.InvalidArgumentError, match=in_graph):
                graph(bad)


def test_compiled_encoder_decoders_take_inputs_by_name():
    """The data sets feed `{"source_ids", "target_ids"}` dicts."""
    model = _model("seq2seq_gru")
    source, target = _inputs("seq2seq_gru", model)
    forward = compile_forward(model, mode="graph")
    by_name = forward({"target_ids": target, "source_ids": source})
    np.testing.assert_allclose(by_name, model([source, target]), atol=1e-6)
    assert [s.name for s in forward.input_spec] == ["source_ids", "target_ids"]
    with pytest.raises(ValueError, match="expected 2 inputs"):
        forward({"source_ids": source, "targets": target})


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_all_padding_gives_finite_outputs(name):
    model = _model(name)
    inputs = _inputs(name, model)
    padding = keras.tree.map_structure(tf.zeros_like, inputs)
    for run in (model, compile_forward(model, mode="graph")):
        out = run(padding)
        assert np.all(np.isfinite(out))


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_extra_padding_changes_no_real_position(name):
    """Padding masks reach every layer: adding padding to every input
    leaves the outputs at real positions unchanged."""
    model = _model(name)
    inputs = _inputs(name, model)
    padded = keras.tree.map_structure(
        lambda t: tf.pad(t, [[0, 0], [0, 3]]), inputs
    )
    short, long = model(inputs).numpy(), model(padded).numpy()
    if short.ndim == 2:  # a classifier
        np.testing.assert_allclose(long, short, atol=1e-5)
        return
    target = inputs[1] if isinstance(inputs, list) else inputs
    real = target.numpy() != 0
    np.testing.assert_allclose(
        long[:, : short.shape[1]][real], short[real], atol=1e-5
    )


@pytest.mark.parametrize("name", GENERATORS)
def test_generation_with_a_cache_equals_recomputation(name):
    model = _generator(name)
    prompt = np.array([[3, 4, 5], [6, 7, 8]])
    cached = zoo.generate(model, prompt, 5)
    full = zoo.generate(model, prompt, 5, use_cache=False)
    np.testing.assert_array_equal(cached, full)
    if model.kind == "lm":
        assert cached.shape == (2, 8)
        np.testing.assert_array_equal(cached[:, :3], prompt)
    else:
        assert cached.shape == (2, 5)
    assert cached.dtype == np.int32
    if model.kind == "lm":
        assert np.all(cached != 0)  # padding is never generated
    # The greedy continuation is the argmax of the model's own logits.
    if model.kind == "lm":
        logits = model(tf.constant(cached[:, :-1])).numpy()
        logits[..., 0] = -np.inf  # padding is never generated
        np.testing.assert_array_equal(logits.argmax(-1)[:, 2:], cached[:, 3:])


@pytest.mark.parametrize("name", ["transformer_lm", "seq2seq_attention"])
def test_sampling_is_seeded_and_the_same_with_or_without_cache(name):
    model = _generator(name)
    prompt = np.array([[3, 4], [5, 6]])
    first = zoo.generate(model, prompt, 6, strategy="sample", seed=7)
    again = zoo.generate(model, prompt, 6, strategy="sample", seed=7)
    full = zoo.generate(
        model, prompt, 6, strategy="sample", seed=7, use_cache=False
    )
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, full)
    others = [
        zoo.generate(model, prompt, 6, strategy="sample", seed=s)
        for s in (8, 9)
    ]
    assert any(not np.array_equal(first, o) for o in others)


@pytest.mark.parametrize("name", ["lstm_lm", "transformer"])
def test_generation_compiles_with_xla(name):
    model = _generator(name)
    prompt = np.array([[3, 4, 5]])
    for strategy in ("greedy", "sample"):
        graph = zoo.generate(model, prompt, 4, strategy=strategy, seed=1)
        xla = zoo.generate(
            model, prompt, 4, strategy=strategy, seed=1, jit_compile=True
        )
        np.testing.assert_array_equal(xla, graph)


def test_generation_is_one_compiled_loop():
    model = _generator("transformer_lm")
    for length in (2, 3, 5):
        zoo.generate(model, np.full((2, length), 4), 3)
    functions = model.__dict__["_zoo_generate_functions"]
    (function,) = [
        f for key, f in functions.items() if dict(key)["max_new_tokens"] == 3
    ]
    assert function.experimental_get_tracing_count() == 1


def test_generation_stops_at_the_end_of_sequence_token():
    model = _generator("lstm_lm")
    prompt = np.array([[3, 4, 5]])
    free = zoo.generate(model, prompt, 6)
    stop = free[0, 4]
    stopped = zoo.generate(model, prompt, 6, eos_id=int(stop))
    first = 3 + list(free[0, 3:]).index(stop)
    np.testing.assert_array_equal(stopped[0, : first + 1], free[0, : first + 1])
    assert np.all(stopped[0, first + 1 :] == 0)
    one = zoo.generate(model, prompt[0], 2)
    assert one.shape == (5,)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: zoo.generate(_model("gru_lm"), [[3]], 2), "bidirectional"),
        (
            lambda: zoo.generate(
                _model("transformer_encoder_classifier"), [[3]], 2
            ),
            "does not generate",
        ),
        (
            lambda: zoo.generate(_generator("rnn_lm"), [[3] * 10], 7),
            "max_length=16",
        ),
        (
            lambda: zoo.generate(_generator("rnn_lm"), [[3, 12]], 2),
            r"token ids must be in \[0, 12\)",
        ),
        (
            lambda: zoo.generate(_generator("rnn_lm"), [[3]], 2, "beam"),
            "strategy must be one of",
        ),
        (
            lambda: zoo.generate(_generator("rnn_lm"), [[3]], 0),
            "max_new_tokens must be a positive int",
        ),
        (
            lambda: zoo.generate(
                _generator("rnn_lm"), [[3]], 2, "sample", temperature=0
            ),
            "temperature must be > 0",
        ),
    ],
)
def test_generation_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_bad_arguments_are_named(name):
    with pytest.raises(ValueError, match="unexpected keyword argument 'unit'"):
        zoo.create_model(name, unit=3)
    with pytest.raises(ValueError, match="vocab_size must be a positive int"):
        zoo.create_model(name, vocab_size=0)
    with pytest.raises(ValueError, match="max_length must be a positive int"):
        zoo.create_model(name, max_length=-1)


def test_recurrent_language_models_count_like_keras():
    for name, layer in (
        ("rnn_lm", keras.layers.SimpleRNN),
        ("gru_lm", keras.layers.GRU),
        ("lstm_lm", keras.layers.LSTM),
    ):
        reference = keras.Sequential(
            [
                keras.Input((None, 28)),
                layer(32, return_sequences=True),
                keras.layers.Dense(28),
            ]
        )
        assert (
            kb.params.count_parameters(zoo.create_model(name))
            == reference.count_params()
        )
    deep = keras.Sequential(
        [
            keras.Input((None,)),
            keras.layers.Embedding(50, 8),
            keras.layers.Bidirectional(
                keras.layers.GRU(16, return_sequences=True)
            ),
            keras.layers.Bidirectional(
                keras.layers.GRU(16, return_sequences=True)
            ),
            keras.layers.Dense(50),
        ]
    )
    ours = zoo.create_model(
        "gru_lm",
        vocab_size=50,
        embedding_dim=8,
        units=16,
        num_layers=2,
        bidirectional=True,
    )
    assert kb.params.count_parameters(ours) == deep.count_params()


def test_seq2seq_learns_to_copy_from_the_built_in_data():
    data = load_dataset("sequence_copy", size=512, num_symbols=6, max_length=6)
    keras.utils.set_random_seed(0)
    model = zoo.create_model(
        "transformer",
        vocab_size=data.info["vocab_size"],
        max_length=data.info["max_length"],
        hidden_dim=32,
        mlp_dim=64,
        num_layers=1,
        dropout_rate=0.0,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=data.pad_id
        ),
    )
    history = model.fit(
        data.x_train, data.y_train, batch_size=32, epochs=4, verbose=0
    )
    losses = history.history["loss"]
    assert losses[-1] < 0.7 * losses[0]
