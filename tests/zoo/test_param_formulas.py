"""The book's models and the sequence models, counted from their papers.

A golden file only says that a count did not change; for the models that
have no keras.applications twin to compare against, that was their only
reference. Here each count is worked out by hand from the architecture
as the book (or the paper) describes it, layer by layer, and compared
with the built model. Batch-norm layers count four numbers per channel
(scale, offset, moving mean, moving variance), as `count_parameters`
does.
"""

import math

import pytest

import kerasblocks as kb
import zoo


def conv(k, cin, cout, *, bias=True, groups=1):
    return k * k * (cin // groups) * cout + (cout if bias else 0)


def dense(units_in, units_out, *, bias=True):
    return units_in * units_out + (units_out if bias else 0)


def bn(channels):
    return 4 * channels


def layer_norm(channels):
    return 2 * channels


def valid(size, k, stride=1):
    return (size - k) // stride + 1


def lenet():
    # 28x28x1: conv 6@5 (same), avg-pool 2 -> 14, conv 16@5 -> 10,
    # avg-pool 2 -> 5; dense 120, 84, 10.
    flat = 16 * 5 * 5
    return (
        conv(5, 1, 6)
        + conv(5, 6, 16)
        + dense(flat, 120)
        + dense(120, 84)
        + dense(84, 10)
    )


def lenet_bn():
    # The book's BatchNorm LeNet: valid convs, 28 -> 24 -> 12 -> 8 -> 4.
    flat = 16 * 4 * 4
    return (
        conv(5, 1, 6)
        + bn(6)
        + conv(5, 6, 16)
        + bn(16)
        + dense(flat, 120)
        + bn(120)
        + dense(120, 84)
        + bn(84)
        + dense(84, 10)
    )


def alexnet():
    size = valid(224, 11, 4)  # 54
    size = valid(size, 3, 2)  # 26, conv2 keeps it
    size = valid(size, 3, 2)  # 12, conv3-5 keep it
    size = valid(size, 3, 2)  # 5
    return (
        conv(11, 1, 96)
        + conv(5, 96, 256)
        + conv(3, 256, 384)
        + conv(3, 384, 384)
        + conv(3, 384, 256)
        + dense(size * size * 256, 4096)
        + dense(4096, 4096)
        + dense(4096, 10)
    )


def nin():
    def block(cin, cout, k):
        return conv(k, cin, cout) + 2 * conv(1, cout, cout)

    return (
        block(1, 96, 11)
        + block(96, 256, 5)
        + block(256, 384, 3)
        + block(384, 10, 3)
    )


def vgg11():
    total, cin = 0, 1
    for num_convs, cout in ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)):
        for _ in range(num_convs):
            total += conv(3, cin, cout)
            cin = cout
    size = 224 // 2**5
    return (
        total
        + dense(size * size * 512, 4096)
        + dense(4096, 4096)
        + dense(4096, 10)
    )


def googlenet():
    def inception(cin, c1, c2, c3, c4):
        count = (
            conv(1, cin, c1)
            + conv(1, cin, c2[0])
            + conv(3, c2[0], c2[1])
            + conv(1, cin, c3[0])
            + conv(5, c3[0], c3[1])
            + conv(1, cin, c4)
        )
        return count, c1 + c2[1] + c3[1] + c4

    total = conv(7, 1, 64) + conv(1, 64, 64) + conv(3, 64, 192)
    channels = 192
    for spec in (
        (64, (96, 128), (16, 32), 32),
        (128, (128, 192), (32, 96), 64),
        (192, (96, 208), (16, 48), 64),
        (160, (112, 224), (24, 64), 64),
        (128, (128, 256), (24, 64), 64),
        (112, (144, 288), (32, 64), 64),
        (256, (160, 320), (32, 128), 128),
        (256, (160, 320), (32, 128), 128),
        (384, (192, 384), (48, 128), 128),
    ):
        count, channels = inception(channels, *spec)
        total += count
    return total + dense(channels, 10)


def _book_resnet(block):
    # b1: conv 64@7 and batch norm; four stages of two blocks, the first
    # stage keeping 64 channels, the others doubling with a 1x1 shortcut.
    total, cin = conv(7, 1, 64) + bn(64), 64
    for stage, cout in enumerate((64, 128, 256, 512)):
        for i in range(2):
            shortcut = stage > 0 and i == 0
            total += block(cin, cout, shortcut)
            cin = cout
    return total + dense(512, 10)


def resnet18():
    def residual(cin, cout, shortcut):
        return (
            conv(3, cin, cout)
            + bn(cout)
            + conv(3, cout, cout)
            + bn(cout)
            + (conv(1, cin, cout) if shortcut else 0)
        )

    return _book_resnet(residual)


def resnext_block(cin, cout, shortcut, group_width=16, bottleneck_ratio=1.0):
    bottleneck = round(cout * bottleneck_ratio)
    groups = bottleneck // group_width
    return (
        conv(1, cin, bottleneck)
        + bn(bottleneck)
        + conv(3, bottleneck, bottleneck, groups=groups)
        + bn(bottleneck)
        + conv(1, bottleneck, cout)
        + bn(cout)
        + (conv(1, cin, cout) + bn(cout) if shortcut else 0)
    )


def resnext():
    return _book_resnet(resnext_block)


