"""What in a model file would run code or reach outside the file.

Every check here reads the file as data; none imports, deserializes or
calls anything from it. `kerasblocks.io.load_model` runs them before it
builds anything and raises `UnsafeModelError` listing what it found,
unless `trusted=True`.
"""

from __future__ import annotations

import os
import posixpath
from typing import Any

import h5py
import keras

# Keras classes that load code or files by design.
_GADGET_CLASSES = {
    "Lambda",
    "__lambda__",
    "TFSMLayer",
    "TorchModuleWrapper",
    "JaxLayer",
    "FlaxLayer",
}
# Modules whose functions are plain math and may be named in a config.
_FUNCTION_MODULES = (
    "keras.activations",
    "keras.losses",
    "keras.metrics",
    "keras.ops",
    "keras.initializers",
    "keras.regularizers",
    "keras.constraints",
    "keras.src.activations",
    "keras.src.losses",
    "keras.src.metrics",
    "keras.src.ops",
)
# Config keys whose string value names a file to read.
_FILE_KEYS = {
    "vocabulary",
    "vocabulary_path",
    "filepath",
    "file_path",
    "path",
    "fname",
    "idf_weights",
    "merges",
}
# Config keys that size a weight; a huge value allocates on build.
_SIZE_KEYS = {
    "units",
    "filters",
    "input_dim",
    "output_dim",
    "key_dim",
    "value_dim",
    "num_heads",
    "max_tokens",
    "num_tokens",
    "depth_multiplier",
}
_MAX_SIZE = 1 << 26


def _keras_module(module: Any) -> bool:
    return isinstance(module, str) and (
        module == "keras" or module.startswith("keras.")
    )


def _is_path_like(value: str) -> bool:
    return (
        value.startswith(("/", "~", "file:", "\\\\"))
        or "../" in value
        or "..\\" in value
        or (len(value) > 2 and value[1] == ":" and value[2] in "/\\")
    )


# Packages whose classes a file may name by their registered name
# (`package>Class`); the package is then imported (installed code, not
# the file's) so that its classes are registered. A package joins by
# `register_trusted_package`, or, to be found before it is imported, by
# an entry point in this group (name: the package), as zoo declares in
# setup.cfg. A package nobody registered is never imported.
ENTRY_POINT_GROUP = "kerasblocks.trusted_packages"
_TRUSTED = {"kerasblocks"}


def register_trusted_package(name: str) -> None:
    """Lets model files name the registered classes of package `name`.

    Loading such a file imports the package first (so its classes are
    registered with Keras), which is why only packages the caller trusts
    may be registered. An installed package can declare itself instead,
    with an entry point in the `kerasblocks.trusted_packages` group.

    Args:
        name: a top-level package name, as in its classes' registered
            names (`"zoo"` for `"zoo>ResNet"`).

    Example:

    >>> import kerasblocks
    >>> kerasblocks.io.register_trusted_package("my_models")
    >>> "my_models" in kerasblocks.io.trusted_packages()
    True
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(
            f"A trusted package is a top-level package name. Received: {name!r}"
        )
    _TRUSTED.add(name)


def trusted_packages() -> frozenset[str]:
    """Packages registered, or declared by entry point, as trusted."""
    import importlib.metadata

    declared = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return frozenset(_TRUSTED | {entry.name for entry in declared})


def nested_values(value: Any):
    """`value` and everything inside it, depth first, through the dicts'
    values and the lists' items of a (JSON) nest."""
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from nested_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from nested_values(item)


def import_trusted_packages(config: Any) -> None:
    """Imports the trusted packages whose classes a config names, so that
    loading a file does not require the caller to import them first."""
    import importlib

    named = set()
    for value in nested_values(config):
        if isinstance(value, dict):
            registered = value.get("registered_name") or value.get("class_name")
            if isinstance(registered, str) and ">" in registered:
                named.add(registered.split(">", 1)[0])
    if named:
        for package in sorted(named & trusted_packages()):
            try:
                module = importlib.import_module(package)
            except ModuleNotFoundError as error:
                if error.name != package:
                    raise
                # Not installed: its classes stay unregistered (refused).
                continue
            # A package that loads its names on first use (kerasblocks
            # does) registers its classes then: use them.
            for name in getattr(module, "__all__", ()):
                getattr(module, name)


