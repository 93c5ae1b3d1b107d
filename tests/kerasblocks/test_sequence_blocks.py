"""Attention, Transformer blocks, positions, token checks and recurrent
cells: values, masks, caches and errors (the harness runs the rest)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb
from kerasblocks.testing import run_layer_test

L = kb.layers
RNG = np.random.default_rng(0)


def _normal(*shape):
    return tf.constant(RNG.normal(size=shape), tf.float32)


def _dynamic(fn, *specs):
    """`fn` as a graph function whose inputs have unknown sizes."""
    return tf.function(fn, input_signature=list(specs))


def test_masked_softmax_book_example_and_all_masked_rows():
    softmax = L.MaskedSoftmax()
    scores = _normal(2, 2, 4)
    weights = softmax(scores, valid_lens=tf.constant([2, 3])).numpy()
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
    assert np.all(weights[0, :, 2:] == 0) and np.all(weights[1, :, 3:] == 0)
    np.testing.assert_allclose(
        weights[0, :, :2], tf.nn.softmax(scores[0, :, :2]), rtol=1e-6
    )
    per_query = softmax(scores, valid_lens=tf.constant([[1, 3], [2, 4]]))
    assert np.count_nonzero(per_query.numpy()[0, 0]) == 1
    masked = softmax(scores, mask=tf.constant([[True] * 4, [False] * 4]))
    np.testing.assert_array_equal(masked.numpy()[1], np.zeros((2, 4)))
    with tf.GradientTape() as tape:
        tape.watch(scores)
        out = softmax(scores, valid_lens=tf.constant([0, 1]))
        loss = tf.reduce_sum(out * scores)
    assert np.all(out.numpy()[0] == 0)
    gradient = tape.gradient(loss, scores).numpy()
    assert np.all(np.isfinite(gradient)) and np.all(gradient[0] == 0)


def test_multi_head_attention_equals_keras_with_the_same_weights():
    x, memory = _normal(2, 5, 8), _normal(2, 7, 8)
    mask = tf.constant(RNG.uniform(size=(2, 5, 7)) > 0.3)
    reference = keras.layers.MultiHeadAttention(2, 4, use_bias=True)
    expected = reference(x, memory, attention_mask=mask)
    ours = L.MultiHeadAttention(8, 2, use_bias=True)
    ours([x, memory, memory])
    w = reference.get_weights()
    # keras: (d, heads, head_dim) kernels; the book's split reads the
    # same (d, heads * head_dim) matrix head by head.
    for dense, (kernel, bias) in zip(
        (ours.query_dense, ours.key_dense, ours.value_dense),
        ((w[0], w[1]), (w[2], w[3]), (w[4], w[5])),
        strict=True,
    ):
        dense.set_weights([kernel.reshape(8, 8), bias.reshape(8)])
    ours.output_dense.set_weights([w[6].reshape(8, 8), w[7]])
    got = ours([x, memory, memory], attention_mask=mask)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    got, scores = ours(
        [x, memory, memory],
        attention_mask=mask,
        return_attention_scores=True,
    )
    _, keras_scores = reference(
        x, memory, attention_mask=mask, return_attention_scores=True
    )
    np.testing.assert_allclose(scores, keras_scores, atol=1e-6)
    causal = reference(x, x, use_causal_mask=True)
    np.testing.assert_allclose(ours(x, use_causal_mask=True), causal, atol=1e-5)


def test_book_valid_lens_equal_a_padding_mask():
    attention = L.MultiHeadAttention(8, 2)
    x = _normal(2, 6, 8)
    by_lens = attention(x, valid_lens=tf.constant([6, 2]))
    mask = tf.constant([[True] * 6, [True, True] + [False] * 4])
    np.testing.assert_allclose(
        attention(x, attention_mask=mask), by_lens, atol=1e-6
    )


def test_all_padding_gives_zero_attention_and_finite_gradients():
    attention = L.MultiHeadAttention(8, 2, use_bias=True)
    x = _normal(2, 4, 8)
    mask = tf.constant([[True] * 4, [False] * 4])
    with tf.GradientTape() as tape:
        out = attention(x, attention_mask=mask)
        loss = tf.reduce_sum(out * out)
    grads = tape.gradient(loss, attention.trainable_variables)
    # Zero attention, so the output is the output projection's bias.
    np.testing.assert_allclose(
        out[1], np.broadcast_to(attention.output_dense.bias, (4, 8))
    )
    assert all(np.all(np.isfinite(g)) for g in grads)
    block = L.TransformerEncoderBlock(8, 2, 16)
    y = block(x, padding_mask=tf.zeros((2, 4), tf.bool)).numpy()
    assert np.all(np.isfinite(y))


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda a, x: a(x, attention_mask=tf.ones((2, 5), tf.bool)),
            "attention_mask must have shape",
        ),
        (
            lambda a, x: a(x, attention_mask=tf.ones((2, 4, 4, 1), tf.bool)),
            "attention_mask must have shape",
        ),
        (
            lambda a, x: a(x, valid_lens=tf.constant([1, 2, 3])),
            "valid_lens must have shape",
        ),
    ],
)
def test_masks_of_the_wrong_shape_are_value_errors(call, message):
    attention = L.MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match=message):
        call(attention, _normal(2, 4, 8))


def test_masks_of_the_wrong_shape_fail_in_graphs_with_a_message():
    attention = L.MultiHeadAttention(8, 2)
    attention(_normal(1, 4, 8))
    run = _dynamic(
        lambda x, m: attention(x, attention_mask=m),
        tf.TensorSpec([None, None, 8]),
        tf.TensorSpec([None, None], tf.bool),
    )
    assert run(_normal(2, 4, 8), tf.ones((2, 4), tf.bool)).shape == (2, 4, 8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="attention_mask"):
        run(_normal(2, 4, 8), tf.ones((2, 5), tf.bool))
    block = L.TransformerEncoderBlock(8, 2, 16)
    block(_normal(1, 4, 8))
    run = _dynamic(
        lambda x, m: block(x, padding_mask=m),
        tf.TensorSpec([None, None, 8]),
        tf.TensorSpec([None, None], tf.bool),
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="padding_mask"):
        run(_normal(2, 4, 8), tf.ones((3, 4), tf.bool))


def test_positional_encoding_is_the_books_formula():
    depth, length = 6, 9
    encoding = L.PositionalEncoding(max_length=10)
    p = encoding(tf.zeros((1, length, depth))).numpy()[0]
    angles = np.arange(length)[:, None] / np.power(
        10000.0, np.arange(0, depth, 2) / depth
    )
    np.testing.assert_allclose(p[:, 0::2], np.sin(angles), atol=1e-5)
    np.testing.assert_allclose(p[:, 1::2], np.cos(angles), atol=1e-5)
    shifted = encoding(tf.zeros((1, 2, depth)), start_index=7).numpy()[0]
    np.testing.assert_allclose(shifted, p[7:9], atol=1e-5)
    with pytest.raises(ValueError, match="too long: at most 10 positions"):
        encoding(tf.zeros((1, 11, depth)))
    assert not encoding.weights


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_ignores_padded_positions(norm_first):
    block = L.TransformerEncoderBlock(8, 2, 16, norm_first=norm_first)
    x = _normal(2, 6, 8)
    mask = tf.constant([[True] * 6, [True] * 3 + [False] * 3])
    other = tf.concat([x[:, :3], _normal(2, 3, 8)], axis=1)
    a = block(x, padding_mask=mask).numpy()
    b = block(other, padding_mask=mask).numpy()
    np.testing.assert_allclose(a[1, :3], b[1, :3], atol=1e-6)
    assert not np.allclose(a[0], b[0])


def test_pre_norm_blocks_pass_the_harness():
    run_layer_test(
        L.TransformerEncoderBlock(8, 2, 16, norm_first=True, dropout_rate=0.1),
        input_shape=(2, 5, 8),
        expected_output_shape=(2, 5, 8),
    )
    block = L.TransformerDecoderBlock(
        8, 2, 16, norm_first=True, use_cross_attention=False
    )
    result = run_layer_test(
        block, input_shape=(2, 5, 8), expected_output_shape=(2, 5, 8)
    )
    assert [n.split("/", 1)[1] for n in result.gradients][:1] == [
        "self_attention/query/kernel"
    ]
    assert block.cross_attention is None


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_cache_gives_the_full_sequence_outputs(norm_first):
    block = L.TransformerDecoderBlock(8, 2, 16, norm_first=norm_first)
    x, memory = _normal(2, 6, 8), _normal(2, 4, 8)
    memory_mask = tf.constant([[True] * 4, [True, True, False, False]])
    full = block(x, memory, encoder_mask=memory_mask).numpy()
    # A future token never changes an earlier position.
    changed = tf.concat([x[:, :3], _normal(2, 3, 8)], axis=1)
    np.testing.assert_allclose(
        block(changed, memory, encoder_mask=memory_mask).numpy()[:, :3],
        full[:, :3],
        atol=1e-6,
    )

    def incremental(x, memory):
        cache = block.init_cache(2, 6)
        y, cache = block(
            x[:, :2],
            memory,
            encoder_mask=memory_mask,
            cache=cache,
            cache_index=0,
        )
        outputs = [y]
        for i in range(2, 6):
            y, cache = block(
                x[:, i : i + 1],
                memory,
                encoder_mask=memory_mask,
                cache=cache,
                cache_index=i,
            )
            outputs.append(y)
        return tf.concat(outputs, axis=1)

    for run in (
        incremental,
        tf.function(incremental),
        tf.function(incremental, jit_compile=True),
    ):
        np.testing.assert_allclose(run(x, memory), full, atol=2e-5)
    with pytest.raises(ValueError, match="exceeds the cache"):
        block(x[:, :2], memory, cache=block.init_cache(2, 6), cache_index=5)


def test_decoder_block_argument_errors():
    block = L.TransformerDecoderBlock(8, 2, 16)
    with pytest.raises(ValueError, match="needs encoder_outputs"):
        block(_normal(2, 3, 8))
    lm_block = L.TransformerDecoderBlock(8, 2, 16, use_cross_attention=False)
    with pytest.raises(ValueError, match="has no cross-attention"):
        lm_block(_normal(2, 3, 8), _normal(2, 3, 8))
    with pytest.raises(ValueError, match=r"takes \(batch, length, 8\)"):
        L.TransformerEncoderBlock(8, 2, 16)(_normal(2, 3, 6))


CELLS = [
    (L.RNNCell, {}, keras.layers.SimpleRNN, {}),
    (L.GRUCell, {}, keras.layers.GRU, {}),
    (
        L.GRUCell,
        {"reset_after": False},
        keras.layers.GRU,
        {"reset_after": False},
    ),
    (L.LSTMCell, {}, keras.layers.LSTM, {}),
]


@pytest.mark.parametrize("cell, args, reference, reference_args", CELLS)
def test_cells_compute_what_keras_computes(
    cell, args, reference, reference_args
):
    keras.utils.set_random_seed(1)
    x = _normal(3, 7, 5)
    mask = tf.constant([[True] * 7, [True] * 4 + [False] * 3, [True] * 7])
    theirs = reference(
        6, return_sequences=True, return_state=True, **reference_args
    )
    ours = keras.layers.RNN(
        cell(6, **args), return_sequences=True, return_state=True
    )
    theirs(x)
    ours(x)
    assert [tuple(w.shape) for w in ours.weights] == [
        tuple(w.shape) for w in theirs.weights
    ]
    # Random, non-zero biases so that every term is exercised.
    weights = [RNG.normal(size=w.shape) * 0.5 for w in theirs.weights]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    for kwargs in ({}, {"mask": mask}):
        expected = theirs(x, **kwargs)
        got = ours(x, **kwargs)
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)
    backwards = []
    for layer in (
        keras.layers.RNN(cell(6, **args), go_backwards=True),
        reference(6, go_backwards=True, **reference_args),
    ):
        layer(x)
        layer.set_weights(weights)
        backwards.append(layer(x))
    np.testing.assert_allclose(backwards[0], backwards[1], atol=1e-5)


@pytest.mark.parametrize("cell", [L.RNNCell, L.GRUCell, L.LSTMCell])
def test_cells_train_over_a_sequence(cell):
    layer = keras.layers.RNN(cell(4))
    x = _normal(2, 5, 3)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) * _normal(2, 4))
    grads = tape.gradient(loss, layer.trainable_variables)
    assert [v.name for v in layer.trainable_variables] == [
        "kernel",
        "recurrent_kernel",
        "bias",
    ]
    assert all(float(tf.norm(g)) > 0 for g in grads)


def test_bahdanau_decoder_step_by_step_equals_the_whole_sequence():
    decoder = L.BahdanauDecoder(8, 2)
    targets, memory = _normal(2, 5, 3), _normal(2, 4, 8)
    memory_mask = tf.constant([[True] * 4, [True, True, False, False]])
    states = [_normal(2, 8), _normal(2, 8)]
    full = decoder(
        [targets, memory], initial_states=states, encoder_mask=memory_mask
    )
    outputs = []
    for t in range(5):
        y, states = decoder.step(targets[:, t], states, memory, memory_mask)
        outputs.append(y)
    np.testing.assert_allclose(tf.stack(outputs, 1), full, atol=1e-5)
    # A padded step keeps the state: the output repeats.
    padded = decoder(
        [targets, memory],
        padding_mask=tf.constant([[True] * 5, [True, True] + [False] * 3]),
    ).numpy()
    np.testing.assert_allclose(padded[1, 2:], padded[1, [1, 1, 1]])
    # Memory that is all padding still gives finite outputs.
    empty = decoder([targets, memory], encoder_mask=tf.zeros((2, 4), tf.bool))
    assert np.all(np.isfinite(empty))


@pytest.mark.parametrize(
    "ids, message, graph_message",
    [
        ([[1, 10]], r"must be in \[0, 10\).*from 1 to 10", r"in \[0, 10\)"),
        ([[-1, 3]], r"must be in \[0, 10\).*from -1 to 3", r"in \[0, 10\)"),
        ([[1, 2, 3, 4, 5]], "too long: at most max_length=4", "too long"),
    ],
)
def test_check_token_ids_eager_and_graph(ids, message, graph_message):
    check = L.CheckTokenIds(10, max_length=4)
    with pytest.raises(ValueError, match=message):
        check(tf.constant(ids))
    run = _dynamic(check, tf.TensorSpec([None, None], tf.int32))
    with pytest.raises(tf.errors.InvalidArgumentError, match=graph_message):
        run(tf.constant(ids))
    np.testing.assert_array_equal(run(tf.constant([[0, 9]])), [[0, 9]])
    with pytest.raises(ValueError, match="integer token ids"):
        check(tf.constant([[1.0]]))


def test_token_layers():
    ids = tf.constant([[4, 0, 2]])
    assert L.PaddingMask(0)(ids).numpy().tolist() == [[True, False, True]]
    one_hot = L.OneHot(5)(ids).numpy()
    assert one_hot.shape == (1, 3, 5) and one_hot[0, 0, 4] == 1.0
    x = _normal(2, 4, 3)
    with_token = L.ClassToken()(x)
    np.testing.assert_array_equal(with_token[:, 0], np.zeros((2, 3)))
    np.testing.assert_array_equal(with_token[:, 1:], x)
    grid = L.PatchGrid(2, 2, num_prefix_tokens=1)(
        tf.reshape(tf.range(10.0), (1, 5, 2))
    )
    assert grid.numpy()[0, 1, 0].tolist() == [6.0, 7.0]
    positions = L.LearnedPositionEmbedding(4)
    out = positions(tf.zeros((1, 3, 2)), start_index=1).numpy()
    np.testing.assert_array_equal(out[0], positions.embeddings.numpy()[1:])
    with pytest.raises(ValueError, match="too long: at most 4 positions"):
        positions(tf.zeros((1, 5, 2)))


def test_patch_embedding_is_a_linear_map_of_flattened_patches():
    embed = L.PatchEmbedding(2, 5)
    images = _normal(1, 4, 6, 3)
    tokens = embed(images).numpy()
    kernel, bias = (w.numpy() for w in embed.conv.weights)
    patch = images.numpy()[0, 2:4, 4:6, :]  # row 1, column 2 of the grid
    np.testing.assert_allclose(
        tokens[0, 1 * 3 + 2],
        patch.reshape(-1) @ kernel.reshape(-1, 5) + bias,
        atol=1e-5,
    )
