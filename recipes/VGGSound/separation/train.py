#!/usr/bin/env python3
"""Recipe: CLIPSep, CLIPSep-NIT, CLIPSep-Text and the baselines on VGGSound.

Prepares the VGGSound clips (audio and 1-fps frames, once), trains with
mix-and-separate (validation ``sdri_plain`` every epoch, best checkpoint kept),
evaluates the best checkpoint with the CLIPSep protocol on
"VGGSound-Clean+" (test targets, by default every test clip or the IDs of
``test_targets``, each mixed with a non-music test clip) and, when
``music_test_csv`` is given, "MUSIC+" (MUSIC test clips with the same
interferers), and exports a model folder for ``QuerySeparator.from_hparams``
(not for PIT, which takes no query).

To run it::

    python train.py hparams/clipsep.yaml --data_folder /data/VGGSound
    python train.py hparams/clipsep_nit.yaml --data_folder /data/VGGSound \\
        --music_test_csv data/MUSIC/test.csv --test_targets clean_ids.txt
    torchrun --nproc_per_node=4 train.py hparams/clipsep_nit.yaml \\
        --data_folder /data/VGGSound --batch_size 8 --precision bf16

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
