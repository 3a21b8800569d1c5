#!/usr/bin/env python3
"""Recipe: weakly-supervised bi-modal separation on VGGSound (Mahmud et al., 2024).

Prepares VGGSound (as the separation recipe, once), trains on items of
N = 2 synthetic mixtures of ``n_sources`` classes (2, 3 or 4) with their
captions and prompts (the weak loss, or the semi-supervised objective with
``semisup.yaml``), validates on 2-source mixtures of the valid clips, tests
on 2-source mixtures of the test clips (VGGSound-2Mix, both sources
queried) and exports a model folder for ``WeakSupQuerySeparator`` /
``load_separator``.

To run it::

    python train.py hparams/weaksup.yaml --data_folder /data/VGGSound
    python train.py hparams/semisup.yaml --data_folder /data/VGGSound \\
        --n_sources 4 --experiment semisup_4src

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
from vggsound_prepare import prepare_vggsound  # noqa: E402

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
        prepare_vggsound,
        kwargs={
            "data_folder": hparams["data_folder"],
            "save_folder": hparams["prepared_folder"],
            "csv_file": hparams["csv_file"],
            "name_pattern": hparams["name_pattern"],
            "labels": hparams["vggsound_labels"],
            "valid_ratio": hparams["valid_ratio"],
            "n_test_mixtures": hparams["n_test_mixtures"],
            "test_targets": hparams["test_targets"],
            "seed": hparams["prep_seed"],
            "sample_rate": hparams["sample_rate"],
            "fps": hparams["fps"],
            "frame_size": hparams["frame_size"],
            "num_workers": hparams["prep_num_workers"],
            "skip_prep": hparams["skip_prep"],
        },
    )
    run_experiment(hparams, run_opts)
