#!/usr/bin/env python3
"""Recipe: weakly-supervised bi-modal separation on SynthMUSIC, on a CPU.

Mahmud et al. (ICLR 2024) at a CPU size, with the tiny LAION-CLAP of
``recipes/SynthMUSIC/clap`` (``clap_folder``): training on N = 2 mixtures
of 3 instruments and their captions, validation on 2-source mixtures of the
valid clips, test on the 100 2-source test mixtures (both sources queried)
and export of a model folder for ``WeakSupQuerySeparator`` /
``load_separator``. The four arms of the comparison are four hparams files
(``weaksup_tiny``, ``mixsep_3src_tiny``, ``semisup_tiny``,
``supervised_tiny``), all run by the package's one experiment runner
(``model_kind: weaksup``).

To run it (train the tiny CLAP first, see README.md)::

    python train.py hparams/weaksup_tiny.yaml --data_folder data/SynthMUSIC \\
        --clap_folder results/weaksup_clap/model

Authors
 * speechbrain-textsep contributors
"""

import os
import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

from speechbrain_textsep.encoders.clap import CLAPWeightsUnavailableError
from speechbrain_textsep.training.runner import run_experiment

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from synthmusic_prepare import prepare_from_hparams  # noqa: E402

if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file) as fin:
        try:
            hparams = load_hyperpyyaml(fin, overrides)
        except CLAPWeightsUnavailableError as e:
            raise SystemExit(
                f"{e}\nThe CLAP folder (clap_folder) is written by the tiny CLAP "
                "recipe: see README.md (cd ../clap && python train.py "
                "hparams/clap_tiny.yaml ...), then pass --clap_folder <its model/>"
            ) from e

    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    run_on_main(prepare_from_hparams, args=[hparams])
    run_experiment(hparams, run_opts)
