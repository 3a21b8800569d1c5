"""The benchmark lists of the CLAPSep evaluation, in the authors' layout.

The authors publish fixed lists of 2-source mixtures
(``metadata/evaluation/*.csv`` of Aisaka0v0/CLAPSep) with the columns
``source_file, positive_caption, noise_file, negative_caption``, and, for the
label datasets, ``*_eval_samples.csv`` files (``class, file``: a caption and
a Python list of 10 query clips) for the audio queries. This module reads and
writes both layouts and builds new lists the way the paper does.

Authors
 * speechbrain-textsep contributors
"""

import ast
import csv
import os
import random
from dataclasses import dataclass

from speechbrain_textsep.utils.captions import CAPTION_TEMPLATE, label_caption

__all__ = [
    "BENCHMARKS",
    "CSV_COLUMNS",
    "LABEL_TEMPLATE",
    "SAMPLES_COLUMNS",
    "BenchmarkItem",
    "label_query",
    "make_label_benchmark",
    "read_benchmark_csv",
    "read_query_samples",
    "write_benchmark_csv",
]

#: Benchmarks of the paper: the authors' files under ``metadata/evaluation``
#: (mixture list, query-sample list or None) and the number of mixtures.
BENCHMARKS = {
    "audiocaps": ("audiocaps_eval.csv", None, 4785),
    "audioset": ("audioset_eval.csv", None, 18869),
    "esc50": ("esc_eval.csv", "esc_eval_samples.csv", 7500),
    "fsd2018": ("fsd_eval.csv", "fsd_eval_samples.csv", 8000),
    "music21": ("music_eval.csv", "music_eval_samples.csv", 19805),
}
#: Columns of the authors' mixture lists.
CSV_COLUMNS = ("source_file", "positive_caption", "noise_file", "negative_caption")
#: Columns of the authors' query-sample lists.
SAMPLES_COLUMNS = ("class", "file")
#: Caption template of the label datasets (the paper's "The sound of"): the
#: package's :data:`~speechbrain_textsep.utils.captions.CAPTION_TEMPLATE`.
LABEL_TEMPLATE = CAPTION_TEMPLATE
#: The caption of a class label: the package's one caption builder,
#: :func:`~speechbrain_textsep.utils.captions.label_caption` (underscores
#: become spaces; the case is kept: the authors' ESC-50 and MUSIC21 lists use
#: lower case, FSDKaggle2018 labels a capital).
label_query = label_caption


@dataclass(frozen=True)
class BenchmarkItem:
    """One mixture of a benchmark list (a row of the authors' CSV).

    Arguments
    ---------
    source_file : str
        Target clip (relative to the audio folder).
    positive_caption : str
        Caption (or "The sound of {label}") of the target.
    noise_file : str
        Interfering clip.
    negative_caption : str
        Caption of the interfering clip.

    Example
    -------
    >>> item = BenchmarkItem("a.wav", "The sound of dog", "b.wav", "The sound of cat")
    >>> item.noise_file
    'b.wav'
    """

    source_file: str
    positive_caption: str
    noise_file: str
    negative_caption: str


