"""The ImageNet files table (zoo._download_table) is keras.applications':
every hash and URL directory appears in the installed Keras's source,
and Keras's own constructors ask for the files the table names."""

import ast
import inspect
import warnings

import keras
import pytest

from zoo import _download_table
from zoo.pretrained import PRETRAINED


def _keras_strings(constructor) -> set[str]:
    """Every string constant in the source of the Keras module that
    defines `constructor` and of the keras.applications modules it
    imports (ResNet50V2's hashes are in resnet.py)."""
    module = inspect.getmodule(constructor)
    trees = [ast.parse(inspect.getsource(module))]
    for node in ast.walk(trees[0]):
        if isinstance(node, ast.ImportFrom) and node.module == (
            "keras.src.applications"
        ):
            for alias in node.names:
                imported = getattr(keras.src.applications, alias.name)
                trees.append(ast.parse(inspect.getsource(imported)))
    return {
        node.value
        for tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_every_twin_has_its_files_and_keras_hashes():
    applications = sorted(
        {cfg.keras_application for cfg in PRETRAINED.values()}
    )
    assert len(applications) == 40
    for application in applications:
        strings = _keras_strings(getattr(keras.applications, application))
        for top in (True, False):
            file = _download_table.imagenet_file(
                application, {"include_top": top}
            )
            if application in ("MobileNet", "MobileNetV2"):
                assert file.file_hash is None
                continue
            assert file.file_hash in strings, (application, top)
            if application.startswith("NASNet"):
                # Keras writes these names out; the cache's differs from
                # the URL's.
                assert file.fname in strings
                assert file.origin.rsplit("/", 1)[1] in strings
            directory = file.origin.rsplit("/", 1)[0] + "/"
            assert any(directory in s for s in strings), (application, top)


@pytest.mark.parametrize(
    "application, kwargs",
    [
        ("VGG16", dict(include_top=False, input_shape=(32, 32, 3))),
        ("EfficientNetV2B0", dict(include_top=False, input_shape=(32, 32, 3))),
        ("EfficientNetB0", dict(include_top=True)),
        (
            "MobileNet",
            dict(include_top=True, alpha=0.5, input_shape=(160,) * 2 + (3,)),
        ),
        (
            "MobileNet",
            dict(include_top=False, alpha=0.75, input_shape=(40, 40, 3)),
        ),
        (
            "MobileNetV2",
            dict(include_top=False, alpha=0.35, input_shape=(96, 96, 3)),
        ),
        ("MobileNetV3Large", dict(include_top=False, minimalistic=True)),
        ("MobileNetV3Small", dict(include_top=True, alpha=0.75)),
    ],
)
def test_the_file_is_the_one_keras_applications_asks_for(
    monkeypatch, application, kwargs
):
    """Keras's own constructor, its get_file replaced in this test only,
    names the file, URL and hash the table gives."""
    from keras.src.utils import file_utils

    asked = []

    class Asked(Exception):
        pass

    def get_file(fname, origin, **options):
        asked.append((fname, origin, options.get("file_hash")))
        raise Asked

    monkeypatch.setattr(file_utils, "get_file", get_file)
    constructor = getattr(keras.applications, application)
    with warnings.catch_warnings():
        # Keras warns when it picks the 224 file for another size.
        warnings.simplefilter("ignore")
        with pytest.raises(Asked):
            constructor(weights="imagenet", **kwargs)
    assert asked == [tuple(_download_table.imagenet_file(application, kwargs))]
