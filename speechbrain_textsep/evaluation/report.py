"""Aggregation and writing of evaluation results: the result schema.

Every test evaluation of the package (the CLIP family on a mixture list or
with the paper's protocol, the CLAPSep test, the CLAP retrieval test,
``textsep evaluate``) writes its figures in one schema, through
:func:`write_item_results` and :func:`write_summary`:

- **per-item CSV** (``test_results.csv``, one per test set and query kind):
  one row per scored item. The leading columns are :data:`ITEM_COLUMNS`,
  always in this order:

  ``item`` (the mixture or clip id), ``query_kind`` (``text``, ``image``,
  ``audio``, ``none``...), ``query`` (the label, caption or clip that was
  the query), ``target`` and ``interferer`` (clip ids, or the class for a
  retrieval item; empty when there is none).

  Then one column per metric (keys of
  :data:`~speechbrain_textsep.utils.metric_keys.METRIC_KEYS`), then any
  family-specific column (e.g. ``output``, the PIT output chosen).

- **summary JSON** (``test_summary.json`` of a run and of a model folder)::

    {
      "model_kind": "clipsep",            # the recipe's model_kind
      "experiment": "clipsep_text_small", # the recipe's experiment name
      "metrics_doc": {"sdri_plain": "plain SDR improvement over the mixture",
                      ...},               # every metric key present below
      "results": {
        "<test set>": {                   # e.g. test_mixtures, music_plus
          "<query kind>": {               # e.g. text, image, none, audio
            "<metric key>": {"mean": ..., "median": ..., "std": ...,
                             "sem": ..., "count": ..., "n_nan": ...}}}}
    }

  ``std`` is the sample standard deviation, ``sem`` the standard error of
  the mean; NaN scores are left out and counted in ``n_nan``; strict JSON
  (NaN written as ``null``).

Authors
 * speechbrain-textsep contributors
"""

import csv
import json
import math
import numbers
import os

import numpy as np

from speechbrain_textsep.utils.metric_keys import METRIC_KEYS, describe

__all__ = [
    "json_safe",
    "ITEM_COLUMNS",
    "SUMMARY_FILE",
    "RESULTS_FILE",
    "read_summary",
    "result_document",
    "summarize",
    "write_item_results",
    "write_results",
    "write_summary",
]

#: Leading columns of every per-item CSV, in this order.
ITEM_COLUMNS = ("item", "query_kind", "query", "target", "interferer")
#: File name of a summary in the result schema.
SUMMARY_FILE = "test_summary.json"
#: File name of a per-item CSV.
RESULTS_FILE = "test_results.csv"