def densenet():
    total, channels = conv(7, 1, 64) + bn(64), 64
    for i in range(4):
        for _ in range(4):  # conv blocks: BN, ReLU, conv 32@3
            total += bn(channels) + conv(3, channels, 32)
            channels += 32
        if i < 3:  # transition: BN, conv 1x1 halving the channels
            total += bn(channels) + conv(1, channels, channels // 2)
            channels //= 2
    return total + bn(channels) + dense(channels, 10)


def regnetx32():
    total, cin = conv(3, 1, 32) + bn(32), 32
    for depth, cout in ((4, 32), (6, 80)):
        for i in range(depth):
            total += resnext_block(cin, cout, shortcut=i == 0)
            cin = cout
    return total + dense(cin, 10)


def _recurrent(gates, inputs, units, *, biases=1):
    return gates * (inputs * units + units * units + biases * units)


def rnn_lm():
    # One-hot characters (vocabulary 28) into 32 units, then logits.
    return _recurrent(1, 28, 32) + dense(32, 28)


def gru_lm():
    # Keras's GRU (reset_after=True) keeps an input and a recurrent bias.
    return _recurrent(3, 28, 32, biases=2) + dense(32, 28)


def lstm_lm():
    return _recurrent(4, 28, 32) + dense(32, 28)


def _seq2seq(attention):
    vocab, embed, units = 10000, 256, 256
    encoder = vocab * embed + _recurrent(3, embed, units, biases=2)
    encoder += _recurrent(3, units, units, biases=2)
    # The decoder reads its embedding next to the context vector.
    decoder = vocab * embed + _recurrent(3, embed + units, units, biases=2)
    decoder += _recurrent(3, units, units, biases=2) + dense(units, vocab)
    if attention:  # additive attention: W_q, W_k, w_v, no biases
        decoder += 2 * units * units + units
    return encoder + decoder


def seq2seq_gru():
    return _seq2seq(attention=False)


def seq2seq_attention():
    return _seq2seq(attention=True)


def _attention(dim, *, bias):
    return 4 * dense(dim, dim, bias=bias)


def _ffn(dim, hidden):
    return dense(dim, hidden) + dense(hidden, dim)


def transformer():
    # The book's encoder-decoder: sinusoidal positions (no weights),
    # attention without biases, post-norm AddNorm after each sublayer.
    vocab, dim, hidden, layers = 10000, 256, 64, 2
    encoder_block = _attention(dim, bias=False) + _ffn(dim, hidden)
    encoder_block += 2 * layer_norm(dim)
    decoder_block = 2 * _attention(dim, bias=False) + _ffn(dim, hidden)
    decoder_block += 3 * layer_norm(dim)
    return (
        2 * vocab * dim
        + layers * (encoder_block + decoder_block)
        + dense(dim, vocab)
    )


def transformer_encoder_classifier():
    # BERT-style: a class token, learned positions for it and 512
    # tokens, attention with biases, a linear classifier on the token.
    vocab, dim, hidden, layers, length = 10000, 128, 256, 2, 512
    block = _attention(dim, bias=True) + _ffn(dim, hidden)
    block += 2 * layer_norm(dim)
    return (
        vocab * dim + dim + (length + 1) * dim + layers * block + dense(dim, 2)
    )


def transformer_lm():
    # GPT-style pre-norm decoder: sinusoidal positions, attention
    # without biases, a final norm, untied logits.
    vocab, dim, hidden, layers = 10000, 256, 1024, 2
    block = _attention(dim, bias=False) + _ffn(dim, hidden)
    block += 2 * layer_norm(dim)
    return vocab * dim + layers * block + layer_norm(dim) + dense(dim, vocab)


FORMULAS = {
    f.__name__: f
    for f in (
        lenet,
        lenet_bn,
        alexnet,
        nin,
        vgg11,
        googlenet,
        resnet18,
        resnext,
        densenet,
        regnetx32,
        rnn_lm,
        gru_lm,
        lstm_lm,
        seq2seq_gru,
        seq2seq_attention,
        transformer,
        transformer_encoder_classifier,
        transformer_lm,
    )
}


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_parameter_count_follows_the_architecture(name):
    model = zoo.create_model(name)
    assert kb.params.count_parameters(model) == FORMULAS[name]()


def test_the_formulas_see_a_changed_layer():
    # A formula that ignored its arguments would pass the test above for
    # a model whose layers drifted; these two would then be equal.
    assert lenet() != lenet_bn()
    assert seq2seq_gru() + 2 * 256 * 256 + 256 == seq2seq_attention()
    assert math.prod((3, 3, 16, 64)) + 64 == conv(3, 16, 64)


def test_every_model_without_a_twin_has_a_formula():
    """Models with no keras.applications twin and no paper count of
    their own (the book's and the sequence models) need a formula."""
    families_with_twins = {
        "convnext",
        "efficientnet",
        "efficientnetv2",
        "inception_resnet_v2",
        "inception_v3",
        "mobilenet",
        "mobilenetv3",
        "nasnet",
        "xception",
    }
    lacking = []
    for name in zoo.list_models():
        entry = zoo.get_model_entry(name)
        if entry.family in families_with_twins or name in FORMULAS:
            continue
        if name.startswith(("resnet", "densenet", "vgg", "regnet", "vit")):
            continue  # checked against keras.applications or the paper
        lacking.append(name)
    assert lacking == []
