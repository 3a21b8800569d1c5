#!/usr/bin/env python3
"""Recipe: CLIPSep, CLIPSep-NIT, CLIPSep-Text and the baselines on MUSIC.

Prepares the MUSIC solo videos (audio and 1-fps frames, once), trains with
mix-and-separate (validation ``sdri_plain`` every epoch, best checkpoint kept),
evaluates the best checkpoint with the CLIPSep protocol (each test target
mixed with one interferer, BSS Eval v4 SDR/SIR/SAR, mean ± SEM and median)
and exports a model folder for ``QuerySeparator.from_hparams`` (not for
PIT, which takes no query).

To run it::

    python train.py hparams/clipsep.yaml --data_folder /data/MUSIC/solo
    python train.py hparams/labelsep.yaml --data_folder /data/MUSIC/solo --debug
    torchrun --nproc_per_node=4 train.py hparams/clipsep.yaml \\
        --data_folder /data/MUSIC/solo --batch_size 8 --precision bf16

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
from music_prepare import prepare_music  # noqa: E402

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
    run_on_main(
        prepare_music,
        kwargs={
            "data_folder": hparams["data_folder"],
            "save_folder": hparams["prepared_folder"],
            "classes": hparams["classes"],
            "split_file": hparams["split_file"],
            "valid_ratio": hparams["valid_ratio"],
            "test_ratio": hparams["test_ratio"],
            "n_test_mixtures": hparams["n_test_mixtures"],
            "seed": hparams["prep_seed"],
            "sample_rate": hparams["sample_rate"],
            "fps": hparams["fps"],
            "frame_size": hparams["frame_size"],
            "num_workers": hparams["prep_num_workers"],
            "skip_prep": hparams["skip_prep"],
        },
    )
    run_experiment(hparams, run_opts)
