#!/usr/bin/env python3
"""Data preparation for AudioCaps: manifests of captioned clips for CLAPSep.

AudioCaps cannot be downloaded by a script (YouTube); this script takes the
audio folder the user has and the official CSV files
(``train.csv``, ``val.csv``, ``test.csv`` of
https://github.com/cdjkim/audiocaps, columns
``audiocap_id,youtube_id,start_time,caption``) and writes the manifests of
the CLAPSep recipe (columns ``ID,audio,caption,duration``)::

    save_folder/train.csv, valid.csv, test.csv
    save_folder/audiocaps_skipped.csv   (split,audiocap_id,youtube_id,reason)
    save_folder/audiocaps_opts.json

Audio files are found anywhere under ``audio_folder`` (any format libsndfile
reads: wav, flac, ogg, mp3...) by their name without extension, trying in
turn ``<audiocap_id>``, ``<youtube_id>``, ``Y<youtube_id>``,
``<youtube_id>_<start_time>`` and ``Y<youtube_id>_<start_time>``. A clip
whose file is missing, unreadable or empty is reported (log and
``audiocaps_skipped.csv``) and skipped. The validation and test CSVs have 5
captions per clip: the manifest keeps one row per clip with its first
caption. Files may have any sample rate (the recipe resamples to 32 kHz).

Command line::

    python recipes/AudioCaps/audiocaps_prepare.py --audio_folder AUDIO \\
        --csv_folder audiocaps/dataset --save_folder data/AudioCaps

Authors
 * speechbrain-textsep contributors
"""

import argparse
import csv
import json
import logging
import os

import soundfile as sf

logger = logging.getLogger(__name__)

#: Official CSV file of every split, and the manifest it becomes.
SPLITS = {"train": "train.csv", "valid": "val.csv", "test": "test.csv"}
CSV_FIELDS = ("audiocap_id", "youtube_id", "start_time", "caption")
MANIFEST_FIELDS = ["ID", "audio", "caption", "duration"]
SKIPPED_FIELDS = ["split", "audiocap_id", "youtube_id", "reason"]
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif")
OPTS_FILE = "audiocaps_opts.json"
SKIPPED_FILE = "audiocaps_skipped.csv"


def index_audio(audio_folder):
    """``{name without extension: path}`` of the audio files under a folder."""
    if not os.path.isdir(audio_folder):
        raise FileNotFoundError(f"AudioCaps audio folder not found: {audio_folder}")
    index = {}
    for root, _, files in os.walk(audio_folder):
        for name in sorted(files):
            stem, ext = os.path.splitext(name)
            if ext.lower() in AUDIO_EXTENSIONS:
                index.setdefault(stem, os.path.abspath(os.path.join(root, name)))
    return index


def candidate_names(row):
    """File names (without extension) an AudioCaps row may have."""
    ytid, start = row["youtube_id"], row["start_time"]
    names = [row["audiocap_id"], ytid, f"Y{ytid}"]
    try:
        seconds = float(start)
        starts = {start, str(int(seconds)) if seconds.is_integer() else start}
        starts.add(f"{seconds:.3f}")
    except ValueError:
        starts = {start}
    for value in sorted(starts):
        names += [f"{ytid}_{value}", f"Y{ytid}_{value}"]
    return names


