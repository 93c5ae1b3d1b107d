"""The run's choices and the data set names, written once in
`kerasblocks.choices`: importable without TensorFlow, checked once by
`TrainConfig.validate`, and what the data registry and the lazily loaded
package are built on."""

import os
import subprocess
import sys

import pytest

from kerasblocks import choices
from kerasblocks.training.config import TrainConfig
from kerasblocks.training.errors import UserInputError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def _python(code):
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


@pytest.mark.parametrize(
    "code",
    [
        "import kerasblocks.choices, sys; "
        "assert 'tensorflow' not in sys.modules",
        # What kb-train validates its flags with before TensorFlow loads.
        "import sys\n"
        "from kerasblocks.training.config import TrainConfig\n"
        "TrainConfig(optimizer='sgd').validate()\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in "
        "sys.modules",
    ],
)
def test_the_choices_and_the_config_import_no_tensorflow(code):
    done = _python(code)
    assert done.returncode == 0, done.stderr[-2000:]


def test_loading_a_file_loads_a_lazy_trusted_package(tmp_path, monkeypatch):
    """kerasblocks registers its classes when a public name is first
    used; loading a file that names a trusted package uses one, so a
    process that imported only kerasblocks.io loads every class."""
    from kerasblocks.io import safety

    (tmp_path / "lazy_h9").mkdir()
    (tmp_path / "lazy_h9" / "__init__.py").write_text(
        "__all__ = ['Block']\n"
        "used = []\n"
        "def __getattr__(name):\n"
        "    if name not in __all__:\n"
        "        raise AttributeError(name)\n"
        "    used.append(name)\n"
        "    globals()[name] = object()\n"
        "    return globals()[name]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(safety, "_TRUSTED", {*safety._TRUSTED, "lazy_h9"})
    safety.import_trusted_packages({"class_name": "lazy_h9>Block"})
    assert sys.modules["lazy_h9"].used == ["Block"]
    monkeypatch.delitem(sys.modules, "lazy_h9")


def test_the_package_lists_its_names_and_refuses_others():
    import kerasblocks

    assert set(kerasblocks.__all__) <= set(dir(kerasblocks))
    assert "choices" in dir(kerasblocks)  # a loaded submodule
    with pytest.raises(AttributeError, match="no attribute 'Residul'"):
        kerasblocks.Residul  # noqa: B018


@pytest.mark.parametrize(
    "field, allowed",
    [
        ("optimizer", choices.OPTIMIZERS),
        ("schedule", choices.SCHEDULES),
        ("mixed_precision", choices.PRECISIONS),
        ("jit_compile", choices.JIT),
        ("strategy", choices.STRATEGIES),
        ("freeze", choices.FREEZE),
        ("quantize", choices.QUANTIZE),
    ],
)
def test_the_config_refuses_a_value_outside_the_choices(field, allowed):
    for value in allowed:
        assert getattr(TrainConfig(**{field: value}).validate(), field) == value
    with pytest.raises(UserInputError) as caught:
        TrainConfig(**{field: "bogus"}).validate()
    assert str(caught.value) == (
        f"--{field} must be one of {', '.join(allowed)}. Received: 'bogus'"
    )


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"epochs": True}, "--epochs must be a positive integer. Received: "),
        ({"steps": 0}, "--steps must be a positive integer. Received: 0"),
        ({"learning_rate": "0.1"}, "--learning_rate must be positive."),
        ({"weight_decay": -0.1}, "--weight_decay must be >= 0. Received: "),
        ({"label_smoothing": 1.0}, "--label_smoothing must be in [0, 1)."),
        ({"min_agreement": 1.5}, "--min_agreement must be in [0, 1]."),
        ({"finetune_lr_scale": 0}, "--finetune_lr_scale must be positive."),
        ({"export": ("keras", "pb")}, "--formats takes saved_model, keras,"),
        ({"model_overrides": [1]}, "--model_overrides must be a JSON object"),
        ({"unfreeze_at_epoch": 2}, "--unfreeze_at_epoch needs a frozen"),
        ({"image_size": [8, 0]}, "--image_size must be SIZE or HEIGHT,WIDTH"),
    ],
)
def test_the_config_names_the_first_bad_setting(settings, message):
    with pytest.raises(UserInputError) as caught:
        TrainConfig(**settings).validate()
    assert str(caught.value).startswith(message), str(caught.value)


def test_the_config_fills_in_what_depends_on_other_settings():
    config = TrainConfig(
        model="vgg11", dataset="cifar10", steps=None, image_size=32, cache=""
    ).validate()
    assert config.out_dir == "runs/vgg11-cifar10"
    assert config.image_size == [32, 32] and config.cache is None
    assert config.export == ("saved_model", "keras")


@pytest.mark.parametrize(
    "name, problem",
    [
        ("digits", None),
        ("folder:photos", None),
        ("tfrecord:a*,b*", None),
        (
            "digit",
            "Unknown data set 'digit'. Did you mean: digits? Known: "
            f"{', '.join(choices.DATASETS)}; or folder:DIR, tfds:NAME, "
            "tfrecord:TRAIN_GLOB[,VAL_GLOB]",
        ),
        (
            "folders:x",
            "--dataset=folders:x: unknown source 'folders'; use folder:DIR, "
            "tfds:NAME, tfrecord:TRAIN_GLOB[,VAL_GLOB]",
        ),
        ("tfds:", "--dataset=tfds:: nothing after 'tfds'; use tfds:NAME"),
        (
            "tfrecord:,",
            "--dataset=tfrecord:,: nothing after 'tfrecord'; use "
            "tfrecord:TRAIN_GLOB[,VAL_GLOB]",
        ),
    ],
)
def test_a_data_set_name_is_checked_without_the_library(name, problem):
    assert choices.dataset_problem(name) == problem


def test_names_registered_in_a_process_count_too():
    problem = choices.dataset_problem("mine:x", ["mine"], ["folder"])
    assert problem == (
        "--dataset=mine:x: unknown source 'mine'; use folder:DIR"
    )
    assert choices.dataset_problem("mine", ["mine"], ["folder"]) is None
    assert choices.dataset_problem("lake:x", [], ["lake"]) is None


def test_the_registry_takes_the_built_in_summaries_from_the_choices():
    from kerasblocks import data
    from kerasblocks.data import dataset

    assert data.list_sources()["folder"] == (
        "folder:DIR, one subfolder of images per class"
    )
    with pytest.raises(ValueError, match="'my_set' needs a summary"):
        dataset.register_dataset("my_set")
    with pytest.raises(ValueError, match="'lake' needs a summary"):
        dataset.register_source("lake")
    assert "my_set" not in data.list_datasets()
    with pytest.raises(data.DataError, match="Did you mean: mnist"):
        data.load_dataset("mnsit")
