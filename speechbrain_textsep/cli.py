"""The ``textsep`` command: separate, evaluate, export, import, demo.

``textsep separate IN... --model SRC --query TEXT [--negative TEXT]
[--image IMG ...] [--audio-query WAV ...] --out DIR [--plot] [--residual]``
separates the queried sounds from audio files or folders of them, streaming
(memory does not grow with the length; ``--residual`` also writes each input
with the sound removed);
``textsep evaluate --model SRC --mixtures CSV --clips CSV --out DIR`` scores
a model on a list of 2-source mixtures; ``textsep export RUN --out DIR``
turns a recipe's output folder (any model family) into a model folder with
a model card;
``textsep import clipsep --checkpoint best_model.pt --train-args
train-args.json --out DIR`` and ``textsep import clapsep --checkpoint
epoch=149-step=....ckpt --out DIR`` convert checkpoints of the authors' code;
``textsep demo --model SRC`` serves a web page to try a model
(:mod:`speechbrain_textsep.demo`).

Inputs are checked before anything is loaded or written: a bad input stops
the command with a message naming it, and no output file is left half
written.

Authors
 * speechbrain-textsep contributors
"""

import argparse
import contextlib
import json
import os
import signal
import sys
import threading

import torch


class CommandError(Exception):
    """A problem with the user's input, reported without a traceback."""


def collect_inputs(inputs):
    """Audio files of the inputs (files, or folders searched recursively).

    Returns
    -------
    paths : list of str
    names : list of str
        Output names: the stem of a file, the relative path (without
        extension) of a file found in a folder.
    """
    from speechbrain_textsep.inference.audio import AUDIO_EXTENSIONS

    paths, names = [], []
    for item in inputs:
        if os.path.isdir(item):
            found = []
            for root, _, files in os.walk(item):
                found += [
                    os.path.join(root, f)
                    for f in files
                    if f.lower().endswith(AUDIO_EXTENSIONS)
                ]
            if not found:
                raise CommandError(
                    f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) in {item}"
                )
            for path in sorted(found):
                paths.append(path)
                names.append(os.path.splitext(os.path.relpath(path, item))[0])
        else:
            paths.append(item)
            names.append(os.path.splitext(os.path.basename(item))[0])
    return paths, names


def _check_image(path):
    from PIL import Image

    if not os.path.isfile(path):
        raise CommandError(f"image file not found: {path}")
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as e:
        raise CommandError(f"{path} is not a readable image: {e}") from e


def build_queries(args):
    """The queries of ``textsep separate``: one per --query, one for the
    images, one for the example recordings."""
    from speechbrain_textsep.inference.queries import Query

    common = {
        "negative_text": args.negative,
        "negative_audio": args.negative_audio or [],
    }
    queries = []
    try:
        for text in args.query or []:
            queries.append(
                Query(text=text, prompt_ensemble=not args.no_prompt_ensemble, **common)
            )
        if args.image:
            queries.append(Query(images=args.image, **common))
        if args.audio_query:
            queries.append(Query(audio=args.audio_query, **common))
    except ValueError as e:
        raise CommandError(f"bad query: {e}") from e
    if not queries:
        raise CommandError("give at least one --query, --image or --audio-query")
    return queries


def _separate(args):
    from speechbrain_textsep.inference.audio import audio_info

    queries = build_queries(args)
    for path in args.image or []:
        _check_image(path)
    problems = []
    for path in [*(args.audio_query or []), *(args.negative_audio or [])]:
        try:
            audio_info(path)
        except (OSError, ValueError) as e:
            problems.append(f"audio query: {e}")
    paths, names = collect_inputs(args.inputs)
    for path in paths:
        try:
            audio_info(path)
        except (OSError, ValueError) as e:
            problems.append(str(e))
    if problems:
        raise CommandError(
            "nothing was separated; fix these inputs first:\n  " + "\n  ".join(problems)
        )
    separator = _load(args)
    try:
        queries = [separator.check_query(query) for query in queries]
    except (ValueError, OSError) as e:
        raise CommandError(str(e)) from e
    try:
        with _sigterm_as_exit():
            results = separator.separate_files(
                paths,
                queries,
                out_dir=args.out,
                names=names,
                channels=args.channels,
                resample_back=not args.model_rate,
                audio_format=args.format,
                plot=args.plot,
                skip_errors=True,
                residual=args.residual,
            )
    except KeyboardInterrupt:
        raise CommandError(
            "interrupted: the file being separated was not written (no partial "
            "output is left); files finished before it are complete"
        ) from None
    failed = [r for r in results if r.error]
    for result in results:
        written = result.outputs + result.residual_outputs
        for path in written + ([result.figure] if result.figure else []):
            print(path)
    if failed:
        details = "\n  ".join(f"{r.input}: {r.error}" for r in failed)
        raise CommandError(
            f"{len(failed)} of {len(results)} inputs failed (no output written "
            f"for them):\n  {details}"
        )


