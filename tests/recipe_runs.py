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
CLAP_RECIPE = os.path.join(os.path.dirname(RECIPE), "clap")
CLAPSEP_RECIPE = os.path.join(os.path.dirname(RECIPE), "clapsep")
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


#: The data options of TINY, for the CLAP and CLAPSep recipes (their
#: preparation then finds the shared tiny SynthMUSIC already rendered).
DATA_KEYS = (
    "classes",
    "n_train_per_class",
    "n_valid_per_class",
    "n_test_per_class",
    "n_test_mixtures",
    "clip_seconds",
)
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def run_script(script, args, cwd, launcher=None):
    """Runs a recipe script as a user would; returns its combined output."""
    result = subprocess.run(
        (launcher or [sys.executable]) + [script] + [str(a) for a in args],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=cwd,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


def options(**values):
    """``--key value`` arguments."""
    args = []
    for key, value in values.items():
        args += [f"--{key}", str(value)]
    return args


def run_clap_recipe(data_folder, output_folder, **overrides):
    """The tiny CLAP recipe on the tiny SynthMUSIC (batches of its 3 classes)."""
    values = {
        **{key: TINY[key] for key in DATA_KEYS},
        "batch_size": 3,
        "warmup_steps": 4,
        "decay_steps": 8 * overrides.get("number_of_epochs", 3),
        **overrides,
    }
    args = [
        os.path.join(CLAP_RECIPE, "hparams", "clap_tiny.yaml"),
        "--data_folder",
        data_folder,
        "--output_folder",
        output_folder,
    ] + options(**values)
    return run_script(os.path.join(CLAP_RECIPE, "train.py"), args, CLAP_RECIPE)


def run_recipe(data_folder, output_folder, hparams=SMALL, launcher=None, **overrides):
    """Runs train.py as a user would; returns its combined output."""
    values = {**TINY, **overrides}
    args = [hparams, "--data_folder", data_folder, "--output_folder", output_folder]
    for key, value in values.items():
        if isinstance(value, bool) and value and key in ("debug",):
            args.append(f"--{key}")
        else:
            args += [f"--{key}", str(value)]
    return run_script(os.path.join(RECIPE, "train.py"), args, RECIPE, launcher)


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
