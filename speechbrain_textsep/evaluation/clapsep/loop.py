"""The evaluation loop of the CLAPSep benchmarks.

Every mixture of a list is built once
(:func:`~speechbrain_textsep.evaluation.clapsep.mixing.benchmark_mixture`)
and separated under every condition (modality x shots x valence); each
condition gets a per-item CSV and a summary JSON, and ``summary.json``
gathers them.

Authors
 * speechbrain-textsep contributors
"""

import json
import os
import re
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from speechbrain_textsep.evaluation.clapsep.lists import (
    read_benchmark_csv,
    read_query_samples,
)
from speechbrain_textsep.evaluation.clapsep.mixing import benchmark_mixture
from speechbrain_textsep.evaluation.clapsep.queries import (
    MODALITIES,
    VALENCES,
    QueryEmbeddings,
    condition_name,
    embed_query_samples,
)
from speechbrain_textsep.evaluation.clapsep.scoring import (
    SDR_DEFINITION,
    clapsep_metrics,
)
from speechbrain_textsep.evaluation.report import json_safe, summarize, write_results

__all__ = ["EvaluationSettings", "condition_file_stem", "evaluate_clapsep_benchmark"]


def condition_file_stem(name):
    """A file-system-safe version of a condition name (``+`` -> ``plus``).

    Arguments
    ---------
    name : str
        A condition name such as ``text_P+N``.

    Returns
    -------
    str

    Example
    -------
    >>> condition_file_stem("audio+text_5shot_P+N")
    'audioplustext_5shot_PplusN'
    """
    return re.sub(r"[^A-Za-z0-9_.-]", "", name.replace("+", "plus"))


def _check_choices(values, allowed, what):
    """``values`` as a list, all among ``allowed`` (a ValueError otherwise)."""
    values = [values] if isinstance(values, str) else list(values)
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise ValueError(f"{what} must be among {allowed}, got {values}")
    return values


@dataclass
class EvaluationSettings:
    """The keyword arguments of :func:`evaluate_clapsep_benchmark`.

    Arguments
    ---------
    embed_audio : callable or None
        ``embed_audio(list of [L_i] tensors, sample_rate) -> [N, D]``;
        needed for audio queries.
    query_samples : dict or str or None
        ``{caption: [file, ...]}`` (or the path of a ``*_eval_samples.csv``)
        for audio queries.
    query_audio_dir : str or None
        Folder of the query clips (default: the mixtures' ``audio_dir``).
    modalities : sequence of str
        Among :data:`~speechbrain_textsep.evaluation.clapsep.queries.MODALITIES`.
    valences : sequence of str
        Among :data:`~speechbrain_textsep.evaluation.clapsep.queries.VALENCES`.
    shots : sequence of int
        Numbers of query clips for audio queries (1, 5, 10).
    shot_seed : int or None
        None: the first ``k`` listed clips; else a random ``k``-subset per
        class drawn with this seed.
    sample_rate : int
        Rate of the mixtures and of ``separate`` (32000).
    clip_seconds : float or None
        Clips are cut / zero-padded to this length (10 s, the authors');
        None: the target's length (the noise is cut / padded to it).
    snr_db : float
        Mixing SNR (0 dB).
    benchmark : str
        Name written into the results.
    out_dir : str or None
        Where to write the results (None: nothing written).
    max_items : int or None
        Evaluate only the first items (smoke tests).
    progress : bool
        Show a progress bar.

    Example
    -------
    >>> EvaluationSettings(modalities="audio", shots=[5, 1, 5]).shot_counts
    [1, 5]
    >>> EvaluationSettings(valences=["P", "X"])
    Traceback (most recent call last):
    ...
    ValueError: valences must be among ('P', 'N', 'P+N'), got ['P', 'X']
    """

    embed_audio: Optional[Callable] = None
    query_samples: Optional[object] = None
    query_audio_dir: Optional[str] = None
    modalities: Sequence[str] = ("text",)
    valences: Sequence[str] = VALENCES
    shots: Sequence[int] = (1, 5, 10)
    shot_seed: Optional[int] = None
    sample_rate: int = 32000
    clip_seconds: Optional[float] = 10.0
    snr_db: float = 0.0
    benchmark: str = "custom"
    out_dir: Optional[str] = None
    max_items: Optional[int] = None
    progress: bool = False

    def __post_init__(self):
        self.modalities = _check_choices(self.modalities, MODALITIES, "modalities")
        self.valences = _check_choices(self.valences, VALENCES, "valences")

    @property
    def audio_queries(self):
        """Whether any modality needs query clips."""
        return any(m != "text" for m in self.modalities)

    @property
    def shot_counts(self):
        """The sorted numbers of query clips (``[None]`` without audio queries)."""
        if not self.audio_queries:
            return [None]
        return sorted({int(k) for k in self.shots})

    @property
    def conditions(self):
        """``(name, modality, valence, shots)`` of every evaluated condition."""
        return [
            (condition_name(m, v, k if m != "text" else None), m, v, k)
            for m in self.modalities
            for k in (self.shot_counts if m != "text" else [None])
            for v in self.valences
        ]


