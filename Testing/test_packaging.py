"""spinecore as a normal package: a built wheel carries the bundled models (read from their one
home, ``Resources/Models``) and grades the sample from any folder, with no checkout."""
import os
import subprocess
import sys
import zipfile

from conftest import REPO, SAMPLE_T2

MODELS = ("localiser.pt", "grader.pt", "phantom_grader.pt")


def test_wheel_ships_the_models_and_grades_without_a_checkout(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "dist"), str(REPO)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("spinecore-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name in MODELS:
            shipped = archive.read(f"spinecore/bundled_models/{name}")
            assert shipped == (REPO / "Resources" / "Models" / name).read_bytes()
    target, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "SPINECORE_MODELS"}
    env["PYTHONPATH"] = str(target)  # the installed copy, not the checkout
    where = subprocess.run([sys.executable, "-c", "import spinecore.models as m; print(m.__file__, m.models_dir())"],
                           capture_output=True, text=True, cwd=elsewhere, env=env, timeout=120)
    assert where.stdout.split() == [str(target / "spinecore" / "models.py"),
                                    str(target / "spinecore" / "bundled_models")]
    graded = subprocess.run([sys.executable, "-m", "spinecore", "grade", str(SAMPLE_T2), "--out", "out", "--no-tta"],
                            capture_output=True, text=True, cwd=elsewhere, env=env, timeout=300)
    assert graded.returncode == 0 and graded.stderr == "", graded.stderr
    assert sorted(p.name for p in (elsewhere / "out").iterdir()) == ["gradings.csv", "gradings.json", "overview.png",
                                                                    "vertebrae.json"]
