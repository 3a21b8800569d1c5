#!/usr/bin/env python3
"""Recipe: weakly-supervised bi-modal separation on AudioCaps (Mahmud et al., 2024).

Natural mixtures: every training item holds N = 2 AudioCaps clips (their
mean is the model input), each with its caption and ``n_prompts`` clauses
of the caption (the rule-based splitter of
``speechbrain_textsep.utils.caption_split``; missing prompts duplicated with
weight 1/copies). The test is AudioCaps-2Mix: every test clip mixed with
another test clip, each queried by its caption (verbatim). Validation uses
2-source mixtures of the valid clips the same way.

The valid and test clips are written once at the model's rate (16 kHz) in
``<data_folder>/weaksup_16k/``, with manifests whose ``label`` is the
caption (what the pair lists and the 2-source evaluation read).

To run it (the AudioCaps audio and the official CSVs are yours to get)::

    python train.py hparams/weaksup.yaml --audio_folder AUDIO \\
        --csv_folder audiocaps/dataset --data_folder data/AudioCaps

Authors
 * speechbrain-textsep contributors
"""

import csv
import os
import sys

import soundfile as sf
import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

from speechbrain_textsep.processing.audio_io import read_audio
from speechbrain_textsep.training.runner import run_experiment

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from audiocaps_prepare import prepare_audiocaps  # noqa: E402

FIELDS = ["ID", "audio", "label", "duration"]


def caption_label_manifest(src_csv, dst_csv, audio_folder, sample_rate):
    """Copies a split at ``sample_rate``; its manifest has the caption as label.

    Arguments
    ---------
    src_csv : str
        Manifest ``ID, audio, caption, duration`` (any sample rate).
    dst_csv : str
        Manifest to write (``ID, audio, label, duration``); kept if present.
    audio_folder : str
        Where the resampled wav files go.
    sample_rate : int
        Rate of the copies.
    """
    if os.path.isfile(dst_csv):
        return
    os.makedirs(audio_folder, exist_ok=True)
    with open(src_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows:
        wav, _ = read_audio(row["audio"], mono=True, sample_rate=sample_rate)
        path = os.path.join(audio_folder, f"{row['ID']}.wav")
        sf.write(path, wav.numpy(), sample_rate)
        duration = len(wav) / sample_rate
        out.append(
            {
                "ID": row["ID"],
                "audio": path,
                "label": row["caption"],
                "duration": f"{duration:.6f}",
            }
        )
    tmp = dst_csv + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(out)
    os.replace(tmp, dst_csv)


def prepare(hparams):
    """AudioCaps manifests, then the 16 kHz valid and test splits."""
    manifests = prepare_audiocaps(
        hparams["audio_folder"],
        hparams["csv_folder"],
        hparams["data_folder"],
        skip_prep=hparams["skip_prep"],
    )
    for split in ("valid", "test"):
        caption_label_manifest(
            manifests[split],
            hparams[f"{split}_csv"],
            os.path.join(hparams["eval_folder"], split),
            hparams["sample_rate"],
        )


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
    run_on_main(prepare, args=[hparams])
    run_experiment(hparams, run_opts)