def caller_names(custom_objects: dict | None) -> frozenset[str]:
    """The class and function names a caller allowed by passing them."""
    names = set()
    for key, value in (custom_objects or {}).items():
        names.add(key)
        names.add(getattr(value, "__name__", key))
        names.add(keras.saving.get_registered_name(value))
    return frozenset(names)


def gate(
    where, config: Any, trusted: bool, found=(), custom_objects=None
) -> Any:
    """Refuses a config (with the file's other problems `found`) unless
    trusted; returns it ready for Keras (tied layers routed).

    A class or function is allowed because it is Keras's, this
    project's, registered (`keras.saving.register_keras_serializable`)
    under a trusted package (`register_trusted_package`), or named by
    the caller in `custom_objects`; never because the file names it.
    """
    from kerasblocks.io import _tied
    from kerasblocks.io.errors import UnsafeModelError

    import_trusted_packages(config)
    if not trusted:
        allowed = caller_names(custom_objects)
        problems = list(found) + config_problems(config, allowed=allowed)
        if problems:
            raise UnsafeModelError(where, problems)
    return _tied.mark(config)


# Names in Keras's function modules that are not math: they look up or
# build other objects from a name or config.
_NOT_MATH = {"get", "serialize", "deserialize"}
# Where Keras looks up a function the file calls "builtins" (by name).
_KERAS_FUNCTION_MODULES = (
    "activations",
    "constraints",
    "initializers",
    "losses",
    "metrics",
    "optimizers",
    "regularizers",
)


def _keras_function(name: Any) -> bool:
    """Whether `name` is a public Keras function a config may name as
    "builtins" (how Keras writes its activations and losses)."""
    if not isinstance(name, str) or name in _NOT_MATH or name.startswith("_"):
        return False
    return any(
        callable(getattr(getattr(keras, module), name, None))
        for module in _KERAS_FUNCTION_MODULES
    )


def _how_to_allow(name: str, package: str | None) -> str:
    """How a caller lets a class or function of their own load."""
    short = name.split(">")[-1]
    package = package or "my_package"
    return (
        f"if it is yours, register it with keras.saving."
        f"register_keras_serializable(package={package!r}) and call "
        f"kerasblocks.io.register_trusted_package({package!r}), or pass "
        f"custom_objects={{{short!r}: {short}}}"
    )


def _object_problem(config: dict, where: str, allowed) -> str | None:
    """What is wrong with the class or function a config names, if
    anything: it must be Keras's, or registered by a trusted package, or
    named by the caller, and never one that loads code or files."""
    class_name = config["class_name"]
    module = config.get("module")
    registered = config.get("registered_name")
    name = config.get("config") if class_name == "function" else class_name
    if (
        isinstance(name, str)
        and ">" in name
        and not (isinstance(registered, str) and ">" in registered)
    ):
        # Legacy HDF5 configs carry a class's registered name as its class
        # name, and Keras writes a registered loss or metric function as
        # a "builtins" function of its registered name (with
        # registered_name "function").
        registered = name
    if class_name in _GADGET_CLASSES:
        return f"a {class_name} layer at {where}"
    if class_name in allowed or (
        isinstance(registered, str) and registered in allowed
    ):
        return None
    if class_name == "function" and isinstance(name, str) and name in allowed:
        return None
    kind = "function" if class_name == "function" else "class"
    if (
        isinstance(registered, str)
        and registered in keras.saving.get_custom_objects()
    ):
        package = registered.split(">", 1)[0] if ">" in registered else None
        if package in trusted_packages():
            return None
        how = _how_to_allow(registered, package)
        return (
            f"{kind} {registered} at {where}, registered by package "
            f"{package!r}, which is not trusted ({how})"
        )
    if class_name == "function":
        if module in (None, "builtins"):
            # Keras resolves these by name among its own functions; any
            # other name (eval, exec, open, __import__, ...) is code.
            if _keras_function(name):
                return None
            return (
                f"function {module}.{name} at {where}, which is not a Keras "
                f"function ({_how_to_allow(str(name), None)})"
            )
        if (
            _keras_module(module)
            and module.startswith(_FUNCTION_MODULES)
            and name not in _NOT_MATH
        ):
            return None
        return f"function {module}.{name} at {where}"
    if isinstance(registered, str) and ">" in registered:
        package = registered.split(">", 1)[0]
        return (
            f"unregistered class {registered} at {where} (import the "
            f"package that registers it first; "
            f"{_how_to_allow(registered, package)})"
        )
    if isinstance(module, str) and not _keras_module(module):
        return (
            f"class {module}.{class_name} at {where}, which is not "
            f"registered ({_how_to_allow(class_name, None)})"
        )
    return None


