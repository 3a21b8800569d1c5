#!/usr/bin/env python3
"""Evaluates CLAPSep on the paper's benchmarks (see EVALUATION.md).

Mixture lists are the authors' (``metadata/evaluation`` of
Aisaka0v0/CLAPSep, not redistributed here). The model is either a bare
``clapsep.ckpt`` (our training or :func:`import_clapsep_checkpoint` of the
authors' checkpoint) with the CLAP it was trained with, or a model folder
loaded with ``load_separator`` (its ``clapsep`` and ``clap`` modules).

Examples
--------
python evaluate.py --benchmark esc50 --metadata-dir CLAPSep/metadata/evaluation \\
    --audio-dir data/ESC-50/audio --checkpoint imported/clapsep.ckpt \\
    --modalities text audio --out results/eval/esc50
python evaluate.py --benchmark audiocaps --metadata-dir ... --audio-dir \\
    data/audiocaps/test --model results/clapsep/model --out results/eval/audiocaps

Authors
 * speechbrain-textsep contributors
"""

import argparse
import json
import os
import sys

import torch

from speechbrain_textsep.evaluation.clapsep import (
    BENCHMARKS,
    MODALITIES,
    VALENCES,
    clap_embed_fns,
    clapsep_separate_fn,
    evaluate_clapsep_benchmark,
    results_table,
)


def parse_args(argv=None):
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmark", choices=sorted(BENCHMARKS), default=None)
    parser.add_argument(
        "--metadata-dir", help="the authors' metadata/evaluation folder"
    )
    parser.add_argument("--csv", help="a mixture list (instead of --benchmark)")
    parser.add_argument("--samples", help="a query-sample list (audio queries)")
    parser.add_argument("--audio-dir", required=True, help="target/noise clips")
    parser.add_argument("--query-audio-dir", help="query clips (default: --audio-dir)")
    parser.add_argument("--model", help="model folder (load_separator)")
    parser.add_argument("--checkpoint", help="clapsep.ckpt (trainable state dict)")
    parser.add_argument(
        "--clap-source",
        default="music_audioset_epoch_15_esc_90.14.pt",
        help="CLAP of --checkpoint (CLAPQueryEncoder source)",
    )
    parser.add_argument(
        "--model-config",
        help="JSON of CLAPSep keyword arguments for --checkpoint (e.g. the "
        "'config' of import_report.json); default: the paper's model",
    )
    parser.add_argument("--modalities", nargs="+", default=["text"], choices=MODALITIES)
    parser.add_argument(
        "--valences", nargs="+", default=list(VALENCES), choices=VALENCES
    )
    parser.add_argument("--shots", nargs="+", type=int, default=[1, 5, 10])
    parser.add_argument("--shot-seed", type=int, default=None)
    parser.add_argument("--max-items", type=int, default=None)
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument("--out", required=True, help="output folder")
    return parser.parse_args(argv)


def build_model(args):
    """``(clapsep, query_encoder)`` from --model or --checkpoint."""
    if bool(args.model) == bool(args.checkpoint):
        sys.exit("give exactly one of --model and --checkpoint")
    if args.model:
        from speechbrain_textsep.inference.interfaces import load_separator

        separator = load_separator(args.model, run_opts={"device": args.device})
        return separator.mods.clapsep, separator.mods.clap
    from speechbrain_textsep.encoders.clap import CLAPQueryEncoder
    from speechbrain_textsep.models.clapsep import CLAPSep

    config = {}
    if args.model_config:
        with open(args.model_config, encoding="utf-8") as f:
            config = json.load(f)
        config = config.get("config", config)
    clap = CLAPQueryEncoder(args.clap_source)
    model = CLAPSep(clap.audio_branch, **config)
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    model.load_trainable_state_dict(state)
    return model.to(args.device), clap.to(args.device)


def main(argv=None):
    """Runs the evaluation and prints the mean +- std of every condition.

    The table shows ``sdri_bss_v3`` (BSS Eval v3 SDR improvement, the paper's
    tables), ``si_sdri_nzm`` and ``sdri_plain`` (plain SDR improvement).
    """
    args = parse_args(argv)
    samples = args.samples
    if args.benchmark:
        if not args.metadata_dir:
            sys.exit(
                "--benchmark needs --metadata-dir (the authors' metadata/evaluation)"
            )
        csv_name, samples_name, _ = BENCHMARKS[args.benchmark]
        items = os.path.join(args.metadata_dir, csv_name)
        if samples is None and samples_name is not None:
            samples = os.path.join(args.metadata_dir, samples_name)
    elif args.csv:
        items = args.csv
    else:
        sys.exit("give --benchmark or --csv")
    if any(m != "text" for m in args.modalities) and samples is None:
        sys.exit(
            f"{args.benchmark or args.csv} has no query-sample list for audio queries"
        )

    model, clap = build_model(args)
    embed_text, embed_audio = clap_embed_fns(clap)
    results = evaluate_clapsep_benchmark(
        clapsep_separate_fn(model, clap.embedding_dim),
        embed_text,
        items,
        args.audio_dir,
        embed_audio=embed_audio,
        query_samples=samples,
        query_audio_dir=args.query_audio_dir,
        modalities=args.modalities,
        valences=args.valences,
        shots=args.shots,
        shot_seed=args.shot_seed,
        benchmark=args.benchmark or os.path.basename(args.csv),
        out_dir=args.out,
        max_items=args.max_items,
        progress=True,
    )
    print(results["sdr_definition"])
    print(results_table(results))
    return results


if __name__ == "__main__":
    main()