def _read_items(items, max_items):
    """The list of :class:`BenchmarkItem` to evaluate (a path is read)."""
    if isinstance(items, (str, os.PathLike)):
        items = read_benchmark_csv(items)
    items = list(items)[:max_items] if max_items is not None else list(items)
    if not items:
        raise ValueError("no mixtures to evaluate")
    return items


def _audio_query_embeddings(items, audio_dir, settings):
    """``{caption: [max shots, D]}`` for the captions of ``items``."""
    if settings.embed_audio is None:
        raise ValueError("audio queries need embed_audio")
    query_samples = settings.query_samples
    if query_samples is None:
        raise ValueError(
            "audio queries need query_samples ({caption: [files]} or the "
            "authors' *_eval_samples.csv)"
        )
    if isinstance(query_samples, (str, os.PathLike)):
        query_samples = read_query_samples(query_samples)
    needed = {i.positive_caption for i in items} | {i.negative_caption for i in items}
    missing = sorted(needed - set(query_samples))
    if missing:
        raise ValueError(
            f"no query clips for {len(missing)} captions of the list, e.g. "
            f"{missing[:3]}"
        )
    return embed_query_samples(
        {c: query_samples[c] for c in sorted(needed)},
        settings.embed_audio,
        settings.query_audio_dir or audio_dir,
        settings.sample_rate,
        max(settings.shot_counts),
        settings.shot_seed,
    )


def _item_rows(separate, index, item, mixture, target, conditions, queries):
    """``(condition name, row)`` of one mixture under every condition."""
    for name, modality, valence, shots in conditions:
        positive = negative = None
        if "P" in valence:
            positive = queries(modality, item.positive_caption, shots)[None]
        if "N" in valence:
            negative = queries(modality, item.negative_caption, shots)[None]
        estimate = separate(mixture[None], positive, negative)
        if tuple(estimate.shape) != (1, mixture.numel()):
            raise ValueError(
                f"separate returned {tuple(estimate.shape)} for a "
                f"[1, {mixture.numel()}] mixture"
            )
        row = {
            "id": f"{index:06d}",
            "source_file": item.source_file,
            "noise_file": item.noise_file,
            "positive_caption": item.positive_caption if "P" in valence else "",
            "negative_caption": item.negative_caption if "N" in valence else "",
        }
        row.update(clapsep_metrics(estimate.detach().reshape(-1), target, mixture))
        yield name, row


def _run_conditions(separate, items, audio_dir, queries, settings):
    """``{condition name: [row, ...]}`` over all mixtures."""
    conditions = settings.conditions
    rows = {name: [] for name, *_ in conditions}
    iterator = enumerate(items)
    if settings.progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(items), desc=settings.benchmark)
    for index, item in iterator:
        mixture, target = benchmark_mixture(
            item,
            audio_dir,
            settings.sample_rate,
            settings.clip_seconds,
            settings.snr_db,
        )
        for name, row in _item_rows(
            separate, index, item, mixture, target, conditions, queries
        ):
            rows[name].append(row)
    return rows


def _summarize_conditions(rows, results, out_dir):
    """Fills ``results["conditions"]``; writes the files when ``out_dir``."""
    for name, condition_rows in rows.items():
        if out_dir is None:
            summary = summarize(condition_rows)
        else:
            stem = os.path.join(out_dir, condition_file_stem(name))
            summary = write_results(
                condition_rows, f"{stem}.csv", f"{stem}_summary.json"
            )
        results["conditions"][name] = summary
    if out_dir is not None:
        with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as f:
            json.dump(json_safe(results), f, indent=2)
            f.write("\n")
    return results


