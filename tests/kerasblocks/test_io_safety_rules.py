"""The loading rules as the README states them, each tested both ways:
registered classes of trusted packages only, no code-running function
names, how to allow an unregistered class, and no save that changes how
another file loads."""

import json
import zipfile

import keras
import numpy as np
import pytest

import kerasblocks as kb
from kerasblocks.io import safety

X = np.linspace(-1.0, 1.0, 12, dtype="float32").reshape(3, 4)


@pytest.fixture
def trusted(monkeypatch):
    """Packages registered as trusted during a test are forgotten after."""
    monkeypatch.setattr(safety, "_TRUSTED", set(safety._TRUSTED))


@keras.saving.register_keras_serializable(package="kb_rules_untrusted")
class Doubled(keras.layers.Layer):
    def call(self, inputs):
        return 2.0 * inputs


@keras.saving.register_keras_serializable(package="kb_rules_untrusted")
def tripled(inputs):
    return 3.0 * inputs


@keras.saving.register_keras_serializable(package="kb_rules_untrusted")
def halved_error(y_true, y_pred):
    return 0.5 * keras.ops.mean(keras.ops.square(y_pred - y_true), axis=-1)


class Unregistered(keras.layers.Layer):
    def call(self, inputs):
        return inputs + 1.0


def _model(layer):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(4, name="dense")(inputs)
    return keras.Model(inputs, layer(hidden))


HOW = (
    "register it with keras.saving.register_keras_serializable(package="
    "'kb_rules_untrusted') and call kerasblocks.io.register_trusted_package("
    "'kb_rules_untrusted'), or pass custom_objects="
)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_registered_class_loads_only_from_a_trusted_package(
    tmp_path, trusted, suffix
):
    model = _model(Doubled(name="doubled"))
    path = tmp_path / f"m{suffix}"
    kb.io.save_model(model, path)
    with pytest.raises(kb.io.UnsafeModelError) as refused:
        kb.io.load_model(path)
    message = str(refused.value)
    assert "\n" not in message
    assert (
        "class kb_rules_untrusted>Doubled at config.config.layers[2], "
        "registered "
        "by package 'kb_rules_untrusted', which is not trusted (if it is "
        f"yours, {HOW}{{'Doubled': Doubled}})" in message
    )
    # Named by the caller, it loads ...
    again = kb.io.load_model(path, custom_objects={"Doubled": Doubled})
    np.testing.assert_allclose(again(X), model(X), rtol=1e-6)
    # ... and, once its package is trusted, without being named.
    kb.io.register_trusted_package("kb_rules_untrusted")
    again = kb.io.load_model(path)
    assert isinstance(again.layers[-1], Doubled)
    np.testing.assert_allclose(again(X), model(X), rtol=1e-6)


def _refused_until_trusted(model, path, problem):
    """Saves `model` to `path`; loading it is refused naming `problem`
    until its package is trusted. Returns the model then loaded."""
    kb.io.save_model(model, path)
    with pytest.raises(kb.io.UnsafeModelError) as refused:
        kb.io.load_model(path)
    assert problem in str(refused.value)
    kb.io.register_trusted_package("kb_rules_untrusted")
    return kb.io.load_model(path)


def test_a_registered_function_follows_the_same_rule(tmp_path, trusted):
    model = _model(kb.layers.Function(tripled, name="tripled"))
    again = _refused_until_trusted(
        model,
        tmp_path / "f.keras",
        "function kb_rules_untrusted>tripled at config.config.layers[2]."
        "config.function, registered by package 'kb_rules_untrusted', "
        "which is not trusted",
    )
    np.testing.assert_allclose(again(X), model(X), rtol=1e-6)


def test_a_registered_loss_follows_the_same_rule(tmp_path, trusted):
    model = _model(keras.layers.Activation("linear"))
    model.compile(optimizer="sgd", loss=halved_error)
    again = _refused_until_trusted(
        model,
        tmp_path / "loss.keras",
        "function kb_rules_untrusted>halved_error at config.compile_config."
        "loss, registered by package 'kb_rules_untrusted', which is not "
        "trusted",
    )
    assert again.loss is halved_error


