"""The README's recipe for a user's own photos, on real photographs.

Six classes of 100 photographs each (crops of scikit-image's sample
photos, `tests.tools.photos`), trained with the README's own kb-train
command at a smaller image size (64 instead of 96, to fit the suite's
time; the README gives the figures of both): it must reach 90%
validation accuracy.
"""

import json
import re
import shlex

from tests.tools._cli import REPO, run_tool
from tests.tools.photos import PHOTOS, write_photo_folder


def readme_recipe() -> list[str]:
    """The kb-train arguments of the README's own-photos recipe."""
    with open(f"{REPO}/README.md") as f:
        text = f.read()
    section = text.split("## Training on your own images", 1)[1]
    command = re.search(r"kb-train (?:[^\n]*\\\n)*[^\n]*", section).group(0)
    return shlex.split(command.replace("\\\n", " "))[1:]


def test_readme_recipe_is_the_tested_one():
    args = readme_recipe()
    assert args[0] == "--model=resnet18"
    assert "--dataset=folder:~/photos" in args
    assert "--image_size=96" in args


def test_readme_recipe_learns_real_photographs(tmp_path):
    names = write_photo_folder(str(tmp_path / "photos"))
    assert names == list(PHOTOS)
    args = [
        a
        for a in readme_recipe()
        if not a.startswith(("--dataset=", "--image_size=", "--out_dir="))
    ]
    out = tmp_path / "run"
    done = run_tool(
        "train",
        *args,
        f"--dataset=folder:{tmp_path / 'photos'}",
        "--image_size=64",
        "--export=keras",
        f"--out_dir={out}",
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert history[-1]["step"] == 450  # 480 images, batch 16, 15 epochs
    assert history[-1]["val_accuracy"] >= 0.90, history[-1]
