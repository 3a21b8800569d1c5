#!/usr/bin/env python3
r"""Data preparation for VGGSound: audio and 1-fps frames from the 10-second clips.

The logic lives in :mod:`speechbrain_textsep.data.vggsound` (label CSV,
splits, test mixtures) and :mod:`speechbrain_textsep.data.video_decode`
(decoding with PyAV); this script re-exports ``prepare_vggsound`` (for the recipes'
``train.py``, through ``run_on_main``) and offers a command line::

    python recipes/VGGSound/vggsound_prepare.py --data_folder /data/VGGSound/video \
        --csv_file /data/VGGSound/vggsound.csv --save_folder data/VGGSound

``data_folder`` holds the clips, found with ``--name_pattern`` (default
``{youtube_id}_{start:06d}.mp4``; fields ``youtube_id``, ``start``, ``end``,
``label``, ``split``); ``--csv_file`` (default ``data_folder/vggsound.csv``)
has rows ``youtube_id,start_seconds,label,split`` without header.
``save_folder`` receives ``audio/``, ``frames/``, ``train.csv``,
``valid.csv``, ``test.csv``, ``test_mixtures.csv``, ``failed.csv`` and
``prepare_report.json``.
"""

import argparse
import logging

from speechbrain_textsep.data.vggsound import (
    MUSIC_KEYWORDS,
    NAME_PATTERN,
    prepare_vggsound,
)

__all__ = ["prepare_vggsound"]


def main(argv=None):
    """Parses the command line and prepares VGGSound."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_folder", required=True, help="folder of the clips")
    parser.add_argument("--save_folder", required=True, help="output folder")
    parser.add_argument("--csv_file", default=None, help="the label CSV")
    parser.add_argument("--name_pattern", default=NAME_PATTERN)
    parser.add_argument("--labels", nargs="+", default=None, metavar="LABEL")
    parser.add_argument("--valid_ratio", type=float, default=0.05)
    parser.add_argument(
        "--music_keywords", nargs="+", default=list(MUSIC_KEYWORDS), metavar="WORD"
    )
    parser.add_argument("--n_test_mixtures", type=int, default=None)
    parser.add_argument("--test_targets", default=None, help="file of target IDs")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--sample_rate", type=int, default=16000)
    parser.add_argument("--fps", type=float, default=1.0)
    parser.add_argument("--frame_size", type=int, default=224, help="0: keep size")
    parser.add_argument("--min_duration", type=float, default=1.0, help="seconds")
    parser.add_argument("--audio_subtype", default="PCM_16", help="PCM_16 or FLOAT")
    parser.add_argument("--num_workers", type=int, default=None)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO)
    manifests = prepare_vggsound(
        args.data_folder,
        args.save_folder,
        csv_file=args.csv_file,
        name_pattern=args.name_pattern,
        labels=args.labels,
        valid_ratio=args.valid_ratio,
        music_keywords=tuple(args.music_keywords),
        n_test_mixtures=args.n_test_mixtures,
        test_targets=args.test_targets,
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
