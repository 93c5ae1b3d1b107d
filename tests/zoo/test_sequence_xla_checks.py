"""Bad token ids are caught before an XLA function, which drops asserts."""

import numpy as np
import pytest

import zoo
from kerasblocks.compile import compile_forward, compile_train_step


@pytest.mark.parametrize("mode", ["xla", "auto", "graph"])
def test_out_of_range_ids_are_named_errors_in_every_mode(mode):
    entry = zoo.get_model_entry("transformer_encoder_classifier")
    model = zoo.create_model(
        "transformer_encoder_classifier", **entry.test_overrides
    )
    vocab = model.get_config()["vocab_size"]
    good = np.ones((2, 5), "int32")
    forward = compile_forward(model, mode=mode)
    assert forward(good).shape[0] == 2
    bad = good.copy()
    bad[1, 3] = vocab
    with pytest.raises(
        Exception, match=rf"token ids must be in \[0, {vocab}\)"
    ):
        forward(bad)
    negative = good.copy()
    negative[0, 0] = -1
    with pytest.raises(Exception, match="token ids must be in"):
        forward(negative)


def test_train_step_checks_ids_under_xla():
    entry = zoo.get_model_entry("transformer_lm")
    model = zoo.create_model("transformer_lm", **entry.test_overrides)
    vocab = model.get_config()["vocab_size"]
    step = compile_train_step(
        model, "sgd", "sparse_categorical_crossentropy", mode="xla"
    )
    ids = np.ones((2, 4), "int32")
    assert np.isfinite(step(ids, ids)["loss"])
    ids[0, 1] = vocab + 3
    with pytest.raises(ValueError, match="token ids must be in"):
        step(ids, np.ones((2, 4), "int32"))