def read_official_csv(path):
    """Rows of an official AudioCaps CSV, checked."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CSV_FIELDS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{path} lacks the columns {missing} (expected the official "
                f"AudioCaps CSV: {','.join(CSV_FIELDS)})"
            )
        return list(reader)


def prepare_split(rows, index, split):
    """Manifest rows and skipped rows of one split."""
    entries, skipped, seen = [], [], set()
    for row in rows:
        ytid = row["youtube_id"]
        if ytid in seen:  # val/test: 5 captions per clip, keep the first
            continue
        seen.add(ytid)
        path = next((index[n] for n in candidate_names(row) if n in index), None)
        reason = None
        if path is None:
            reason = "missing"
        else:
            try:
                info = sf.info(path)
                if info.frames <= 0:
                    reason = "empty"
            except Exception as e:  # noqa: BLE001 (any unreadable file is skipped)
                reason = f"unreadable: {str(e).splitlines()[0][:200]}"
        caption = row["caption"].strip()
        if reason is None and not caption:
            reason = "empty caption"
        if reason is not None:
            skipped.append(
                {
                    "split": split,
                    "audiocap_id": row["audiocap_id"],
                    "youtube_id": ytid,
                    "reason": reason,
                }
            )
            continue
        entries.append(
            {
                "ID": ytid,
                "audio": path,
                "caption": caption,
                "duration": f"{info.frames / info.samplerate:.3f}",
            }
        )
    return entries, skipped


def prepare_audiocaps(audio_folder, csv_folder, save_folder, skip_prep=False):
    """Writes the AudioCaps manifests (see the module docstring).

    Arguments
    ---------
    audio_folder : str
        Folder holding the AudioCaps audio files (any layout below it).
    csv_folder : str
        Folder with the official ``train.csv``, ``val.csv`` and ``test.csv``.
    save_folder : str
        Where the manifests are written.
    skip_prep : bool
        Do nothing (the manifests must exist).

    Returns
    -------
    dict
        ``{split: manifest path}`` for ``train``, ``valid``, ``test``.
    """
    manifests = {s: os.path.join(save_folder, f"{s}.csv") for s in SPLITS}
    if skip_prep:
        return manifests
    opts = {
        "audio_folder": os.path.abspath(audio_folder),
        "csv_folder": os.path.abspath(csv_folder),
    }
    opts_path = os.path.join(save_folder, OPTS_FILE)
    if os.path.isfile(opts_path) and all(map(os.path.isfile, manifests.values())):
        with open(opts_path) as f:
            if json.load(f) == opts:
                logger.info(f"AudioCaps manifests found in {save_folder}")
                return manifests
    csv_paths = {s: os.path.join(csv_folder, name) for s, name in SPLITS.items()}
    absent = [p for p in csv_paths.values() if not os.path.isfile(p)]
    if absent:
        raise FileNotFoundError(
            f"official AudioCaps CSV files not found: {absent} (get them from "
            "https://github.com/cdjkim/audiocaps/tree/master/dataset)"
        )
    index = index_audio(audio_folder)
    os.makedirs(save_folder, exist_ok=True)
    all_skipped = []
    for split, csv_path in csv_paths.items():
        entries, skipped = prepare_split(read_official_csv(csv_path), index, split)
        all_skipped += skipped
        if skipped:
            reasons = {}
            for item in skipped:
                key = item["reason"].split(":")[0]
                reasons[key] = reasons.get(key, 0) + 1
            logger.warning(
                f"AudioCaps {split}: {len(skipped)} clips skipped ({reasons}); "
                f"see {os.path.join(save_folder, SKIPPED_FILE)}"
            )
        if not entries:
            raise RuntimeError(
                f"no AudioCaps {split} clip found under {audio_folder} (file names "
                "tried: <audiocap_id>, <youtube_id>, Y<youtube_id>, "
                "[Y]<youtube_id>_<start_time>)"
            )
        with open(manifests[split], "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS)
            writer.writeheader()
            writer.writerows(entries)
        logger.info(f"AudioCaps {split}: {len(entries)} clips -> {manifests[split]}")
    with open(os.path.join(save_folder, SKIPPED_FILE), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SKIPPED_FIELDS)
        writer.writeheader()
        writer.writerows(all_skipped)
    with open(opts_path, "w") as f:
        json.dump(opts, f, indent=2)
    return manifests


def main(argv=None):
    """Parses the command line and prepares the manifests."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio_folder", required=True)
    parser.add_argument("--csv_folder", required=True)
    parser.add_argument("--save_folder", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    for split, path in prepare_audiocaps(
        args.audio_folder, args.csv_folder, args.save_folder
    ).items():
        print(f"{split}: {path}")


if __name__ == "__main__":
    main()
