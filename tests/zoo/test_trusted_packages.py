"""zoo's classes load in a process that imported only kerasblocks.

kerasblocks never names zoo: zoo declares itself trusted by an entry
point in `setup.cfg` (`kerasblocks.trusted_packages`), which
`kerasblocks.io` reads from the installed metadata. The test stands in
for the installation with a dist-info that holds setup.cfg's entry.
"""

import configparser
import os
import pathlib
import textwrap
import zipfile

import pytest

import kerasblocks as kb
import zoo
from tests.tools._cli import run_python

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _installed_entry_points(site: pathlib.Path) -> None:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    group = "kerasblocks.trusted_packages"
    declared = parser["options.entry_points"][group].strip()
    assert declared == "zoo = zoo"
    dist = site / "kb_trust_test-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: kb-trust-test\nVersion: 0\n"
    )
    (dist / "entry_points.txt").write_text(f"[{group}]\n{declared}\n")


def test_zoo_file_loads_where_only_kerasblocks_was_imported(tmp_path):
    model = zoo.create_model("lenet", num_classes=3)
    kb.io.save_model(model, tmp_path / "lenet.keras")
    _installed_entry_points(tmp_path / "site")
    # A package nobody registered, which records being imported.
    (tmp_path / "site" / "rogue").mkdir()
    (tmp_path / "site" / "rogue" / "__init__.py").write_text(
        "import os\nopen(os.environ['ROGUE_MARK'], 'w').close()\n"
    )
    # The same archive, as plain Keras writes it, naming the rogue class.
    with zipfile.ZipFile(tmp_path / "lenet.keras") as source:
        members = {n: source.read(n) for n in source.namelist()}
    config = members["config.json"].decode()
    assert '"zoo>LeNet"' in config
    members["config.json"] = config.replace("zoo>", "rogue>").encode()
    with zipfile.ZipFile(tmp_path / "rogue.keras", "w") as target:
        for name in ("config.json", "metadata.json", "model.weights.h5"):
            target.writestr(name, members[name])
    script = textwrap.dedent(
        """
        import sys
        import kerasblocks as kb

        assert "zoo" not in sys.modules
        assert "zoo" in kb.io.trusted_packages()
        model = kb.io.load_model(sys.argv[1])
        print(type(model).__module__, model.count_params())
        try:
            kb.io.load_model(sys.argv[2])
        except kb.io.UnsafeModelError as error:
            print("refused:", "unregistered class rogue>LeNet" in str(error))
        """
    )
    done = run_python(
        "-c",
        script,
        str(tmp_path / "lenet.keras"),
        str(tmp_path / "rogue.keras"),
        timeout=300,
        cwd=str(ROOT),
        env={
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path / "site")]),
            "ROGUE_MARK": str(tmp_path / "rogue_imported"),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        },
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[-2] == f"zoo.lenet {model.count_params()}"
    assert lines[-1] == "refused: True"
    assert not (tmp_path / "rogue_imported").exists()


def test_registering_a_package_in_process():
    assert "kerasblocks" in kb.io.trusted_packages()
    kb.io.register_trusted_package("kb_trust_example")
    assert "kb_trust_example" in kb.io.trusted_packages()
    with pytest.raises(ValueError, match="top-level package name"):
        kb.io.register_trusted_package("not a package")
