#!/usr/bin/env python3
"""Recipe: CLIPSep, CLIPSep-Text and CLIPSep-NIT on SynthMUSIC.

Mix-and-separate training on rendered General MIDI instruments, validation
SDRi, evaluation on the fixed test mixtures (per-mixture CSV and summary
JSON) and export of a model folder for ``QuerySeparator.from_hparams``.

To run it::

    python train.py hparams/clipsep_text.yaml --data_folder data/SynthMUSIC
    torchrun --nproc_per_node=2 train.py hparams/clipsep_text_small.yaml \\
        --data_folder data/SynthMUSIC --distributed_backend gloo

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
    run_on_main(prepare_from_hparams, args=[hparams])
    run_experiment(hparams, run_opts)
