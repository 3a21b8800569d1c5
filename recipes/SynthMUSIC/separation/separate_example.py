#!/usr/bin/env python3
"""Separates one SynthMUSIC test mixture with an exported model and a text query.

Writes the mixture, the reference, the estimate and a spectrogram figure.

    python separate_example.py --model results/quickstart/model \
        --data_folder data/SynthMUSIC --out results/quickstart/example

Authors
 * speechbrain-textsep contributors
"""

import argparse
import csv
import os

from speechbrain.dataio.dataio import write_audio

from speechbrain_textsep.evaluation.metrics import sdr_improvement, si_sdr_improvement
from speechbrain_textsep.evaluation.mixtures import load_centre_segment, read_manifest
from speechbrain_textsep.inference import QuerySeparator
from speechbrain_textsep.visualization import plot_spectrograms


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model folder or hub id")
    parser.add_argument("--data_folder", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--index", type=int, default=0, help="row of test_mixtures.csv")
    parser.add_argument("--segment_samples", type=int, default=65535)
    args = parser.parse_args()

    separator = QuerySeparator.from_hparams(
        source=args.model, savedir=os.path.join(args.out, "pretrained")
    )
    sample_rate = separator.hparams.sample_rate
    clips = read_manifest(os.path.join(args.data_folder, "test.csv"))
    with open(os.path.join(args.data_folder, "test_mixtures.csv"), newline="") as f:
        row = list(csv.DictReader(f))[args.index]
    target, interferer = (
        load_centre_segment(clips[row[key]], args.segment_samples, sample_rate) / 2
        for key in ("source1", "source2")
    )
    mixture = target + interferer
    query = row["label1"]
    estimate = separator.separate_batch(mixture[None], query)[0].cpu()

    os.makedirs(args.out, exist_ok=True)
    signals = {
        "mixture": mixture,
        f"reference ({query})": target,
        f"estimate (query: '{query}')": estimate,
    }
    for name, wav in zip(("mixture", "reference", "estimate"), signals.values()):
        write_audio(os.path.join(args.out, f"{name}.wav"), wav, sample_rate)
    figure = plot_spectrograms(
        signals, sample_rate, os.path.join(args.out, "spectrograms.png")
    )
    sdri = sdr_improvement(estimate, target, mixture).item()
    si_sdri = si_sdr_improvement(estimate, target, mixture).item()
    print(
        f"Separated '{query}' from '{row['label1']} + {row['label2']}': "
        f"SDRi {sdri:.2f} dB, SI-SDRi {si_sdri:.2f} dB"
    )
    print(f"Wrote {args.out}/mixture.wav, estimate.wav, reference.wav and {figure}")


if __name__ == "__main__":
    main()
