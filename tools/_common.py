"""What every kb-* program shares: help, quiet TensorFlow, honest errors.

A program defines its flags, then calls `run_app(main, name)`:
- `--help` lists the program's own flags (absl key flags) and exits 0,
  and flag values are checked, before TensorFlow is imported (it takes
  seconds);
- a bad flag value ends in one line and exit 2, as do the errors that
  are the user's (a missing or corrupt file, an unknown name,
  incompatible shapes, a data set too small); anything else is a bug or
  an outage: its traceback is shown and the exit code is 1;
- a full disk is one line naming the file and exit 28 (every write is
  atomic, so nothing half-written is left); an image a data pipeline
  refused mid-run under --strict_data is one line and exit 2;
- Ctrl-C is one line and exit 130;
- TensorFlow's INFO chatter is hidden unless `--verbosity` asks for it.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence

from absl import app, flags
from absl import logging as absl_logging

from kerasblocks import choices
from kerasblocks.training.errors import UserInputError, free_bytes

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXIT_USAGE = 2
EXIT_SIGINT = 130  # 128 + SIGINT, the shell's convention
EXIT_DISK_FULL = 28  # errno ENOSPC
FLAGS = flags.FLAGS
# The Python loggers whose INFO lines are chatter for a user.
_CHATTY = ("tensorflow", "keras", "kerasblocks", "absl", "h5py", "jax")


DATASET_HELP = (
    f"Data set: {', '.join(choices.DATASETS)}; or your own files: "
    f"{', '.join(form for form, _ in choices.SOURCES.values())}."
)
MAX_IMAGE_PIXELS_HELP = (
    "Images of a folder:, tfrecord: or tfds: source whose header declares "
    "more pixels (height x width) are skipped, named, before they are "
    "decoded (an error under --strict_data). Default 8192x8192: a 1.5 MB "
    "PNG of 40000x40000 would need 1.6 GB decoded."
)


def source_limits(name: str, recorded: int | None = None) -> dict:
    """The data options --max_image_pixels gives for --dataset=`name`: a
    source takes it (a run's `recorded` limit when the flag is not
    given); a built-in data set refuses it when given."""
    kind, colon, _ = name.partition(":")
    if colon and kind in choices.SOURCES:
        given = FLAGS["max_image_pixels"].present or recorded is None
        return {"max_pixels": FLAGS.max_image_pixels if given else recorded}
    if FLAGS["max_image_pixels"].present:
        raise UsageError(
            "--max_image_pixels applies to the folder:, tfrecord: and tfds: "
            f"sources, not --dataset={name}; drop --max_image_pixels."
        )
    return {}


class UsageError(Exception):
    """A flag the tool itself checks is wrong (raised before anything
    heavy is imported)."""


def fail(name: str, error: BaseException) -> int:
    """Prints `error` as one line and returns the usage exit code."""
    text = str(error).strip()
    message = text.splitlines()[0] if text else repr(error)
    print(f"{name}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _flags_parser(name: str):
    def parse(argv):
        try:
            return FLAGS(argv)
        except flags.Error as error:
            sys.exit(fail(name, error))
        except SystemExit as done:
            # absl's help flags (--help, --helpshort, --helpfull,
            # --helpxml) print and exit with status 1, the only exits
            # during parsing; help that was asked for is a success.
            if done.code == 1:
                sys.exit(0)
            raise

    return parse


def run_app(main: Callable, name: str, module_name: str) -> None:
    """Runs an absl `main` whose flags are defined in `module_name`: they
    are the key flags shown by `--help`, however the program is started
    (`python -m tools.X` or the `kb-*` console script)."""
    for flag in FLAGS.get_key_flags_for_module(module_name):
        FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    app.run(main, flags_parser=_flags_parser(name))


def verbose() -> bool:
    """Whether the user asked for INFO lines (`--verbosity=0` or more)."""
    return bool(FLAGS["verbosity"].present) and FLAGS.verbosity >= 0


def quiet_logging() -> None:
    """Hides INFO lines unless `--verbosity` asks for them."""
    if verbose():
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    absl_logging.set_verbosity(absl_logging.WARNING)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)


def _is_chatter(line: str) -> bool:
    return (
        line.startswith("I0000 ")
        or line.startswith("WARNING: All log messages before absl::")
        # No GPU on a CPU machine is not an error for a user.
        or "failed call to cuInit" in line
    )


def import_tensorflow():
    """Imports TensorFlow and finds its devices, keeping the C++ INFO
    lines it prints before its logging is set up off the screen (they
    ignore TF_CPP_MIN_LOG_LEVEL); anything else it prints is shown."""
    if verbose():
        import tensorflow as tf

        return tf
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+") as captured:
        sys.stderr.flush()
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured:
                if not _is_chatter(line):
                    sys.stderr.write(line)
    quiet_logging()
    return tf


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types that are the user's to fix."""
    from kerasblocks.data.dataset import DataError
    from kerasblocks.io.errors import (
        ConversionError,
        CorruptFileError,
        UnsafeModelError,
        WeightsMismatchError,
    )
    from kerasblocks.training.checkpoints import NoUsableCheckpointError

    return (
        UsageError,
        UserInputError,
        DataError,
        FileNotFoundError,
        CorruptFileError,
        ConversionError,
        UnsafeModelError,
        WeightsMismatchError,
        NoUsableCheckpointError,
    )


