"""The registry's contract: names, wildcards, errors; kb-inspect."""

import re

import pytest

import zoo
from tests.tools._cli import run_tool
from zoo import _registry

BOOK = [
    "lenet",
    "lenet_bn",
    "alexnet",
    "vgg11",
    "nin",
    "googlenet",
    "resnet18",
    "resnet34",
    "resnext",
    "densenet",
    "regnetx32",
]


def test_every_book_cnn_is_registered():
    names = zoo.list_models()
    assert names == sorted(names)
    assert set(BOOK) <= set(names)


def test_wildcards():
    assert zoo.list_models("resnet1??") == ["resnet101", "resnet152"]
    assert zoo.list_models("nothing*") == []
    with pytest.raises(TypeError, match="pattern must be a string"):
        zoo.list_models(3)


def test_unknown_name_lists_the_closest():
    with pytest.raises(
        ValueError, match="Unknown model 'resnet17'. Did you mean: resnet18"
    ):
        zoo.create_model("resnet17")


def test_duplicate_name_is_refused():
    with pytest.raises(ValueError, match="'lenet' is already registered"):
        zoo.register_model(lambda **kw: None, name="lenet")


def test_unknown_argument_is_a_clear_error():
    with pytest.raises(
        ValueError, match="lenet: .*unexpected keyword argument 'widht'"
    ):
        zoo.create_model("lenet", widht=3)


@pytest.mark.parametrize(
    "name",
    [n for n in zoo.list_models() if zoo.get_model_entry(n).task == "image"],
)
def test_bad_image_arguments_are_named(name):
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        zoo.create_model(name, num_classes=0)
    with pytest.raises(ValueError, match="pooling must be one of"):
        zoo.create_model(name, include_top=False, pooling="sum")
    with pytest.raises(ValueError, match="input_shape must be"):
        zoo.create_model(name, input_shape=(32, 32))


def test_entries_describe_themselves():
    entry = zoo.get_model_entry("resnet18")
    assert entry.family == "resnet" and entry.task == "image"
    assert entry.summary
    assert isinstance(entry, _registry.ModelEntry)


def test_inspect_tool_prints_summary_table_and_shapes():
    done = run_tool("inspect", "--model=lenet", timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert 'Model: "lenet"' in out
    assert "total: 61,706 parameters in 10 variables" in out
    assert re.search(r"conv2 +Conv2D +\(None, 10, 10, 16\)", out)
    listed = run_tool("inspect", "--list", timeout=300)
    # Every registered model, one per line, in the registry's order.
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert names == zoo.list_models()
    bad = run_tool("inspect", "--model=lenot", timeout=300)
    assert bad.returncode == 2
    assert (
        bad.stderr.strip()
        .splitlines()[-1]
        .startswith("kb-inspect: error: Unknown model 'lenot'")
    )
