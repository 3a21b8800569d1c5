#!/usr/bin/env python3
"""Recipe: a tiny LAION-CLAP trained from scratch on SynthMUSIC.

Contrastive training of laion_clap's CLAP (HTSAT + RoBERTa, built offline)
on the SynthMUSIC clips and the captions "The sound of {label}", retrieval
accuracy on the test clips, and export of a folder that
``speechbrain_textsep.encoders.clap.CLAPQueryEncoder`` loads.

To run it::

    python train.py hparams/clap_tiny.yaml --data_folder data/SynthMUSIC

Authors
 * speechbrain-textsep contributors
"""

import os
import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

from speechbrain_textsep.training.runner import run_experiment

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from synthmusic_prepare import prepare_from_hparams  # noqa: E402

if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file) as fin:
        hparams = load_hyperpyyaml(fin, overrides)

    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    run_on_main(prepare_from_hparams, args=[hparams, "data_sample_rate"])
    run_experiment(hparams, run_opts)