def _with_activation(tmp_path, name, module="builtins"):
    """A .keras file whose Dense names `module`.`name` as its activation,
    the way Keras writes its own activations by name."""
    model = _model(keras.layers.Activation("linear", name="out"))
    source = tmp_path / "plain.keras"
    model.save(source)  # Keras's archive: no checksums to redo
    with zipfile.ZipFile(source) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][1]["config"]["activation"] = {
        "module": module,
        "class_name": "function",
        "config": name,
        "registered_name": None,
    }
    members["config.json"] = json.dumps(config).encode()
    target = tmp_path / f"{name}.keras"
    with zipfile.ZipFile(target, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return model, target


@pytest.mark.parametrize(
    "name", ["eval", "exec", "open", "__import__", "getattr", "compile"]
)
def test_builtins_that_run_code_are_refused_by_our_check(tmp_path, name):
    _, path = _with_activation(tmp_path, name)
    with pytest.raises(kb.io.UnsafeModelError) as refused:
        kb.io.load_model(path)
    assert (
        f"refusing to load, it would run code from the file (arbitrary code "
        f"execution) or reach outside it: function builtins.{name} at "
        f"config.config.layers[1].config.activation, which is not a Keras "
        "function"
    ) in str(refused.value)


def test_keras_functions_named_as_builtins_load(tmp_path):
    model, path = _with_activation(tmp_path, "relu")
    again = kb.io.load_model(path)
    assert again.layers[1].activation is keras.activations.relu
    expected = np.maximum(model.layers[1](X).numpy(), 0.0)
    np.testing.assert_allclose(again(X), expected, rtol=1e-6)
    # a name Keras's function modules hold that is not math is refused
    _, path = _with_activation(tmp_path, "deserialize")
    with pytest.raises(kb.io.UnsafeModelError, match="builtins.deserialize"):
        kb.io.load_model(path)


def test_an_unregistered_class_says_how_to_allow_it(tmp_path):
    model = _model(Unregistered(name="plus_one"))
    path = tmp_path / "u.keras"
    kb.io.save_model(model, path)
    with pytest.raises(kb.io.UnsafeModelError) as refused:
        kb.io.load_model(path)
    message = str(refused.value)
    assert (
        f"class {__name__}.Unregistered at config.config.layers[2]" in message
    )
    assert (
        "register it with keras.saving.register_keras_serializable(package="
        "'my_package') and call kerasblocks.io.register_trusted_package("
        "'my_package'), or pass custom_objects={'Unregistered': "
        "Unregistered}" in message
    )
    again = kb.io.load_model(
        path, custom_objects={"Unregistered": Unregistered}
    )
    np.testing.assert_allclose(again(X), model(X), rtol=1e-6)


def test_an_h5_save_does_not_change_how_an_export_loads(tmp_path):
    keras.utils.set_random_seed(0)
    model = _model(keras.layers.Activation("relu"))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.fit(X, X[:, ::-1], epochs=2, batch_size=3, verbose=0)
    kb.io.save_model(model, tmp_path / "trained.h5")
    # the .h5 save leaves the model's compile config whole
    assert model.get_compile_config()["optimizer"]["class_name"] == "Adam"
    kb.io.export_saved_model(model, tmp_path / "exported")
    again = kb.io.load_model(tmp_path / "exported")
    assert isinstance(again.optimizer, keras.optimizers.Adam)
    assert int(again.optimizer.iterations.numpy()) == 2
    for mine, theirs in zip(
        model.optimizer.variables, again.optimizer.variables, strict=True
    ):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-6)
    np.testing.assert_allclose(again(X), model(X), rtol=1e-6)
    # ... and the .h5 itself still loads with its optimizer
    from_h5 = kb.io.load_model(tmp_path / "trained.h5")
    assert isinstance(from_h5.optimizer, keras.optimizers.Adam)
