"""The built-in sequence data sets: contents, splits, pipelines, errors."""

import numpy as np
import pytest

from kerasblocks.data import DataError, load_dataset, make_pipeline


def _decode(ids, vocabulary):
    return [vocabulary[i] for i in ids if i > 2]


def test_sine_wave_is_the_books_series():
    data = load_dataset("sine_wave", noise=0.0)
    assert data.task == "regression"
    assert data.x_train.shape == (600, 4) and data.y_train.shape == (600, 1)
    assert data.x_val.shape == (396, 4)
    time = np.arange(1, 1001)
    series = np.sin(0.01 * time)
    np.testing.assert_allclose(data.x_train[0], series[:4], atol=1e-6)
    np.testing.assert_allclose(data.y_train[:, 0], series[4:604], atol=1e-6)
    noisy = load_dataset("sine_wave", seed=1)
    residual = noisy.y_train[:, 0] - series[4:604]
    assert 0.15 < residual.std() < 0.25
    np.testing.assert_array_equal(
        load_dataset("sine_wave", seed=1).x_val, noisy.x_val
    )


@pytest.mark.parametrize(
    "name, expected",
    [
        ("sequence_reversal", lambda source: source[::-1]),
        ("sequence_copy", lambda source: source),
    ],
)
def test_symbol_tasks(name, expected):
    data = load_dataset(name, size=200, num_symbols=5, max_length=7)
    assert data.task == "token_classification" and data.pad_id == 0
    assert data.num_classes == len(data.info["vocabulary"]) == 8
    sources = data.x_train["source_ids"]
    inputs, labels = data.x_train["target_ids"], data.y_train
    assert inputs.shape == labels.shape == (180, 8)
    assert np.all(inputs[:, 0] == data.info["bos_id"])
    for source, target_in, label in zip(sources, inputs, labels, strict=True):
        real = source[source != 0].tolist()
        assert 3 <= len(real) <= 7
        assert label[: len(real)].tolist() == expected(real)
        assert label[len(real)] == data.info["eos_id"]
        assert np.all(label[len(real) + 1 :] == 0)
        # Teacher forcing: the decoder input is the label shifted right.
        np.testing.assert_array_equal(
            target_in[1 : len(real) + 1], label[: len(real)]
        )


def test_addition_targets_are_sums():
    data = load_dataset("addition", size=100, num_digits=2)
    vocabulary = data.info["vocabulary"]
    for source, label in zip(data.x_val["source_ids"], data.y_val, strict=True):
        a, b = "".join(_decode(source, vocabulary)).split("+")
        assert "".join(_decode(label, vocabulary)) == str(int(a) + int(b))
    assert data.info["max_length"] == 5  # "99+99"
    assert data.info["model_overrides"] == {"vocab_size": 14, "max_length": 5}


def test_char_lm_reads_a_file_or_a_directory(tmp_path):
    text = "the time machine, by h. g. wells. " * 20
    path = tmp_path / "book.txt"
    path.write_text(text, encoding="utf-8")
    data = load_dataset("char_lm", data_dir=str(path), num_steps=10)
    vocabulary = data.info["vocabulary"]
    assert vocabulary[0] == "<pad>" and vocabulary[1:] == sorted(set(text))
    assert data.num_classes == len(vocabulary) and data.pad_id == 0
    x, y = data.x_train, data.y_train
    assert x.shape[1] == y.shape[1] == 10
    assert len(x) + len(data.x_val) == (len(text) - 1) // 10
    assert "".join(vocabulary[i] for i in x[0]) in text
    # Labels are the next characters.
    np.testing.assert_array_equal(y[:, :-1], x[:, 1:])
    (tmp_path / "more.txt").write_text("ABC" * 10, encoding="utf-8")
    both = load_dataset("char_lm", data_dir=str(tmp_path), num_steps=10)
    assert both.info["files"] == [
        str(tmp_path / "book.txt"),
        str(tmp_path / "more.txt"),
    ]
    assert "A" in both.info["vocabulary"]
    book = load_dataset(
        "char_lm", data_dir=str(path), num_steps=10, letters_only=True
    )
    assert book.info["vocabulary"][1:] == sorted(
        set("thetimemachinebyhgwells ")
    )
    batch = next(iter(make_pipeline(data, "train", 4)))
    assert batch[0].shape == (4, 10)


def test_char_lm_errors_say_where_they_looked(tmp_path):
    with pytest.raises(DataError, match="pass data_dir"):
        load_dataset("char_lm")
    missing = tmp_path / "missing.txt"
    with pytest.raises(DataError, match=f"{missing} does not exist"):
        load_dataset("char_lm", data_dir=str(missing))
    with pytest.raises(DataError, match=f"no .txt file in {tmp_path}"):
        load_dataset("char_lm", data_dir=str(tmp_path))
    (tmp_path / "short.txt").write_text("abc", encoding="utf-8")
    with pytest.raises(DataError, match="holds 3 characters"):
        load_dataset("char_lm", data_dir=str(tmp_path), num_steps=4)


def test_seq2seq_pipelines_carry_named_inputs():
    data = load_dataset("sequence_copy", size=40)
    inputs, labels = next(iter(make_pipeline(data, "train", 8, shuffle_seed=0)))
    assert sorted(inputs) == ["source_ids", "target_ids"]
    assert inputs["target_ids"].shape == labels.shape
