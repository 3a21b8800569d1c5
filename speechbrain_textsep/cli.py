"""The ``textsep`` command.

``textsep separate IN... --model SRC --query TEXT --out DIR [--plot]``
separates the queried sound from each input file with a model folder or hub
repository loaded by :class:`~speechbrain_textsep.inference.QuerySeparator`.

Authors
 * speechbrain-textsep contributors
"""

import argparse
import os
import sys

import torch


def _separate(args):
    from speechbrain.dataio.dataio import write_audio

    from speechbrain_textsep.inference import QuerySeparator

    if not args.query.strip():
        raise SystemExit("textsep separate: the query is empty")
    missing = [path for path in args.inputs if not os.path.isfile(path)]
    if missing:
        raise SystemExit(f"textsep separate: input file(s) not found: {missing}")
    separator = QuerySeparator.from_hparams(
        source=args.model, savedir=args.savedir or os.path.join(args.out, "model")
    )
    sample_rate = separator.hparams.sample_rate
    os.makedirs(args.out, exist_ok=True)
    for path in args.inputs:
        mixture = separator.load_audio(path)
        estimate = separator.separate_batch(mixture[None], args.query)[0].cpu()
        stem = os.path.splitext(os.path.basename(path))[0]
        out_path = os.path.join(args.out, f"{stem}_{_slug(args.query)}.wav")
        # Clamped so that the PCM file cannot wrap around.
        write_audio(out_path, estimate.clamp(-1, 1), sample_rate)
        print(out_path)
        if args.plot:
            from speechbrain_textsep.visualization import plot_spectrograms

            figure = os.path.join(args.out, f"{stem}_{_slug(args.query)}.png")
            plot_spectrograms(
                {"input": mixture.cpu(), f"estimate ('{args.query}')": estimate},
                sample_rate,
                figure,
            )
            print(figure)


def _slug(text):
    """A file-name-safe version of a query."""
    return "".join(c if c.isalnum() else "_" for c in text.strip())[:40]


def build_parser():
    """The argument parser of ``textsep``."""
    parser = argparse.ArgumentParser(
        prog="textsep", description="Separate the sound you describe."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    separate = commands.add_parser("separate", help="separate a queried sound")
    separate.add_argument("inputs", nargs="+", help="audio files")
    separate.add_argument("--model", required=True, help="model folder or hub id")
    separate.add_argument("--query", required=True, help="text of the sound to keep")
    separate.add_argument("--out", required=True, help="output folder")
    separate.add_argument("--savedir", help="where the model files are collected")
    separate.add_argument("--plot", action="store_true", help="spectrogram figures")
    separate.set_defaults(run=_separate)
    return parser


def main(argv=None):
    """Entry point of the ``textsep`` console script."""
    args = build_parser().parse_args(argv)
    with torch.inference_mode():
        args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
