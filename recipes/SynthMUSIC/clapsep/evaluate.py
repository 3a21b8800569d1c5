#!/usr/bin/env python3
"""Evaluates a SynthMUSIC CLAPSep with P, N and P+N text and audio queries.

The CLAPSep protocol (``speechbrain_textsep.evaluation.clapsep``) on the
SynthMUSIC test split: every test mixture of ``test_mixtures.csv`` is
evaluated in both directions (each of its two clips is the target once, the
other one the interferer), mixed at 0 dB over the whole clip; queries are
"The sound of {label}" (text) or the mean CLAP embedding of the first ``k``
training clips of the class (audio, 1/5/10 shots). Reports ``sdri_bss_v3``
(BSS Eval v3 SDR improvement, as the paper's tables), ``si_sdri_nzm`` and
``sdri_plain`` (plain SDR improvement), mean and std, per condition.

Example
-------
python evaluate.py --model results/clapsep_tiny/1234/model \\
    --data_folder ../../../data/SynthMUSIC32k --out results/clapsep_tiny/1234/eval

Authors
 * speechbrain-textsep contributors
"""

import argparse
import csv
import os
import sys

import torch

from speechbrain_textsep.evaluation.clapsep import (
    LABEL_TEMPLATE,
    MODALITIES,
    VALENCES,
    BenchmarkItem,
    clap_embed_fns,
    clapsep_separate_fn,
    evaluate_clapsep_benchmark,
    label_query,
    results_table,
    write_benchmark_csv,
)


def read_rows(path):
    """Rows of a CSV as dicts; a clear error when it is missing."""
    if not os.path.isfile(path):
        sys.exit(f"{path} not found: is --data_folder a prepared SynthMUSIC folder?")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def synthmusic_benchmark(data_folder, n_query_clips=10, template=LABEL_TEMPLATE):
    """Mixture list and query clips of the SynthMUSIC test split.

    Arguments
    ---------
    data_folder : str
        A folder prepared by ``../synthmusic_prepare.py``.
    n_query_clips : int
        Training clips listed per class for the audio queries.
    template : str
        Caption template ("The sound of {}").

    Returns
    -------
    items : list of BenchmarkItem
        Two per test mixture (each clip once the target); file names
        relative to ``data_folder``.
    query_samples : dict
        ``{caption: [file, ...]}``: the first ``n_query_clips`` training
        clips of every class (by ID).
    """
    test = {row["ID"]: row for row in read_rows(os.path.join(data_folder, "test.csv"))}

    def relative(path):
        return os.path.relpath(path, data_folder)

    items = []
    for row in read_rows(os.path.join(data_folder, "test_mixtures.csv")):
        first, second = test[row["source1"]], test[row["source2"]]
        for target, noise in ((first, second), (second, first)):
            items.append(
                BenchmarkItem(
                    relative(target["audio"]),
                    label_query(target["label"], template),
                    relative(noise["audio"]),
                    label_query(noise["label"], template),
                )
            )
    query_samples = {}
    train = sorted(
        read_rows(os.path.join(data_folder, "train.csv")), key=lambda r: r["ID"]
    )
    for row in train:
        files = query_samples.setdefault(label_query(row["label"], template), [])
        if len(files) < n_query_clips:
            files.append(relative(row["audio"]))
    return items, query_samples


def parse_args(argv=None):
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="exported model folder")
    parser.add_argument("--data_folder", required=True, help="SynthMUSIC folder")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--modalities", nargs="+", default=["text", "audio"], choices=MODALITIES
    )
    parser.add_argument("--valences", nargs="+", default=list(VALENCES))
    parser.add_argument("--shots", nargs="+", type=int, default=[1, 5, 10])
    parser.add_argument("--max-items", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    return parser.parse_args(argv)


def main(argv=None):
    """Runs the evaluation, writes ``summary.json`` and prints a table."""
    args = parse_args(argv)
    from speechbrain_textsep.inference.interfaces import load_separator

    items, samples = synthmusic_benchmark(args.data_folder, max(args.shots))
    os.makedirs(args.out, exist_ok=True)
    write_benchmark_csv(items, os.path.join(args.out, "synthmusic_eval.csv"))
    separator = load_separator(args.model, run_opts={"device": args.device})
    clap = separator.mods.clap
    embed_text, embed_audio = clap_embed_fns(clap)
    with torch.inference_mode():
        results = evaluate_clapsep_benchmark(
            clapsep_separate_fn(separator.mods.clapsep, clap.embedding_dim),
            embed_text,
            items,
            args.data_folder,
            embed_audio=embed_audio,
            query_samples=samples,
            modalities=args.modalities,
            valences=args.valences,
            shots=args.shots,
            clip_seconds=None,
            benchmark="synthmusic",
            out_dir=args.out,
            max_items=args.max_items,
            progress=True,
        )
    print(results["sdr_definition"])
    print(results_table(results))
    return results


if __name__ == "__main__":
    main()
