"""Keras's own applications test, with every constructor routed to the
zoo's twin.

`keras/src/applications/applications_test.py` from the installed keras
wheel runs in a subprocess with each keras.applications constructor it
uses replaced by the zoo twin (`_applications_suite_plugin.py`). Every
test that passes on plain Keras must pass routed.

Excluded: `test_application_base`, which downloads the ImageNet weights
and a test image from the network (our machines are offline; on plain
Keras it fails here for that reason, or is skipped for channels-first
on CPU).

Scope, for the suite's time budget: one architecture of each family
(`FAMILIES`) runs every other test in both data formats; the deeper and
wider siblings (`SIBLINGS`: the same classes and blocks with other rows
of their spec tables, up to EfficientNet-B7, ConvNeXt-XL and NASNet
Large) run the structural output-width test (`test_application_pooling`)
in channels-last. `python -m tests.zoo.test_keras_applications_suite
--all [--plain]` runs all 40 architectures, every test, both formats.

Counts on keras 3.15.1 (TensorFlow backend, CPU), measured by running
this selection on plain Keras (`--plain`): of the 175 tests, plain
Keras passes 163 (138 of the 150 family tests, and the 25 sibling
tests); the other 12 are Keras's own skips (ConvNeXt, DenseNet and
NASNet in channels-first). Routed, the same 163 pass and the same 12
are skipped; before the twins took keras.applications' arguments
(commit 5b373e3), 89 passed routed (64 of the 138 family tests).
"""

from __future__ import annotations

import collections
import os
import sys
import tempfile

from tests.keras_test_files import KERAS_SRC, run_keras_tests

SUITE = os.path.join(KERAS_SRC, "applications", "applications_test.py")
NETWORK = "test_application_base"
TESTS = (
    "test_application_classifier_activation",
    "test_application_notop_custom_input_shape",
    "test_application_notop_custom_input_tensor",
    "test_application_notop_variable_input_channels",
    "test_application_pooling",
)
FORMATS = ("channels_first", "channels_last")
FAMILIES = (
    "ConvNeXtTiny",
    "DenseNet121",
    "EfficientNetB0",
    "EfficientNetV2B0",
    "InceptionResNetV2",
    "InceptionV3",
    "MobileNet",
    "MobileNetV2",
    "MobileNetV3Large",
    "MobileNetV3Small",
    "NASNetMobile",
    "ResNet50",
    "ResNet50V2",
    "VGG16",
    "Xception",
)
SIBLINGS = (
    "ConvNeXtBase",
    "ConvNeXtLarge",
    "ConvNeXtSmall",
    "ConvNeXtXLarge",
    "DenseNet169",
    "DenseNet201",
    *(f"EfficientNetB{i}" for i in range(1, 8)),
    *(f"EfficientNetV2{k}" for k in ("B1", "B2", "B3", "L", "M", "S")),
    "NASNetLarge",
    "ResNet101",
    "ResNet101V2",
    "ResNet152",
    "ResNet152V2",
    "VGG19",
)


def selection() -> list[str]:
    """The test ids this module runs (see the module docstring)."""
    ids = [
        f"{test}_{name}_{data_format}"
        for test in TESTS
        for name in FAMILIES
        for data_format in FORMATS
    ]
    ids += [
        f"test_application_pooling_{name}_channels_last" for name in SIBLINGS
    ]
    return [f"ApplicationsTest::{i}" for i in ids]


def run_suite(route: bool, tests: list[str] | None = None) -> dict[str, dict]:
    """Runs `tests` (ids within the file; all but `NETWORK` when None);
    returns {test id: {"outcome", "message"}}."""
    targets = [SUITE] if tests is None else [f"{SUITE}::{t}" for t in tests]
    with tempfile.TemporaryDirectory() as home:
        return run_keras_tests(
            targets,
            plugins=("tests.zoo._applications_suite_plugin",),
            env={
                "ZOO_APPS_ROUTE": "1" if route else "0",
                "KB_SUITES_ROUTE": "0",  # the saving plugin only reports
                "KERAS_HOME": home,
            },
            args=("-k", f"not {NETWORK}"),
            timeout=3000,
        )


SELECTED = 175
PLAIN_PASSED = 163


def test_keras_applications_test_passes_on_the_twins():
    results = run_suite(route=True, tests=selection())
    assert len(results) == SELECTED == len(selection()), len(results)
    failed = {
        name: r["message"]
        for name, r in results.items()
        if r["outcome"] in ("failed", "error")
    }
    assert not failed, [f"{n}: {m}" for n, m in sorted(failed.items())]
    counts = collections.Counter(r["outcome"] for r in results.values())
    assert counts["passed"] == PLAIN_PASSED, counts


if __name__ == "__main__":
    everything = "--all" in sys.argv
    for route in (True, False) if "--plain" in sys.argv else (True,):
        outcomes = run_suite(route, None if everything else selection())
        print(
            "routed" if route else "plain",
            collections.Counter(r["outcome"] for r in outcomes.values()),
        )
        for name, entry in sorted(outcomes.items()):
            if entry["outcome"] in ("failed", "error"):
                print(f"{name}\t{entry['message']}")
