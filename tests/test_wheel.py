"""The package works installed from its wheel, away from the repository.

The wheel is built from this checkout, installed with ``pip --target`` into
a temporary folder (its dependencies are the test environment's), and the
``textsep`` commands run from a folder that is not the checkout: nothing may
be read from the repository (templates are package data).
"""

import os
import shutil
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Top-level folders of the checkout the wheel is not built from.
NOT_SOURCES = (".venv", ".git", "build", "data", "results")


def not_sources(directory, names):
    """``shutil.copytree`` ignore: environments, outputs, build leftovers."""
    top = os.path.samefile(directory, ROOT)
    return [
        name
        for name in names
        if (top and name in NOT_SOURCES)
        or name in ("__pycache__", "results")
        or name.endswith(".egg-info")
    ]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(environment, console script) of the wheel installed in a temp folder."""
    folder = tmp_path_factory.mktemp("wheel")
    # A copy of the sources: setuptools would reuse (and ship) a stale
    # build/ folder of the checkout.
    source = folder / "source"
    shutil.copytree(ROOT, source, ignore=not_sources)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    build = subprocess.run(
        pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", folder, source],
        capture_output=True,
        text=True,
        cwd=folder,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = [f for f in os.listdir(folder) if f.endswith(".whl")]
    site = folder / "site"
    install = subprocess.run(
        pip + ["install", "--no-deps", "--target", site, folder / wheel],
        capture_output=True,
        text=True,
        cwd=folder,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    return env, str(site / "bin" / "textsep"), folder


def run(installed, *args):
    env, script, folder = installed
    result = subprocess.run(
        [script, *map(str, args)], capture_output=True, text=True, env=env, cwd=folder
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_installed_package_is_the_wheel(installed):
    env, _, folder = installed
    where = subprocess.run(
        [sys.executable, "-c", "import speechbrain_textsep as p; print(p.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=folder,
    ).stdout.strip()
    assert where.startswith(str(folder / "site")), where
    templates = os.listdir(os.path.join(os.path.dirname(where), "templates"))
    assert {"clipsep.yaml", "clapsep.yaml", "labelsep.yaml", "bertsep.yaml"} <= set(
        templates
    )


def test_export_and_separate_from_the_wheel(installed, trained, tmp_path):
    import soundfile as sf

    model = tmp_path / "model"
    run(installed, "export", trained, "--out", model)
    assert (model / "hyperparams.yaml").is_file() and (model / "README.md").is_file()
    song = tmp_path / "song.wav"
    sf.write(song, 0.1 * torch.randn(24000).numpy(), 16000)
    run(
        installed,
        "separate",
        song,
        "--model",
        model,
        "--query",
        "tuba",
        "--out",
        tmp_path / "sep",
    )
    assert os.listdir(tmp_path / "sep") == ["song_tuba.wav"]


def test_import_clipsep_and_clapsep_from_the_wheel(installed, tmp_path):
    from test_import_clapsep import write_authors_checkpoint
    from test_import_clipsep import small_checkpoint

    checkpoint, train_args = small_checkpoint(
        tmp_path / "clipsep", nit=True, query_dim=512, image_model="clipsepnit"
    )
    out = tmp_path / "clipsep_model"
    run(
        installed,
        "import",
        "clipsep",
        "--checkpoint",
        checkpoint,
        "--train-args",
        train_args,
        "--out",
        out,
    )
    hparams = (out / "hyperparams.yaml").read_text()
    assert "interface: QuerySeparator" in hparams

    encoder, _, _, path = write_authors_checkpoint(tmp_path / "clapsep")
    clap = tmp_path / "clap"
    encoder.save_pretrained_dir(str(clap))
    out = tmp_path / "clapsep_model"
    run(
        installed,
        "import",
        "clapsep",
        "--checkpoint",
        path,
        "--clap-source",
        clap,
        "--out",
        out,
    )
    song = tmp_path / "song.wav"
    import soundfile as sf

    sf.write(song, 0.1 * torch.randn(32000).numpy(), 32000)
    run(
        installed,
        "separate",
        song,
        "--model",
        out,
        "--query",
        "a dog",
        "--out",
        tmp_path / "sep",
    )
    assert os.listdir(tmp_path / "sep") == ["song_a_dog.wav"]
    with open(out / "hyperparams.yaml") as f:
        assert "interface: CLAPSepSeparator" in f.read()
