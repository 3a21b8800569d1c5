"""Evaluation of a text-queried separator on a fixed list of 2-source mixtures.

The protocol of the CLIPSep paper: the centre segment of each source, each
divided by 2 and summed, the separator queried by the label of each source
(soft masks), BSS Eval v4 of the target against [target, interferer], plus
plain SDR and SI-SDR improvements.

Authors
 * speechbrain-textsep contributors
"""

import csv
import os

import torch
from speechbrain.dataio.dataio import read_audio
from tqdm import tqdm

from speechbrain_textsep.evaluation.metrics import separation_scores
from speechbrain_textsep.evaluation.report import write_results
from speechbrain_textsep.training.data import crop_bounds


def read_manifest(csv_path):
    """Rows of a CSV manifest keyed by their ``ID`` column."""
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"manifest not found: {csv_path}")
    with open(csv_path, newline="") as f:
        return {row["ID"]: row for row in csv.DictReader(f)}


def load_centre_segment(row, segment_samples, sample_rate):
    """The centred ``segment_samples`` of a manifest clip (zero-padded if short)."""
    n_samples = int(round(float(row["duration"]) * sample_rate))
    start, stop = crop_bounds(n_samples, segment_samples, train=False)
    sig = read_audio({"file": row["audio"], "start": start, "stop": stop})
    if sig.dim() > 1:
        sig = sig.mean(dim=-1)
    return torch.nn.functional.pad(sig, (0, max(0, segment_samples - sig.shape[0])))


def evaluate_mixture_list(
    separate,
    mixtures_csv,
    clips_csv,
    output_folder,
    segment_samples=65535,
    sample_rate=16000,
    max_mixtures=None,
):
    """Separates every mixture of the list by each source's label and scores it.

    Arguments
    ---------
    separate : callable
        ``separate(mixture [1, L], labels: list of str) -> [1, Q, L]``.
    mixtures_csv : str
        CSV with ``ID, source1, label1, source2, label2`` (clip IDs).
    clips_csv : str
        Manifest of the clips (``ID, audio, ..., duration``).
    output_folder : str
        Where ``test_results.csv`` and ``test_summary.json`` are written.
    segment_samples : int
        Length of the centre segment of each source.
    sample_rate : int
        Sample rate of the clips.
    max_mixtures : int, optional
        Evaluates only the first mixtures (quick checks).

    Returns
    -------
    dict
        The summary (mean, median, std, sem, count of every metric).
    """
    clips = read_manifest(clips_csv)
    mixtures = list(read_manifest(mixtures_csv).values())[:max_mixtures]
    rows = []
    for mix_row in tqdm(mixtures, desc="evaluating", dynamic_ncols=True):
        ids = [mix_row["source1"], mix_row["source2"]]
        labels = [mix_row["label1"], mix_row["label2"]]
        missing = [i for i in ids if i not in clips]
        if missing:
            raise KeyError(
                f"mixture {mix_row['ID']}: clips {missing} not in {clips_csv}"
            )
        sources = (
            torch.stack(
                [
                    load_centre_segment(clips[i], segment_samples, sample_rate)
                    for i in ids
                ]
            )
            / 2
        )
        mixture = sources.sum(0)
        with torch.no_grad():
            estimates = separate(mixture[None], labels)[0]
        for n in range(2):
            scores = separation_scores(
                estimates[n], sources[n], sources[1 - n], mixture
            )
            rows.append(
                {
                    "mixture": mix_row["ID"],
                    "target": ids[n],
                    "query": labels[n],
                    **scores,
                }
            )
    return write_results(
        rows,
        os.path.join(output_folder, "test_results.csv"),
        os.path.join(output_folder, "test_summary.json"),
    )
