#!/usr/bin/env python3
"""Template recipe: a text-queried CLIPSep on a folder of labelled clips.

Copy this folder for a new dataset (see ``recipes/README.md``). The data is
``data_folder/<label>/<clip>.wav``; ``template_prepare.py`` writes the
manifests, then the one experiment runner trains, tests and exports.

To run it::

    python train.py hparams/clipsep_text_tiny.yaml --data_folder MY_CLIPS
    python train.py hparams/clipsep_text_tiny.yaml --data_folder MY_CLIPS --debug

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
from template_prepare import prepare_from_hparams  # noqa: E402

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
