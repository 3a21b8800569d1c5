#!/usr/bin/env python3
"""Recipe: a tiny CLAPSep on SynthMUSIC, trainable on a CPU.

CLAPSep (Ma et al., 2024) conditioned on the tiny LAION-CLAP of
``recipes/SynthMUSIC/clap`` (a folder given by ``clap_folder``): 0 dB
mixtures of two SynthMUSIC instruments, captions "The sound of {label}" as
positive and negative queries, multimodal (text/audio) queries, validation
SDRi and SI-SDRi (plain SDR), test on the test clips and export of a model
folder for ``CLAPSepSeparator.from_hparams``.

To run it (train the tiny CLAP first, see ../clap/README.md)::

    python train.py hparams/clapsep_tiny.yaml --data_folder data/SynthMUSIC32k \\
        --clap_folder ../clap/results/clap_tiny/1234/model

Authors
 * speechbrain-textsep contributors
"""

import os
import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

from speechbrain_textsep.encoders.clap import CLAPWeightsUnavailableError
from speechbrain_textsep.training.families.clapsep import label_caption_manifest
from speechbrain_textsep.training.runner import run_experiment

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from synthmusic_prepare import prepare_from_hparams  # noqa: E402


def prepare(hparams):
    """Renders SynthMUSIC and writes the captioned manifests."""
    manifests = prepare_from_hparams(hparams, "data_sample_rate")
    for split in ("train", "valid", "test"):
        label_caption_manifest(
            os.path.join(hparams["data_folder"], f"{split}.csv"),
            hparams[f"{split}_csv"],
            hparams["caption_template"],
        )
    return manifests


if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file) as fin:
        try:
            hparams = load_hyperpyyaml(fin, overrides)
        except CLAPWeightsUnavailableError as e:
            raise SystemExit(
                f"{e}\nThe CLAP folder (clap_folder) is written by the tiny CLAP "
                "recipe: cd ../clap && python train.py hparams/clap_tiny.yaml "
                "--data_folder <SynthMUSIC folder>; then pass --clap_folder "
                "../clap/results/clap_tiny/1234/model"
            ) from e

    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    run_on_main(prepare, args=[hparams])
    run_experiment(hparams, run_opts)
