"""Evaluation of a text-queried separator on a fixed list of 2-source mixtures.

The protocol of the CLIPSep paper: the centre segment of each source, each
divided by 2 and summed, the separator queried by the label of each source
(soft masks), BSS Eval v4 of the target against [target, interferer], plus
plain SDR and SI-SDR improvements (metric keys of
:mod:`speechbrain_textsep.utils.metric_keys`). The per-item CSV follows the
result schema of :mod:`speechbrain_textsep.evaluation.report`; the caller
writes the summary JSON (:func:`~speechbrain_textsep.evaluation.report.write_summary`).

Authors
 * speechbrain-textsep contributors
"""

import csv
import math
import os

import torch
from tqdm import tqdm

from speechbrain_textsep.data.clips import crop_bounds
from speechbrain_textsep.evaluation.metrics import separation_scores
from speechbrain_textsep.evaluation.report import RESULTS_FILE, write_item_results
from speechbrain_textsep.processing.audio_io import read_audio


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
    sig, _ = read_audio(row["audio"], start, stop, mono=True)
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
        key = scores["sdr_bss_v4"]
        key = scores["sdr_plain"] - 1e9 if math.isnan(key) else key
        if best is None or key > best[0]:
            best = (key, k, scores)
    return best[1], best[2]


def _query_row(row, segment_samples, sample_rate):
    """The manifest row of a queried clip with its segment centre (seconds)."""
    start, _ = centre_bounds(row, segment_samples, sample_rate)
    return {**row, "segment_center": (start + segment_samples / 2) / sample_rate}


def _score_mixture(mix_row, sources, estimates, scored_sources, permutation_invariant):
    """Per-item rows (result schema) of the scored sources of one mixture.

    ``sources`` is ``[2, L]``, ``estimates`` ``[Q, L]`` (one per scored
    source) or, with ``permutation_invariant``, ``[K, L]`` free outputs.
    """
    mixture = sources.sum(0)
    ids = [mix_row["source1"], mix_row["source2"]]
    rows = []
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
                "item": mix_row["ID"],
                "query": mix_row[f"label{n + 1}"],
                "target": ids[n],
                "interferer": ids[1 - n],
                **scores,
                # BSS Eval v4 SDR of the mixture (the "Mixture" row)
                "sdr_bss_v4_mixture": scores["sdr_bss_v4"] - scores["sdri_bss_v4"],
                **extra,
            }
        )
    return rows


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
    query_kind="text",
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
        Where the per-item ``test_results.csv`` is written.
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
    query_kind : str
        The ``query_kind`` column of the rows (``text``, ``image``, ``none``).

    Returns
    -------
    dict
        ``{metric key: stats}`` (mean, median, std, sem, count, n_nan), the
        ``<query kind>`` level of the result schema.
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
        missing = [i for i in ids if i not in clips]
        if missing:
            raise KeyError(
                f"mixture {mix_row['ID']}: clips {missing} not in {clips_csv}"
            )
        sources = torch.stack(
            [load_centre_segment(clips[i], segment_samples, sample_rate) for i in ids]
        )
        sources = sources / 2
        queries = [
            _query_row(clips[ids[n]], segment_samples, sample_rate)
            if query_rows
            else mix_row[f"label{n + 1}"]
            for n in scored_sources
        ]
        with torch.no_grad():
            estimates = separate(sources.sum(0)[None], queries)[0]
        rows += _score_mixture(
            mix_row, sources, estimates, scored_sources, permutation_invariant
        )
    for row in rows:
        row["query_kind"] = query_kind
    return write_item_results(rows, os.path.join(output_folder, RESULTS_FILE))
