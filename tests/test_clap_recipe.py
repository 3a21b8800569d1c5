"""The tiny CLAP recipe (recipes/SynthMUSIC/clap) runs and its export loads."""

import json
import os
import subprocess
import sys

import torch
from recipe_runs import TINY

from speechbrain_textsep.encoders.clap import CLAPQueryEncoder

RECIPE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "recipes",
    "SynthMUSIC",
    "clap",
)
# The data options of the shared tiny SynthMUSIC (conftest.data_folder), so
# that the recipe's preparation finds it already rendered.
DATA_KEYS = (
    "classes",
    "n_train_per_class",
    "n_valid_per_class",
    "n_test_per_class",
    "n_test_mixtures",
    "clip_seconds",
)


def read_epochs(path):
    """Epoch lines of train_log.txt as dicts of floats."""
    stats = []
    with open(path) as f:
        for line in f:
            if not line.startswith("epoch:"):
                continue
            fields = {}
            for part in line.replace(" - ", ", ").split(", "):
                key, value = part.rsplit(": ", 1)
                fields[key.strip()] = float(value)
            stats.append(fields)
    return stats


def test_tiny_clap_recipe(data_folder, tmp_path):
    output = tmp_path / "clap"
    args = [
        sys.executable,
        os.path.join(RECIPE, "train.py"),
        os.path.join(RECIPE, "hparams", "clap_tiny.yaml"),
        "--data_folder",
        data_folder,
        "--output_folder",
        str(output),
        "--number_of_epochs",
        "3",
        "--batch_size",
        "3",  # the tiny SynthMUSIC has 3 classes
        "--warmup_steps",
        "4",
        "--decay_steps",
        "24",
    ]
    for key in DATA_KEYS:
        args += [f"--{key}", str(TINY[key])]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(args, capture_output=True, text=True, env=env, cwd=RECIPE)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "Test retrieval through the exported CLAP folder" in log

    epochs = read_epochs(output / "train_log.txt")
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert epochs[-1]["train loss"] < epochs[0]["train loss"]
    for e in epochs:
        assert 0 <= e["valid a2t_top1"] <= 1 and 0 <= e["valid t2a_rprec"] <= 1

    summary = json.loads((output / "test_summary.json").read_text())
    assert summary["optimizer_steps"] == 24  # 3 epochs of 8 batches of 3 clips
    # The exported folder gives the metrics of the best checkpoint.
    for key in ("a2t_top1", "t2a_top1", "t2a_rprec"):
        assert (
            abs(summary["test_exported_encoder"][key] - summary["test_checkpoint"][key])
            < 1e-6
        )

    encoder = CLAPQueryEncoder(output / "model")
    text = encoder.encode_text(["The sound of flute", "The sound of tuba"])
    audio = encoder.encode_audio(torch.randn(2, 16000) * 0.1, sample_rate=16000)
    assert text.shape == (2, 512) and audio.shape == (2, 512)
    assert encoder.model_cfg["htsat"]["embed_dim"] == 16