@contextlib.contextmanager
def _sigterm_as_exit():
    """A SIGTERM (``kill``) raises SystemExit, so that the outputs being
    written are removed as for Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _load(args):
    from speechbrain_textsep.inference import load_separator
    from speechbrain_textsep.inference.loading import (
        ModelNotAvailableError,
        UntrustedModelError,
    )

    run_opts = {"device": args.device} if args.device else None
    try:
        return load_separator(
            args.model,
            savedir=args.savedir,
            trust_remote_code=args.trust_remote_code,
            run_opts=run_opts,
        )
    except (ModelNotAvailableError, UntrustedModelError) as e:
        raise CommandError(str(e)) from e


def _evaluate(args):
    from speechbrain_textsep.evaluation.mixtures import evaluate_mixture_list
    from speechbrain_textsep.evaluation.report import (
        RESULTS_FILE,
        SUMMARY_FILE,
        write_summary,
    )

    for path in (args.mixtures, args.clips):
        if not os.path.isfile(path):
            raise CommandError(f"list not found: {path}")
    separator = _load(args)

    def separate(mixture, labels):
        return separator.separate_batch(mixture, [labels])

    stats = evaluate_mixture_list(
        separate,
        args.mixtures,
        args.clips,
        args.out,
        segment_samples=args.segment_samples,
        sample_rate=separator.hparams.sample_rate,
        max_mixtures=args.max_mixtures,
        query_kind="text",
    )
    # The model folder's family (older folders did not record it)
    kind = getattr(separator.hparams, "model_kind", None)
    test_set = os.path.splitext(os.path.basename(args.mixtures))[0]
    write_summary(
        os.path.join(args.out, SUMMARY_FILE), kind, None, {test_set: {"text": stats}}
    )
    print(json.dumps({k: round(v["mean"], 3) for k, v in stats.items()}))
    print(os.path.join(args.out, RESULTS_FILE))
    print(os.path.join(args.out, SUMMARY_FILE))


def _export(args):
    from speechbrain_textsep.inference.model_folder import load_model_folder
    from speechbrain_textsep.inference.run_export import export_recipe_run

    try:
        card = export_recipe_run(args.run_folder, args.out, args.template)
        load_model_folder(args.out)  # it must load before we say it is done
    except (OSError, ValueError) as e:
        raise CommandError(str(e)) from e
    print(args.out)
    print(card)


def _import(args):
    from speechbrain_textsep.convert import (
        CheckpointImportError,
        import_clapsep_checkpoint,
        import_clipsep_checkpoint,
    )

    if args.system == "clipsep" and not args.train_args:
        raise CommandError("a CLIPSep checkpoint needs its --train-args")
    for path in (args.checkpoint, args.train_args):
        if path and not os.path.isfile(path):
            raise CommandError(f"file not found: {path}")
    try:
        if args.system == "clipsep":
            out = import_clipsep_checkpoint(args.checkpoint, args.train_args, args.out)
        else:
            import_clapsep_checkpoint(
                args.checkpoint,
                args.out,
                clap_source=args.clap_source,
                trust_checkpoint=args.trust_checkpoint,
            )
            out = args.out
    except (CheckpointImportError, OSError, ValueError) as e:
        raise CommandError(str(e)) from e
    print(out)


def _model_options(sub):
    """The options of the commands that load a model folder."""
    sub.add_argument("--model", required=True, help="model folder or hub id")
    sub.add_argument("--savedir", help="where fetched model files are collected")
    sub.add_argument("--device", help="e.g. cpu, cuda:0 (default: cpu)")
    sub.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="load a model folder that builds objects outside the allow-list "
        "(speechbrain_textsep.inference.allowlist) or names files outside "
        "itself: this runs the folder's code; only for folders you trust",
    )


def _add_separate(commands):
    separate = commands.add_parser("separate", help="separate queried sounds")
    separate.add_argument("inputs", nargs="+", help="audio files or folders")
    _model_options(separate)
    separate.add_argument(
        "--query", action="append", help="text of a sound to keep (repeatable)"
    )
    separate.add_argument("--negative", help="text of a sound to suppress")
    separate.add_argument(
        "--image", nargs="+", help="image(s) of the sound's source (averaged)"
    )
    separate.add_argument(
        "--audio-query", nargs="+", help="example recording(s) of the sound"
    )
    separate.add_argument(
        "--negative-audio", nargs="+", help="example recording(s) to suppress"
    )
    separate.add_argument("--out", required=True, help="output folder")
    separate.add_argument(
        "--channels",
        choices=["mix", "separate"],
        default="mix",
        help="mix: downmix to mono; separate: each channel on its own",
    )
    separate.add_argument(
        "--model-rate",
        action="store_true",
        help="write at the model's rate (default: the input's rate and length)",
    )
    separate.add_argument(
        "--format", default="wav", choices=["wav", "flac", "ogg", "mp3"]
    )
    separate.add_argument(
        "--no-prompt-ensemble", action="store_true", help="embed texts verbatim"
    )
    separate.add_argument("--plot", action="store_true", help="spectrogram figures")
    separate.add_argument(
        "--residual",
        action="store_true",
        help="also write <name>_without_<query>: the input with the sound removed",
    )
    separate.set_defaults(run=_separate)


def _add_evaluate(commands):
    evaluate = commands.add_parser(
        "evaluate", help="score a model on a list of 2-source mixtures"
    )
    _model_options(evaluate)
    evaluate.add_argument(
        "--mixtures", required=True, help="CSV: ID,source1,label1,source2,label2"
    )
    evaluate.add_argument(
        "--clips", required=True, help="clip manifest: ID,audio,...,duration"
    )
    evaluate.add_argument("--out", required=True, help="output folder")
    evaluate.add_argument("--segment-samples", type=int, default=65535)
    evaluate.add_argument("--max-mixtures", type=int)
    evaluate.set_defaults(run=_evaluate)


def _add_export(commands):
    export = commands.add_parser(
        "export",
        help="a recipe output folder (any model family) -> a model folder with a card",
    )
    export.add_argument(
        "run_folder",
        metavar="RUN",
        help="recipe output folder (hyperparams.yaml, save/)",
    )
    export.add_argument("--out", required=True, help="model folder to write")
    export.add_argument("--template", help="inference hparams template")
    export.set_defaults(run=_export)


def _add_import(commands):
    importer = commands.add_parser(
        "import", help="a checkpoint of the authors' code -> a model folder"
    )
    importer.add_argument(
        "system", choices=["clipsep", "clapsep"], help="whose checkpoint"
    )
    importer.add_argument(
        "--checkpoint", required=True, help="best_model.pt (CLIPSep or CLIPSep-NIT)"
    )
    importer.add_argument("--train-args", help="its train-args.json (CLIPSep)")
    importer.add_argument(
        "--clap-source",
        default="music_audioset_epoch_15_esc_90.14.pt",
        help="the CLAP the CLAPSep checkpoint was trained with",
    )
    importer.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="unpickle a CLAPSep Lightning checkpoint that holds more than "
        "tensors (only for trusted files)",
    )
    importer.add_argument("--out", required=True, help="model folder to write")
    importer.set_defaults(run=_import)


def build_parser():
    """The argument parser of ``textsep``.

    Example
    -------
    >>> args = build_parser().parse_args(["export", "runs/a", "--out", "model"])
    >>> args.run_folder, args.out, args.run.__name__
    ('runs/a', 'model', '_export')
    """
    parser = argparse.ArgumentParser(
        prog="textsep", description="Separate the sound you describe."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (_add_separate, _add_evaluate, _add_export, _add_import):
        add(commands)
    from speechbrain_textsep.demo import add_demo_command

    add_demo_command(commands, CommandError)
    return parser


def main(argv=None):
    """Entry point of the ``textsep`` console script."""
    args = build_parser().parse_args(argv)
    try:
        with torch.inference_mode():
            args.run(args)
    except CommandError as e:
        print(e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