def _csv_rows(path, columns, what):
    """``(line number, row)`` of a CSV whose header must be ``columns``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, skipinitialspace=True)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != columns:
            raise ValueError(
                f"{path}: expected the header {','.join(columns)} (the "
                f"authors' layout), got {header}"
            )
        return [(line, row) for line, row in enumerate(reader, start=2) if row]


def read_benchmark_csv(path):
    """Reads a mixture list in the authors' layout.

    Arguments
    ---------
    path : str or os.PathLike
        CSV with the header ``source_file,positive_caption,noise_file,
        negative_caption`` (e.g. their ``metadata/evaluation/esc_eval.csv``).

    Returns
    -------
    list of BenchmarkItem

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "list.csv")
    >>> write_benchmark_csv([BenchmarkItem("a.wav", "The sound of dog",
    ...                                    "b.wav", "The sound of cat")], path)
    >>> read_benchmark_csv(path)[0].negative_caption
    'The sound of cat'
    """
    items = []
    for line, row in _csv_rows(path, CSV_COLUMNS, "benchmark list"):
        if len(row) != 4 or not all(field.strip() for field in row):
            raise ValueError(
                f"{path}, line {line}: expected 4 non-empty fields, got {row}"
            )
        item = BenchmarkItem(*(field.strip() for field in row))
        if item.source_file == item.noise_file:
            raise ValueError(
                f"{path}, line {line}: target and noise are the same file "
                f"{item.source_file!r}"
            )
        items.append(item)
    if not items:
        raise ValueError(f"{os.fspath(path)} lists no mixtures")
    return items


def write_benchmark_csv(items, path):
    """Writes a mixture list in the authors' layout (see :func:`read_benchmark_csv`).

    Arguments
    ---------
    items : list of BenchmarkItem
        The mixtures.
    path : str or os.PathLike
        Output CSV; parent folders are created.

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "sub", "list.csv")
    >>> write_benchmark_csv([BenchmarkItem("a.wav", "dog", "b.wav", "cat")], path)
    >>> print(open(path).read().strip())
    source_file,positive_caption,noise_file,negative_caption
    a.wav,dog,b.wav,cat
    """
    path = os.fspath(path)
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for item in items:
            writer.writerow(
                [
                    item.source_file,
                    item.positive_caption,
                    item.noise_file,
                    item.negative_caption,
                ]
            )


def _parse_file_list(text, path, line, caption):
    """The clip names of a ``file`` field (a Python list literal)."""
    try:
        files = ast.literal_eval(text)
    except (ValueError, SyntaxError) as e:
        raise ValueError(
            f"{path}, line {line}: the file field must be a Python list "
            f"of names, got {text!r}"
        ) from e
    if (
        not isinstance(files, (list, tuple))
        or not files
        or not all(isinstance(name, str) and name for name in files)
    ):
        raise ValueError(
            f"{path}, line {line}: expected a non-empty list of file "
            f"names for {caption!r}, got {files!r}"
        )
    return list(files)


def read_query_samples(path):
    """Reads a query-sample list (``class,file``: caption, list of clips).

    Arguments
    ---------
    path : str or os.PathLike
        The authors' ``*_eval_samples.csv``: one row per class, its caption
        and a Python list literal of clip names.

    Returns
    -------
    dict
        ``{caption: [file, ...]}`` in the listed order.

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "samples.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write('class,file\\nthe sound of dog,"[\\'a.wav\\', \\'b.wav\\']"\\n')
    >>> read_query_samples(path)
    {'the sound of dog': ['a.wav', 'b.wav']}
    """
    samples = {}
    for line, row in _csv_rows(path, SAMPLES_COLUMNS, "query-sample list"):
        if len(row) != 2:
            raise ValueError(f"{path}, line {line}: expected 2 fields, got {row}")
        caption = row[0].strip()
        files = _parse_file_list(row[1].strip(), path, line, caption)
        if caption in samples:
            raise ValueError(f"{path}, line {line}: class {caption!r} repeated")
        samples[caption] = files
    if not samples:
        raise ValueError(f"{os.fspath(path)} lists no query samples")
    return samples


def make_label_benchmark(labels, n_noises=1, seed=0, template=LABEL_TEMPLATE):
    """A mixture list as the paper builds it for labelled datasets.

    Every clip is a target mixed with ``n_noises`` (1 or 5 in the paper)
    other clips drawn at random among those of another class; captions are
    :func:`~speechbrain_textsep.utils.captions.label_caption` of the labels.

    Arguments
    ---------
    labels : dict
        ``{file: label}``.
    n_noises : int
        Interferers per target.
    seed : int
        Seed of the draw.
    template : str
        Caption template.

    Returns
    -------
    list of BenchmarkItem

    Example
    -------
    >>> items = make_label_benchmark({"a.wav": "dog", "b.wav": "cat",
    ...                               "c.wav": "dog"}, n_noises=1)
    >>> [(i.source_file, i.noise_file) for i in items]
    [('a.wav', 'b.wav'), ('b.wav', 'c.wav'), ('c.wav', 'b.wav')]
    >>> items[0].positive_caption
    'The sound of dog'
    """
    if n_noises < 1:
        raise ValueError(f"n_noises must be >= 1, got {n_noises}")
    rng = random.Random(seed)
    files = list(labels)
    items = []
    for target in files:
        others = [f for f in files if labels[f] != labels[target]]
        if len(others) < n_noises:
            raise ValueError(
                f"{target}: only {len(others)} clips of other classes for "
                f"{n_noises} interferers"
            )
        for noise in rng.sample(others, n_noises):
            items.append(
                BenchmarkItem(
                    target,
                    label_caption(labels[target], template),
                    noise,
                    label_caption(labels[noise], template),
                )
            )
    return items
