"""Files written by release 0.1 load and compute what they did (to
float32 rounding).

`tests/fixtures/saved_v0_1/` holds every conformance block (wrapped in a
one-block model) and a few zoo models as that release saved them, with
trained-like weights, and `expected.npz` their seeded inputs and outputs
(`tests/fixtures/write_saved_files.py` wrote them). A refactor that
renames a layer, a variable or a config key, or changes what a block
computes, fails here.
"""

import glob
import os

import keras
import numpy as np
import pytest

import kerasblocks as kb
import zoo  # noqa: F401  (trusted, and registers the zoo's classes)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "saved_v0_1")
EXPECTED = np.load(os.path.join(FIXTURES, "expected.npz"))
FILES = sorted(
    os.path.basename(p)
    for p in glob.glob(os.path.join(FIXTURES, "*"))
    if p.endswith((".keras", ".h5"))
)


def _arrays(stem, kind):
    found, j = [], 0
    while f"{stem}/{kind}{j}" in EXPECTED:
        found.append(EXPECTED[f"{stem}/{kind}{j}"])
        j += 1
    return found


def test_the_fixtures_are_all_there():
    assert len(FILES) >= 60
    assert "zoo_transformer_lm.keras" in FILES and "zoo_lenet.h5" in FILES


@pytest.mark.parametrize("filename", FILES)
def test_a_file_of_release_0_1_loads_and_computes_the_same(filename):
    stem = filename.rsplit(".", 1)[0]
    model = kb.io.load_model(os.path.join(FIXTURES, filename), compile=False)
    inputs = _arrays(stem, "in")
    outputs = keras.tree.flatten(
        model(inputs if len(inputs) > 1 else inputs[0], training=False)
    )
    expected = _arrays(stem, "out")
    assert len(outputs) == len(expected) >= 1
    for got, want in zip(outputs, expected, strict=True):
        got = np.asarray(keras.ops.convert_to_numpy(got))
        assert got.shape == want.shape and got.dtype == want.dtype
        # Bit for bit under the kernels that wrote them (oneDNN); the
        # suite runs Eigen's (tests/conftest.py), which round float32
        # sums in another order: 7e-6 relative at most, where a renamed
        # variable or a changed block is off by whole units.
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