def evaluate_clapsep_benchmark(separate, embed_text, items, audio_dir, **settings):
    """Evaluates a query-conditioned separator on a CLAPSep benchmark list.

    Every mixture is built once (0 dB, see
    :mod:`~speechbrain_textsep.evaluation.clapsep.mixing`) and separated under
    every condition (modality x shots x valence); each condition gets a
    per-item CSV and a summary JSON
    (:func:`~speechbrain_textsep.evaluation.report.write_results`), and
    ``summary.json`` gathers them. The scores are those of
    :func:`~speechbrain_textsep.evaluation.clapsep.scoring.clapsep_metrics`.

    Arguments
    ---------
    separate : callable
        ``separate(mixture [1, L], positive [1, D] or None, negative [1, D]
        or None) -> [1, L]`` at the sample rate (see ``clapsep_separate_fn``).
    embed_text : callable or None
        ``embed_text(list of str) -> [N, D]`` (see ``clap_embed_fns``);
        needed for the ``text`` and ``audio+text`` modalities.
    items : list of BenchmarkItem or str
        The mixtures, or the path of a list in the authors' layout.
    audio_dir : str
        Folder of the target and noise clips.
    **settings
        The keyword arguments of :class:`EvaluationSettings`: ``embed_audio``,
        ``query_samples``, ``query_audio_dir``, ``modalities``, ``valences``,
        ``shots``, ``shot_seed``, ``sample_rate`` (32000), ``clip_seconds``
        (10), ``snr_db`` (0), ``benchmark``, ``out_dir``, ``max_items``,
        ``progress``.

    Returns
    -------
    dict
        ``{"benchmark", "n_mixtures", "sdr_definition", "shot_selection",
        "conditions": {name: summary}}``; a summary is ``{metric: {"mean",
        "std", "median", "sem", "count", "n_nan"}}`` with the metric keys of
        ``clapsep_metrics`` (``sdri_bss_v3``, ``si_sdri_nzm``, ``sdri_plain``...).

    Example
    -------
    >>> import tempfile, numpy, soundfile, torch
    >>> from speechbrain_textsep.evaluation.clapsep.lists import BenchmarkItem
    >>> folder = tempfile.mkdtemp()
    >>> rng = numpy.random.default_rng(0)
    >>> for name in ("a.wav", "b.wav"):
    ...     soundfile.write(os.path.join(folder, name),
    ...                     0.1 * rng.standard_normal(4000), 8000)
    >>> results = evaluate_clapsep_benchmark(
    ...     lambda mixture, positive, negative: 0.5 * mixture,  # a 0.5 mask
    ...     lambda texts: torch.zeros(len(texts), 4),
    ...     [BenchmarkItem("a.wav", "a", "b.wav", "b")] * 2,
    ...     folder, valences=["P+N"], sample_rate=8000, clip_seconds=None)
    >>> stats = results["conditions"]["text_P+N"]
    >>> [abs(stats[key]["mean"]) < 1e-6 for key in ("sdri_bss_v3", "si_sdri_nzm")]
    [True, True]
    >>> round(stats["sdri_plain"]["mean"], 1)  # but the plain SDR sees the gain
    3.0
    """
    settings = EvaluationSettings(**settings)
    items = _read_items(items, settings.max_items)
    if any(m != "audio" for m in settings.modalities) and embed_text is None:
        raise ValueError("text queries need embed_text")
    audio_embeddings = None
    if settings.audio_queries:
        audio_embeddings = _audio_query_embeddings(items, audio_dir, settings)
    queries = QueryEmbeddings(embed_text, audio_embeddings)
    rows = _run_conditions(separate, items, audio_dir, queries, settings)
    results = {
        "benchmark": settings.benchmark,
        "n_mixtures": len(items),
        "sdr_definition": SDR_DEFINITION,
        "shot_selection": (
            "first" if settings.shot_seed is None else f"random:{settings.shot_seed}"
        ),
        "conditions": {},
    }
    return _summarize_conditions(rows, results, settings.out_dir)
