#!/usr/bin/env python3
"""Data preparation for SynthMUSIC: synthetic MUSIC-style clips and frames.

The logic lives in :mod:`speechbrain_textsep.data.synthmusic`; this script
re-exports ``prepare_synthmusic``, gives the recipes' ``train.py`` the
call from their hyperparameters (:func:`prepare_from_hparams`) and offers a
command line::

    python recipes/SynthMUSIC/synthmusic_prepare.py --data_folder data/SynthMUSIC
"""

import argparse
import logging

from speechbrain_textsep.data.synthmusic import (
    INSTRUMENTS,
    MUSIC11_CLASSES,
    prepare_synthmusic,
)

__all__ = ["prepare_from_hparams", "prepare_synthmusic"]


def prepare_from_hparams(hparams, sample_rate_key="sample_rate"):
    """Renders SynthMUSIC as a recipe's hyperparameters describe it.

    Arguments
    ---------
    hparams : dict
        Loaded recipe hyperparameters: ``data_folder``, ``classes``,
        ``n_train_per_class``, ``n_valid_per_class``, ``n_test_per_class``,
        ``clip_seconds``, ``n_test_mixtures``, ``skip_prep`` and the rate.
    sample_rate_key : str
        The key of the rendering rate (``data_sample_rate`` in recipes whose
        model runs at another rate than the clips).

    Returns
    -------
    dict
        The manifests (see ``prepare_synthmusic``).
    """
    return prepare_synthmusic(
        hparams["data_folder"],
        classes=hparams["classes"],
        n_train=hparams["n_train_per_class"],
        n_valid=hparams["n_valid_per_class"],
        n_test=hparams["n_test_per_class"],
        duration=hparams["clip_seconds"],
        n_test_mixtures=hparams["n_test_mixtures"],
        sample_rate=hparams[sample_rate_key],
        skip_prep=hparams["skip_prep"],
    )


def main(argv=None):
    """Parses the command line and prepares SynthMUSIC."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_folder", required=True, help="output folder")
    parser.add_argument(
        "--classes",
        nargs="+",
        default=MUSIC11_CLASSES,
        choices=sorted(INSTRUMENTS),
        metavar="CLASS",
        help="instrument classes (default: the MUSIC11 classes General MIDI has)",
    )
    parser.add_argument("--n_train", type=int, default=40, help="clips per class")
    parser.add_argument("--n_valid", type=int, default=6, help="clips per class")
    parser.add_argument("--n_test", type=int, default=8, help="clips per class")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds")
    parser.add_argument("--n_frames", type=int, default=3)
    parser.add_argument("--n_test_mixtures", type=int, default=100)
    parser.add_argument("--sample_rate", type=int, default=16000)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--num_workers", type=int, default=None)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO)
    manifests = prepare_synthmusic(
        args.data_folder,
        classes=args.classes,
        n_train=args.n_train,
        n_valid=args.n_valid,
        n_test=args.n_test,
        duration=args.duration,
        n_frames=args.n_frames,
        n_test_mixtures=args.n_test_mixtures,
        sample_rate=args.sample_rate,
        seed=args.seed,
        num_workers=args.num_workers,
    )
    for name, path in manifests.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
