"""Aggregation and writing of per-item evaluation results.

Authors
 * speechbrain-textsep contributors
"""

import csv
import json
import math
import numbers
import os

import numpy as np

__all__ = ["summarize", "write_results"]


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


def _json_safe(value):
    """Replaces non-finite floats with None (strict JSON has no NaN/inf)."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
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
        json.dump(_json_safe(summary), json_file, indent=2)
        json_file.write("\n")
    return summary