def config_problems(
    config: Any, where: str = "config", allowed: frozenset = frozenset()
) -> list[str]:
    """Lists what in a (JSON) model config would run code or read files.

    Classes and functions named in `allowed` (by the caller) pass.
    """
    problems: list[str] = []
    if isinstance(config, list):
        for index, value in enumerate(config):
            problems += config_problems(value, f"{where}[{index}]", allowed)
        return problems
    if not isinstance(config, dict):
        return problems
    if isinstance(config.get("class_name"), str):
        problem = _object_problem(config, where, allowed)
        if problem:
            problems.append(problem)
    for key, value in config.items():
        here = f"{where}.{key}"
        if isinstance(value, str):
            if key in _FILE_KEYS and value:
                problems.append(f"a reference to file {value!r} at {here}")
            elif key == "function" and ">" in value and value not in allowed:
                # kerasblocks' Function layer names a registered function
                # by its registered name: the same rule as for classes.
                package = value.split(">", 1)[0]
                if package not in trusted_packages():
                    how = _how_to_allow(value, package)
                    problems.append(
                        f"function {value} at {here}, registered by package "
                        f"{package!r}, which is not trusted ({how})"
                    )
            elif key == "name" and ("/" in value or ".." in value):
                problems.append(f"a path in the name {value!r} at {here}")
            elif _is_path_like(value) and key not in ("module",):
                problems.append(f"a file path {value!r} at {here}")
        elif (
            key in _SIZE_KEYS
            and isinstance(value, int)
            and not isinstance(value, bool)
            and value > _MAX_SIZE
        ):
            problems.append(f"an oversized {key}={value} at {here}")
        else:
            problems += config_problems(value, here, allowed)
    return problems


def archive_member_problems(
    names: list[str], allowed: tuple[str, ...]
) -> list[str]:
    """Members of a zip archive that escape it or are not model data."""
    problems = []
    for name in names:
        normalized = posixpath.normpath(name)
        if (
            name.startswith(("/", "\\"))
            or normalized.startswith("..")
            or ":" in name.split("/")[0]
        ):
            problems.append(
                f"archive member {name!r} points outside the archive"
            )
        elif not (name in allowed or name.startswith("assets/")):
            problems.append(f"unexpected archive member {name!r}")
    return problems


def h5_problems(f: h5py.File, file_size: int) -> list[str]:
    """HDF5 objects that reach other files or declare more data than the
    file can hold (a shape bomb)."""
    problems: list[str] = []

    def visit(name: str, _obj: Any = None) -> None:
        link = f.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            problems.append(
                f"HDF5 external link (ExternalLink) {name} -> {link.filename}"
            )
            return
        if isinstance(link, h5py.SoftLink):
            problems.append(f"HDF5 soft link (SoftLink) {name} -> {link.path}")
            return
        obj = f.get(name)
        if isinstance(obj, h5py.Dataset):
            if obj.external:
                problems.append(
                    f"HDF5 dataset {name} stores data in other files"
                )
            if obj.is_virtual:
                problems.append(f"HDF5 virtual dataset {name} maps other files")
            declared = obj.size * obj.dtype.itemsize if obj.shape else 0
            if declared > file_size + (1 << 16):
                problems.append(
                    f"HDF5 dataset {name} declares {declared:,} bytes in a "
                    f"file of {file_size:,} bytes (shape {obj.shape})"
                )

    try:
        f.visit_links(visit)
    except AttributeError:  # h5py < 3.11: visit() skips links
        f.visit(visit)
    return problems


def saved_model_problems(directory: str) -> list[str]:
    """Ops in a SavedModel's callable functions that read or write files,
    call Python, or are not registered in this TensorFlow; and assets
    that point outside the directory. Reads saved_model.pb only."""
    from kerasblocks.io._saved_model_ops import callable_op_types

    problems = []
    try:
        ops, assets = callable_op_types(directory)
    except (OSError, ValueError) as error:
        return [f"unreadable saved_model.pb ({error})"]
    for op, function in sorted(ops.items()):
        problems.append(f"op {op} in function {function}")
    for asset in assets:
        if posixpath.normpath(asset).startswith("..") or os.path.isabs(asset):
            problems.append(f"asset {asset!r} points outside the directory")
    return problems
