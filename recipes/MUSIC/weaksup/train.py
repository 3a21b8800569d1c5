#!/usr/bin/env python3
"""Recipe: weakly-supervised bi-modal separation on MUSIC (Mahmud et al., 2024).

Prepares the MUSIC solo videos (as the separation recipe, once), trains on
items of N = 2 synthetic mixtures of ``n_sources`` instruments (2, 3 or 4)
with their captions and prompts (the weak loss, or the semi-supervised
objective with ``semisup.yaml``), validates on 2-source mixtures of the
valid clips, tests on the 2-source test mixtures (both sources queried)
and exports a model folder for ``WeakSupQuerySeparator`` /
``load_separator``.

To run it::

    python train.py hparams/weaksup.yaml --data_folder /data/MUSIC/solo
    python train.py hparams/weaksup.yaml --data_folder /data/MUSIC/solo \\
        --n_sources 3 --experiment weaksup_3src
    python train.py hparams/semisup.yaml --data_folder /data/MUSIC/solo

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