def run_main(
    name: str,
    body: Callable[[], int],
    check: Callable[[], None] | None = None,
    *,
    argv: Sequence[str] = (),
) -> int:
    """Refuses positional arguments (`argv` past the program name), runs
    `check` (flag checks, before TensorFlow is imported), then `body`
    with TensorFlow imported quietly. A user error ends in one line on
    stderr and exit 2, Ctrl-C in one line and exit 130; anything else
    keeps its traceback."""
    if len(argv) > 1:
        return fail(name, UsageError(f"unexpected arguments: {argv[1:]}"))
    quiet_logging()
    try:
        if check:
            check()
        import_tensorflow()
        return body()
    except (UsageError, UserInputError) as error:
        # Both before TensorFlow is imported (TrainConfig.validate is
        # plain Python); user_errors() below imports the library.
        return fail(name, error)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except Exception as error:
        # First: a converter's ConversionError may be a full disk.
        full = disk_full(error)
        if full is not None:
            print(f"{name}: error: {full}", file=sys.stderr)
            return EXIT_DISK_FULL
        if isinstance(error, user_errors()):
            return fail(name, error)
        # An image the pipeline refused under --strict_data, met mid-run:
        # tf.data raises it from deep inside a step.
        from kerasblocks.data._refusals import data_error

        refused = data_error(error)
        if refused is not None:
            return fail(name, refused)
        raise


def disk_full(error: BaseException) -> str | None:
    """The one line for `error` if it is a full disk (every tool's writes
    are atomic, so nothing half-written is left), else None."""
    from kerasblocks.training.errors import DiskFullError, disk_full_path

    path = disk_full_path(error)
    if path is None:
        return None
    if isinstance(error, DiskFullError):
        return str(error)
    path = os.path.abspath(path or ".")
    free = free_bytes(path)
    shown = "" if free is None else f", {free / 2**20:.1f} MB free there"
    return (
        f"disk full writing {path}{shown}; nothing half-written is left: "
        "free space and rerun the same command."
    )


def load_image_classification(name: str, data_dir=None, **options):
    """The data set `name` (as --dataset gives it), which must be image
    classification data (a `UsageError` otherwise)."""
    from kerasblocks.data import dataset as data_lib

    dataset = data_lib.load_dataset(name, data_dir, **options)
    if not dataset.is_image or dataset.task != "classification":
        raise UsageError(f"--dataset={name}: image classification data only")
    return dataset


def create_zoo_model(name: str, overrides: dict):
    """A zoo model from the user's --model and --model_overrides; a name
    or argument the model refuses is a `UsageError`."""
    import zoo

    try:
        zoo.get_model_entry(name)
    except ValueError as error:  # names the model and the close names
        raise UsageError(str(error)) from None
    from kerasblocks.training.models import refused_argument

    try:
        return zoo.create_model(name, **overrides)
    except ValueError as error:
        raise UsageError(f"--model={name} with {overrides}: {error}") from None
    except TypeError as error:
        if refused_argument(error, overrides) is None:
            raise
        raise UsageError(f"--model_overrides: {error}") from None


def check_dataset(name: str) -> None:
    """Refuses a --dataset that is neither a data set name nor a
    `KIND:WHERE` source form with a known KIND and a WHERE."""
    problem = choices.dataset_problem(name)
    if problem:
        raise UsageError(problem)


def define_deploy_flags(calibration_default: str) -> None:
    """Defines --quantize, --calibration, --calibration_examples and
    --min_agreement, the flags kb-train and kb-export share; the
    calibration data's default is the tool's own (`calibration_default`,
    a phrase). The tool adopts them as its own for --help
    (`flags.adopt_module_key_flags(_common)`)."""
    flags.DEFINE_enum(
        "quantize",
        "none",
        choices.QUANTIZE,
        "The LiteRT file's quantization; int8 is full-integer, calibrated.",
    )
    flags.DEFINE_string(
        "calibration",
        None,
        "int8 calibration data, any form --dataset takes (default: "
        f"{calibration_default}).",
    )
    flags.DEFINE_integer(
        "calibration_examples",
        256,
        "Examples to calibrate int8 on.",
        lower_bound=1,
    )
    flags.DEFINE_float(
        "min_agreement",
        0.98,
        "Least top-1 agreement of a quantized LiteRT file with the Keras "
        "model on the validation split; below it the file is not written "
        "(exit 2).",
        lower_bound=0.0,
        upper_bound=1.0,
    )


def check_deploy_flags(values) -> None:
    """--calibration (a --dataset form) applies to --quantize=int8."""
    if values.calibration:
        if values.quantize != "int8":
            raise UsageError(
                "--calibration applies to --quantize=int8; drop it or add "
                "--quantize=int8"
            )
        check_dataset(values.calibration)
