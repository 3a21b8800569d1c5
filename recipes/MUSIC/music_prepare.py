#!/usr/bin/env python3
r"""Data preparation for MUSIC: audio and 1-fps frames from solo instrument videos.

The logic lives in :mod:`speechbrain_textsep.data.music` (listing and splits)
and :mod:`speechbrain_textsep.data.video_decode` (decoding with PyAV); this script
re-exports ``prepare_music`` (for the recipes' ``train.py``, through
``run_on_main``) and offers a command line::

    python recipes/MUSIC/music_prepare.py --data_folder /data/MUSIC/solo \
        --save_folder data/MUSIC --num_workers 8

``data_folder`` holds one folder of videos per instrument
(``<instrument>/<video_id>.mp4``); ``save_folder`` receives ``audio/``,
``frames/``, ``train.csv``, ``valid.csv``, ``test.csv``,
``test_mixtures.csv``, ``failed.csv`` and ``prepare_report.json``.
"""

import argparse
import logging

from speechbrain_textsep.data.music import prepare_music

__all__ = ["prepare_music"]


def main(argv=None):
    """Parses the command line and prepares MUSIC."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_folder", required=True, help="folder of class folders")
    parser.add_argument("--save_folder", required=True, help="output folder")
    parser.add_argument("--classes", nargs="+", default=None, metavar="CLASS")
    parser.add_argument("--split_file", default=None, help="CSV key,split")
    parser.add_argument("--valid_ratio", type=float, default=0.1)
    parser.add_argument("--test_ratio", type=float, default=0.1)
    parser.add_argument("--n_test_mixtures", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--sample_rate", type=int, default=16000)
    parser.add_argument("--fps", type=float, default=1.0)
    parser.add_argument("--frame_size", type=int, default=224, help="0: keep size")
    parser.add_argument("--min_duration", type=float, default=1.0, help="seconds")
    parser.add_argument("--audio_subtype", default="PCM_16", help="PCM_16 or FLOAT")
    parser.add_argument("--num_workers", type=int, default=None)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO)
    manifests = prepare_music(
        args.data_folder,
        args.save_folder,
        classes=args.classes,
        split_file=args.split_file,
        valid_ratio=args.valid_ratio,
        test_ratio=args.test_ratio,
        n_test_mixtures=args.n_test_mixtures,
        seed=args.seed,
        sample_rate=args.sample_rate,
        fps=args.fps,
        frame_size=args.frame_size or None,
        min_duration=args.min_duration,
        audio_subtype=args.audio_subtype,
        num_workers=args.num_workers,
    )
    for name, path in manifests.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
