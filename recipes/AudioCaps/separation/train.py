#!/usr/bin/env python3
"""Recipe: CLAPSep on AudioCaps (Ma et al., 2024).

Every AudioCaps training clip is mixed at 0 dB with another clip of the
batch; its caption is the positive query and the other clip's the negative
one (25 % negative only, 25 % positive only, 50 % both), mixed with CLAP
audio embeddings of the clean clips (``a ~ U(0, 1)``). Validation SDRi and
SI-SDRi (plain SDR), test on AudioCaps test and export of a model folder for
``CLAPSepSeparator.from_hparams``.

To run it (the AudioCaps audio and the official CSVs are yours to get)::

    python train.py hparams/clapsep.yaml --audio_folder AUDIO \\
        --csv_folder audiocaps/dataset --data_folder data/AudioCaps
    python train.py hparams/clapsep.yaml ... --precision bf16 --device cuda:0
    torchrun --nproc_per_node=4 train.py hparams/clapsep.yaml ... --batch_size 8

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
from audiocaps_prepare import prepare_audiocaps  # noqa: E402

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
        prepare_audiocaps,
        kwargs={
            "audio_folder": hparams["audio_folder"],
            "csv_folder": hparams["csv_folder"],
            "save_folder": hparams["data_folder"],
            "skip_prep": hparams["skip_prep"],
        },
    )
    run_experiment(hparams, run_opts)
