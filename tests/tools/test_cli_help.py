"""Every kb-* console script answers --help (exit 0, its flags listed)
and refuses missing required flags with one line and exit 2."""

import ast
import configparser
import os
import subprocess

import pytest

from tests.tools._cli import REPO, run_python


def _console_scripts() -> dict[str, str]:
    """name -> 'module:function', as setup.cfg installs them."""
    parser = configparser.ConfigParser()
    parser.read(os.path.join(REPO, "setup.cfg"))
    lines = parser["options.entry_points"]["console_scripts"].splitlines()
    scripts = {}
    for line in filter(None, (x.strip() for x in lines)):
        name, _, target = line.partition("=")
        scripts[name.strip()] = target.strip()
    return scripts


SCRIPTS = _console_scripts()


def _defined_flags(module: str) -> list[str]:
    """The flag names a tool's module defines (read from its source, so
    the test does not share one absl flag registry between tools)."""
    path = os.path.join(REPO, *module.split(".")) + ".py"
    with open(path) as f:
        tree = ast.parse(f.read())
    names = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr.startswith("DEFINE_")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.append(node.args[0].value)
    return names


def _run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    """Runs console script `name` the way its installed wrapper does
    (argv[0] is the script's name), from this worktree's code."""
    module, _, function = SCRIPTS[name].partition(":")
    code = (
        f"import sys; sys.argv[0] = {name!r}; "
        f"from {module} import {function}; {function}()"
    )
    return run_python("-c", code, *args, timeout=120)


def test_every_tool_module_is_a_console_script():
    tools = {
        name[:-3]
        for name in os.listdir(os.path.join(REPO, "tools"))
        if name.endswith(".py") and not name.startswith("_")
    }
    # benchmarking.py is kb-benchmark's library, not a program.
    programs = tools - {"benchmarking"}
    installed = {t.partition(":")[0] for t in SCRIPTS.values()}
    assert {f"tools.{p}" for p in programs} == installed
    assert len(SCRIPTS) == 8  # kb-predict joined the seven


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_help_exits_0_and_lists_every_flag(name):
    done = _run_script(name, "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    module = SCRIPTS[name].partition(":")[0]
    flags = _defined_flags(module)
    assert flags, module
    for flag in flags:
        assert f"--{flag}:" in done.stdout or f"--[no]{flag}:" in done.stdout, (
            f"{name} --help does not list --{flag}"
        )
    # The help was answered before TensorFlow was imported: nothing it
    # prints on import reached the output.
    assert "tensorflow" not in done.stderr.lower()


# Each program that needs flags, run without them: the one line it gives.
REQUIRED = {
    "kb-prepare": "kb-prepare: error: --folder and --out_prefix are "
    "required, e.g. --folder=photos --out_prefix=shards/photos (see --help)",
    "kb-evaluate": "kb-evaluate: error: give exactly one of --run_dir and "
    "--model_path",
    "kb-export": "kb-export: error: give exactly one of --run_dir and "
    "--model_path",
    "kb-inspect": "kb-inspect: error: --model is required (or --list)",
}


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_missing_required_flags_is_one_line_and_exit_2(name):
    done = _run_script(name)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [REQUIRED[name]]
    assert done.stdout == ""


def test_prepare_names_the_one_missing_flag():
    done = _run_script("kb-prepare", "--folder=photos")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "kb-prepare: error: --out_prefix is required, e.g. --folder=photos "
        "--out_prefix=shards/photos (see --help)"
    ]


def test_unexpected_argument_is_one_line_and_exit_2():
    done = _run_script("kb-prepare", "--folder=a", "--out_prefix=b", "extra")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "kb-prepare: error: unexpected arguments: ['extra']"
    ]
