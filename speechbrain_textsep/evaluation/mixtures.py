"""Evaluation of a text-queried separator on a fixed list of 2-source mixtures.

The protocol of the CLIPSep paper: the centre segment of each source, each
divided by 2 and summed, the separator queried by the label of each source
(soft masks), BSS Eval v4 of the target against [target, interferer], plus
plain SDR and SI-SDR improvements.

Authors
 * speechbrain-textsep contributors
"""

import csv
import math
import os

import torch
from speechbrain.dataio.dataio import read_audio
from tqdm import tqdm

from speechbrain_textsep.evaluation.metrics import separation_scores
from speechbrain_textsep.evaluation.report import write_results
from speechbrain_textsep.data.clips import crop_bounds


def read_manifest(csv_path):
    """Rows of a CSV manifest keyed by their ``ID`` column."""
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"manifest not found: {csv_path}")
    with open(csv_path, newline="") as f:
        return {row["ID"]: row for row in csv.DictReader(f)}


def read_manifests(csv_paths):
    """Rows of one or more CSV manifests keyed by ``ID`` (IDs must not clash).

    Arguments
    ---------
    csv_paths : str or list of str
        Manifests with an ``ID`` column.

    Returns
    -------
    dict
        ``{ID: row}`` over all the manifests.
    """
    if isinstance(csv_paths, (str, os.PathLike)):
        return read_manifest(csv_paths)
    rows = {}
    for path in csv_paths:
        for key, row in read_manifest(path).items():
            if key in rows and rows[key] != row:
                raise ValueError(
                    f"clip ID {key!r} has different rows in the manifests "
                    f"{list(csv_paths)}"
                )
            rows[key] = row
    return rows


def centre_bounds(row, segment_samples, sample_rate):
    """Start and stop samples of the centred segment of a manifest clip."""
    n_samples = int(round(float(row["duration"]) * sample_rate))
    return crop_bounds(n_samples, segment_samples, train=False)


def load_centre_segment(row, segment_samples, sample_rate):
    """The centred ``segment_samples`` of a manifest clip (zero-padded if short)."""
    start, stop = centre_bounds(row, segment_samples, sample_rate)
    sig = read_audio({"file": row["audio"], "start": start, "stop": stop})
    if sig.dim() > 1:
        sig = sig.mean(dim=-1)
    return torch.nn.functional.pad(sig, (0, max(0, segment_samples - sig.shape[0])))


def _best_output(outputs, target, interferer, mixture):
    """Index and scores of the output that best separates ``target``.

    The oracle post-selection of query-free models (PIT): the output with
    the highest BSS Eval SDR of the target (plain SDR if BSS Eval is
    undefined for every output), as the CLIPSep authors' evaluation.
    """
    best = None
    for k, estimate in enumerate(outputs):
        scores = separation_scores(estimate, target, interferer, mixture)
        key = scores["bss_sdr"]
        key = scores["sdr"] - 1e9 if math.isnan(key) else key
        if best is None or key > best[0]:
            best = (key, k, scores)
    return best[1], best[2]


def evaluate_mixture_list(
    separate,
    mixtures_csv,
    clips_csv,
    output_folder,
    segment_samples=65535,
    sample_rate=16000,
    max_mixtures=None,
    scored_sources=(0, 1),
    permutation_invariant=False,
    query_rows=False,
):
    """Separates every mixture of the list by its sources' labels and scores it.

    Every source ``n`` of ``scored_sources`` is queried (by default both
    sources of each mixture; ``(0,)`` queries and scores only ``source1``,
    the target of the CLIPSep protocol) and scored against the other source
    with :func:`~speechbrain_textsep.evaluation.metrics.separation_scores`.

    Arguments
    ---------
    separate : callable
        ``separate(mixture [1, L], queries) -> [1, Q, L]``; ``queries`` is
        the list of the labels of the scored sources, or with ``query_rows``
        their manifest rows (dicts with ``label``, ``frames``, ``n_frames``
        and ``segment_center``, the centre of the segment in seconds).
    mixtures_csv : str
        CSV with ``ID, source1, label1, source2, label2`` (clip IDs).
    clips_csv : str or list of str
        Manifest(s) of the clips (``ID, audio, ..., duration``).
    output_folder : str
        Where ``test_results.csv`` and ``test_summary.json`` are written.
    segment_samples : int
        Length of the centre segment of each source.
    sample_rate : int
        Sample rate of the clips.
    max_mixtures : int, optional
        Evaluates only the first mixtures (quick checks).
    scored_sources : tuple of int
        Which sources (0: ``source1``, 1: ``source2``) are queried and scored.
    permutation_invariant : bool
        For query-free separators (PIT): ``separate`` returns ``[1, K, L]``
        outputs not tied to the queries, and each scored source takes the
        output with the best BSS Eval SDR against it (recorded in the
        ``output`` column).
    query_rows : bool
        Passes the manifest rows of the queried clips to ``separate``
        instead of their labels (image queries need the frames).

    Returns
    -------
    dict
        The summary (mean, median, std, sem, count of every metric).
    """
    clips = read_manifests(clips_csv)
    mixtures = list(read_manifest(mixtures_csv).values())[:max_mixtures]
    scored_sources = tuple(scored_sources)
    if not scored_sources or not set(scored_sources) <= {0, 1}:
        raise ValueError(
            f"scored_sources must be a subset of (0, 1), got {scored_sources}"
        )
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
        if query_rows:
            queries = []
            for n in scored_sources:
                start, _ = centre_bounds(clips[ids[n]], segment_samples, sample_rate)
                center = (start + segment_samples / 2) / sample_rate
                queries.append({**clips[ids[n]], "segment_center": center})
        else:
            queries = [labels[n] for n in scored_sources]
        with torch.no_grad():
            estimates = separate(mixture[None], queries)[0]
        for q, n in enumerate(scored_sources):
            target, interferer = sources[n], sources[1 - n]
            extra = {}
            if permutation_invariant:
                output, scores = _best_output(estimates, target, interferer, mixture)
                extra["output"] = output
            else:
                scores = separation_scores(estimates[q], target, interferer, mixture)
            rows.append(
                {
                    "mixture": mix_row["ID"],
                    "target": ids[n],
                    "interferer": ids[1 - n],
                    "query": labels[n],
                    **scores,
                    # BSS Eval v4 SDR of the mixture (the "Mixture" row)
                    "bss_sdr_mix": scores["bss_sdr"] - scores["bss_sdri"],
                    **extra,
                }
            )
    return write_results(
        rows,
        os.path.join(output_folder, "test_results.csv"),
        os.path.join(output_folder, "test_summary.json"),
    )