def _is_number(value):
    """True for real numbers (Python or numpy), False for bools and others."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _numeric_keys(rows):
    """Keys (first-seen order) whose present values are all real numbers."""
    keys = []
    for row in rows:
        for key in row:
            if key not in keys:
                keys.append(key)
    return [
        key for key in keys if all(_is_number(row[key]) for row in rows if key in row)
    ]


def _stats(values):
    """mean / median / std / sem / count / n_nan of a list of numbers."""
    values = np.asarray(values, dtype=np.float64)
    nan_mask = np.isnan(values)
    values = values[~nan_mask]
    count = int(values.size)
    if count == 0:
        mean = median = std = sem = math.nan
    else:
        mean = float(np.mean(values))
        median = float(np.median(values))
        if count > 1:
            std = float(np.std(values, ddof=1))
            sem = std / math.sqrt(count)
        else:
            std = sem = math.nan
    return {
        "mean": mean,
        "median": median,
        "std": std,
        "sem": sem,
        "count": count,
        "n_nan": int(nan_mask.sum()),
    }


def summarize(rows, keys=None):
    """Summary statistics of per-item metrics.

    For each metric, NaN values (e.g. undefined BSS Eval scores) are left out
    and counted in ``n_nan``; ``std`` is the sample standard deviation
    (``ddof=1``) and ``sem = std / sqrt(count)`` the standard error of the
    mean (both NaN when fewer than two values remain).

    Arguments
    ---------
    rows : list of dict
        One dict per evaluated item, e.g. ``{"id": "a", "sdr": 3.2, ...}``.
        Rows missing a key are skipped for that key.
    keys : list of str, optional
        Metrics to summarize. By default, every key whose values are all real
        numbers (bools and strings, e.g. ids or captions, are ignored).

    Returns
    -------
    dict
        ``{key: {"mean", "median", "std", "sem", "count", "n_nan"}}`` with
        Python floats (``count`` and ``n_nan`` are ints).

    Raises
    ------
    ValueError
        If a requested key has non-numeric values.

    Example
    -------
    >>> rows = [{"id": "a", "sdr": 1.0}, {"id": "b", "sdr": 2.0},
    ...         {"id": "c", "sdr": 6.0}]
    >>> summary = summarize(rows)
    >>> list(summary)
    ['sdr']
    >>> summary["sdr"]["mean"], summary["sdr"]["median"], summary["sdr"]["count"]
    (3.0, 2.0, 3)
    >>> round(summary["sdr"]["sem"], 6)  # std (ddof=1) = sqrt(7)
    1.527525
    """
    rows = list(rows)
    if keys is None:
        keys = _numeric_keys(rows)
    summary = {}
    for key in keys:
        values = [row[key] for row in rows if key in row]
        bad = [value for value in values if not _is_number(value)]
        if bad:
            raise ValueError(f"cannot summarize {key!r}: non-numeric value {bad[0]!r}")
        summary[key] = _stats(values)
    return summary


def json_safe(value):
    """Replaces non-finite floats with None (strict JSON has no NaN/inf).

    Example
    -------
    >>> json_safe({"a": float("nan"), "b": {"c": 1.5}})
    {'a': None, 'b': {'c': 1.5}}
    """
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _make_parent(path):
    """Creates the parent folder of ``path`` if needed."""
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)


def write_results(rows, csv_path, summary_path):
    """Writes per-item results to CSV and their summary to JSON.

    Arguments
    ---------
    rows : list of dict
        One dict per evaluated item; the CSV header is the keys of the first
        row (later rows may lack keys, written empty, but not add new ones).
    csv_path : str or path-like
        Where to write the per-item CSV. Parent folders are created.
    summary_path : str or path-like
        Where to write the summary JSON (indent 2). Parent folders are created.
        NaN / inf statistics are written as ``null``.

    Returns
    -------
    dict
        The summary, as returned by :func:`summarize`.

    Example
    -------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> rows = [{"id": "a", "sdr": 1.0}, {"id": "b", "sdr": 3.0}]
    >>> summary = write_results(rows, os.path.join(folder, "res", "items.csv"),
    ...                         os.path.join(folder, "res", "summary.json"))
    >>> summary["sdr"]["mean"]
    2.0
    >>> with open(os.path.join(folder, "res", "items.csv")) as f:
    ...     print(f.read().splitlines())
    ['id,sdr', 'a,1.0', 'b,3.0']
    """
    rows = list(rows)
    if not rows:
        raise ValueError("write_results got no rows")
    summary = summarize(rows)

    _make_parent(csv_path)
    with open(csv_path, "w", newline="", encoding="utf-8") as csv_file:
        writer = csv.DictWriter(csv_file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    _make_parent(summary_path)
    with open(summary_path, "w", encoding="utf-8") as json_file:
        json.dump(json_safe(summary), json_file, indent=2)
        json_file.write("\n")
    return summary


def write_item_results(rows, csv_path):
    """Writes per-item results in the schema's column order; returns their summary.

    Arguments
    ---------
    rows : list of dict
        One dict per scored item, with the :data:`ITEM_COLUMNS` (missing
        ones are written empty), metric keys of
        :data:`~speechbrain_textsep.utils.metric_keys.METRIC_KEYS` and any
        other column.
    csv_path : str or path-like
        The CSV to write (parent folders are created).

    Returns
    -------
    dict
        ``{metric key: stats}`` (:func:`summarize`) of the metric columns
        only (other numeric columns, e.g. ``output``, are not metrics).

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "test_results.csv")
    >>> rows = [{"sdri_plain": 2.0, "item": "a+b", "output": 1},
    ...         {"sdri_plain": 4.0, "item": "c+d", "output": 0}]
    >>> summary = write_item_results(rows, path)
    >>> list(summary), summary["sdri_plain"]["mean"]
    (['sdri_plain'], 3.0)
    >>> open(path).readline().strip()
    'item,query_kind,query,target,interferer,sdri_plain,output'
    """
    rows = list(rows)
    if not rows:
        raise ValueError("write_item_results got no rows")
    keys = _all_keys(rows)
    metrics = [key for key in keys if key in METRIC_KEYS]
    columns = list(ITEM_COLUMNS) + metrics
    columns += [key for key in keys if key not in columns]
    _make_parent(csv_path)
    with open(csv_path, "w", newline="", encoding="utf-8") as csv_file:
        writer = csv.DictWriter(csv_file, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return summarize(rows, keys=metrics)


def _all_keys(rows):
    """Keys of the rows in first-seen order."""
    keys = []
    for row in rows:
        keys += [key for key in row if key not in keys]
    return keys


def result_document(model_kind, experiment, results):
    """The summary of a test evaluation in the result schema (module docstring).

    Arguments
    ---------
    model_kind : str
        The recipe's ``model_kind`` (``clipsep``, ``clapsep``, ``clap``...).
    experiment : str or None
        The experiment's name.
    results : dict
        ``{test set: {query kind: {metric key: stats}}}``; every metric key
        must be one of :data:`~speechbrain_textsep.utils.metric_keys.METRIC_KEYS`.

    Returns
    -------
    dict
        ``model_kind``, ``experiment``, ``metrics_doc`` (the description of
        every metric key present) and ``results``.

    Example
    -------
    >>> stats = summarize([{"si_sdri": 1.0}, {"si_sdri": 3.0}])
    >>> doc = result_document("clapsep", "tiny", {"test": {"text_PN": stats}})
    >>> doc["metrics_doc"]
    {'si_sdri': 'SI-SDR improvement over the mixture'}
    >>> doc["results"]["test"]["text_PN"]["si_sdri"]["mean"]
    2.0
    """
    keys = []
    for kinds in results.values():
        for metrics in kinds.values():
            keys += [key for key in metrics if key not in keys]
    return {
        "model_kind": model_kind,
        "experiment": experiment,
        "metrics_doc": {key: describe(key) for key in keys},
        "results": results,
    }


def write_summary(path, model_kind, experiment, results):
    """Writes a summary JSON in the result schema (see :func:`result_document`).

    Arguments
    ---------
    path : str or path-like
        The JSON file (parent folders are created).
    model_kind : str
        The recipe's ``model_kind``.
    experiment : str or None
        The experiment's name.
    results : dict
        ``{test set: {query kind: {metric key: stats}}}``.

    Returns
    -------
    dict
        The document as read back (NaN statistics are ``None``).

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "test_summary.json")
    >>> stats = summarize([{"a2t_top1": 1.0}, {"a2t_top1": 0.0}])
    >>> doc = write_summary(path, "clap", "clap_tiny", {"test": {"audio": stats}})
    >>> sorted(doc), doc["results"]["test"]["audio"]["a2t_top1"]["mean"]
    (['experiment', 'metrics_doc', 'model_kind', 'results'], 0.5)
    """
    doc = json_safe(result_document(model_kind, experiment, results))
    _make_parent(path)
    with open(path, "w", encoding="utf-8") as json_file:
        json.dump(doc, json_file, indent=2)
        json_file.write("\n")
    return read_summary(path)


def read_summary(path):
    """Reads a summary JSON and checks that it follows the result schema.

    Arguments
    ---------
    path : str or path-like
        A ``test_summary.json``.

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        If the file is not in the result schema (e.g. written by an older
        version of the package).
    """
    with open(path, encoding="utf-8") as json_file:
        doc = json.load(json_file)
    required = ("model_kind", "metrics_doc", "results")
    missing = [k for k in required if not isinstance(doc, dict) or k not in doc]
    if missing:
        raise ValueError(
            f"{path} is not a summary in the result schema of "
            f"speechbrain_textsep.evaluation.report (missing {missing})"
        )
    return doc
