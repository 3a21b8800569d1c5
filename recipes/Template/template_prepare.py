#!/usr/bin/env python3
"""Data preparation of the template recipe: a folder of labelled clips.

Copy this file as ``recipes/<YourDataset>/<yourdataset>_prepare.py`` and
change :func:`find_clips` to list your data. What the recipes need from a
prepare script (see ``recipes/README.md``) is only its output, in
``save_folder``:

- ``train.csv``, ``valid.csv``, ``test.csv``: one single-source clip a row,
  columns ``ID, audio, frames, n_frames, label, duration``
  (``frames``/``n_frames``: a folder of 1-fps frames ``000001.jpg`` ... for
  image queries, empty / 0 for text-only data);
- ``test_mixtures.csv``: fixed 2-source test mixtures, columns
  ``ID, source1, label1, source2, label2`` (clip IDs of ``test.csv``).

The input here is ``data_folder/<label>/<clip>.<wav|flac|ogg|mp3>``: the
folder name is the label (underscores become spaces in text queries). Clips
of each label are split train / valid / test deterministically by ``seed``.
A second run with the same options does nothing.

Usage::

    python recipes/Template/template_prepare.py --data_folder MY_CLIPS \\
        --save_folder data/MyData

Authors
 * speechbrain-textsep contributors
"""

import argparse
import json
import os

import numpy as np
import soundfile as sf

from speechbrain_textsep.data.synthmusic import (
    MANIFEST_FIELDS,
    MIXTURE_FIELDS,
    pair_test_mixtures,
    stable_int,
    write_csv,
)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
SPLITS = ("train", "valid", "test")


def find_clips(data_folder):
    """``{label: [audio path, ...]}`` of a folder of class sub-folders.

    This is the function to change for another layout (a metadata CSV, a
    list of files per class...).
    """
    clips = {}
    for label in sorted(os.listdir(data_folder)):
        folder = os.path.join(data_folder, label)
        if not os.path.isdir(folder):
            continue
        files = sorted(
            os.path.join(folder, name)
            for name in os.listdir(folder)
            if name.lower().endswith(AUDIO_EXTENSIONS)
        )
        if files:
            clips[label] = files
    if len(clips) < 2:
        raise ValueError(
            f"{data_folder} needs sub-folders of audio files for at least two "
            f"labels (found: {sorted(clips) or 'none'})"
        )
    return clips


def split_clips(files, valid_ratio, test_ratio, rng):
    """Shuffles one label's files and cuts them into train / valid / test."""
    order = rng.permutation(len(files))
    n_test = max(1, round(test_ratio * len(files)))
    n_valid = max(1, round(valid_ratio * len(files)))
    if n_test + n_valid >= len(files):
        raise ValueError(
            f"{os.path.dirname(files[0])}: {len(files)} clips cannot fill "
            "train, valid and test: add clips or lower the ratios"
        )
    test = [files[i] for i in order[:n_test]]
    valid = [files[i] for i in order[n_test : n_test + n_valid]]
    train = [files[i] for i in order[n_test + n_valid :]]
    return {"train": train, "valid": valid, "test": test}


def manifest_row(path, label):
    """One manifest row of a clip (no frames: text queries only)."""
    try:
        info = sf.info(path)
    except RuntimeError as e:
        raise ValueError(f"cannot read audio file {path}: {e}") from e
    clip_id = f"{label}_{os.path.splitext(os.path.basename(path))[0]}"
    return {
        "ID": clip_id,
        "audio": os.path.abspath(path),
        "frames": "",
        "n_frames": 0,
        "label": label,
        "duration": round(info.frames / info.samplerate, 4),
    }


def read_options(path):
    """The options of the previous run (None if there was none)."""
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def prepare_labelled_folder(
    data_folder,
    save_folder,
    valid_ratio=0.1,
    test_ratio=0.1,
    n_test_mixtures=100,
    seed=1234,
    skip_prep=False,
):
    """Writes the manifests of a folder of labelled clips.

    Arguments
    ---------
    data_folder : str
        ``<label>/<clip>.<ext>`` audio files.
    save_folder : str
        Where the manifests go.
    valid_ratio, test_ratio : float
        Share of each label's clips for validation and test (at least one).
    n_test_mixtures : int
        Number of fixed 2-source test mixtures.
    seed : int
        Seed of the splits and of the test mixtures.
    skip_prep : bool
        Do nothing.

    Returns
    -------
    dict
        ``{"train": path, "valid": path, "test": path, "test_mixtures": path}``.
    """
    names = SPLITS + ("test_mixtures",)
    manifests = {name: os.path.join(save_folder, f"{name}.csv") for name in names}
    options = {
        "data_folder": os.path.abspath(data_folder),
        "valid_ratio": valid_ratio,
        "test_ratio": test_ratio,
        "n_test_mixtures": n_test_mixtures,
        "seed": seed,
    }
    done = os.path.join(save_folder, "prepare_options.json")
    if skip_prep or (
        all(os.path.isfile(p) for p in manifests.values())
        and read_options(done) == options
    ):
        return manifests
    os.makedirs(save_folder, exist_ok=True)
    rows = {split: [] for split in SPLITS}
    test_ids = {}
    for label, files in find_clips(data_folder).items():
        rng = np.random.default_rng(stable_int("template-split", seed, label))
        for split, paths in split_clips(files, valid_ratio, test_ratio, rng).items():
            rows[split] += [manifest_row(path, label) for path in paths]
        test_ids[label] = [row["ID"] for row in rows["test"] if row["label"] == label]
    for split in SPLITS:
        write_csv(manifests[split], MANIFEST_FIELDS, rows[split])
    mixtures = pair_test_mixtures(test_ids, n_test_mixtures, seed)
    write_csv(manifests["test_mixtures"], MIXTURE_FIELDS, mixtures)
    with open(done, "w") as f:
        json.dump(options, f, indent=2)
    return manifests


def prepare_from_hparams(hparams):
    """The call of the recipe's ``train.py``, from its hyperparameters."""
    return prepare_labelled_folder(
        hparams["data_folder"],
        hparams["save_manifests_folder"],
        valid_ratio=hparams["valid_ratio"],
        test_ratio=hparams["test_ratio"],
        n_test_mixtures=hparams["n_test_mixtures"],
        seed=hparams["seed"],
        skip_prep=hparams["skip_prep"],
    )


def main(argv=None):
    """Command line: prepares a folder of labelled clips."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_folder", required=True)
    parser.add_argument("--save_folder", required=True)
    parser.add_argument("--valid_ratio", type=float, default=0.1)
    parser.add_argument("--test_ratio", type=float, default=0.1)
    parser.add_argument("--n_test_mixtures", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args(argv)
    manifests = prepare_labelled_folder(
        args.data_folder,
        args.save_folder,
        args.valid_ratio,
        args.test_ratio,
        args.n_test_mixtures,
        args.seed,
    )
    for name, path in manifests.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
