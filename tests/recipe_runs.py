"""Running the SynthMUSIC recipe as a user would, on tiny data (test helpers)."""

import os
import subprocess
import sys

RECIPE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "recipes",
    "SynthMUSIC",
    "separation",
)
SMALL = os.path.join(RECIPE, "hparams", "clipsep_text_small.yaml")
CLASSES = ["flute", "tuba", "xylophone"]
TINY = {
    "classes": "[" + ", ".join(CLASSES) + "]",
    "n_train_per_class": 8,
    "n_valid_per_class": 2,
    "n_test_per_class": 2,
    "n_test_mixtures": 4,
    "clip_seconds": 2.0,
    "segment_samples": 16383,
    "levels": 5,
    "ngf": 8,
    "n_maps": 8,
    "batch_size": 8,
    "warmup_steps": 5,
    "decay_steps": 400,
    "lr": 0.003,
}


def run_recipe(data_folder, output_folder, hparams=SMALL, launcher=None, **overrides):
    """Runs train.py as a user would; returns its combined output."""
    options = {**TINY, **overrides}
    args = [hparams, "--data_folder", data_folder, "--output_folder", output_folder]
    for key, value in options.items():
        if isinstance(value, bool) and value and key in ("debug",):
            args.append(f"--{key}")
        else:
            args += [f"--{key}", str(value)]
    command = (launcher or [sys.executable]) + [os.path.join(RECIPE, "train.py")] + args
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=RECIPE
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


def read_log(output_folder):
    """Epoch lines of the training log as dicts of floats."""
    stats = []
    with open(os.path.join(output_folder, "train_log.txt")) as f:
        for line in f:
            if not line.startswith("epoch:"):
                continue
            fields = {}
            for part in line.replace(" - ", ", ").split(", "):
                key, value = part.rsplit(": ", 1) if ": " in part else (part, "")
                fields[key.strip()] = float(value)
            stats.append(fields)
    return stats
