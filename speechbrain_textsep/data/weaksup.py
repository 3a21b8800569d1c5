"""Training items of weakly-supervised bi-modal separation (Mahmud et al., 2024).

A training item holds ``n_mixtures`` (N, 2 in the paper) mixtures, each with
a caption and ``n_prompts`` (P) single-source prompts with their weights:

- **labelled clips** (manifests ``ID, audio, ..., label, duration``: the
  SynthMUSIC, MUSIC and VGGSound ``train.csv``): each mixture is the sum of
  ``n_sources`` clips (random crops, random gains); the classes of all the
  clips of one item are distinct, so that no caption or prompt of one
  mixture describes a sound of another. Caption ``label_mixture_caption``
  ("The sound mixture of {c1}, {c2} and {c3}"), prompts ``label_caption``
  of each label ("The sound of {c}");
- **captioned clips** (manifests ``ID, audio, caption, duration``:
  AudioCaps): each mixture is one natural recording; its prompts are the
  clauses of its caption (``split_caption``);
- **single-source items** (the supervised part of the semi-supervised
  objective): N single clips of distinct classes drawn from a fixed subset
  of the labelled clips (``single_source_fraction`` of each class, chosen
  from ``seed``); caption and every prompt are "The sound of {c}". As in
  the paper's semi-supervised tables (5 % single-source, 95 % multi-source),
  the mixtures are made of the other clips.

Prompts are drawn by ``sample_prompts`` (missing ones duplicated, each copy
weighted 1/copies). Item ``i`` of epoch ``e`` is drawn from its own
generator, ``random.Random(f"{seed}:{e}:{i}")``: an epoch is reproducible
and independent of the data loader's order and workers.

Validation and test use fixed 2-source mixtures of held-out clips
(:class:`MixtureListSet`, the ``test_mixtures.csv`` layout).

Authors
 * speechbrain-textsep contributors
"""

import csv
import math
import os
import random

import torch
from speechbrain.dataio.batch import PaddedBatch

from speechbrain_textsep.data.clips import crop_bounds
from speechbrain_textsep.processing.audio_io import audio_info, fit_length, read_audio
from speechbrain_textsep.utils.caption_split import (
    label_mixture_caption,
    sample_prompts,
    split_caption,
)
from speechbrain_textsep.utils.captions import label_caption

__all__ = [
    "WeakSupTrainSet",
    "collate_items",
    "MixtureListSet",
    "read_rows",
    "read_segment",
    "single_source_subset",
]

#: Columns of a pair list (``test_mixtures.csv``).
MIXTURE_COLUMNS = ("ID", "source1", "label1", "source2", "label2")


def read_rows(csv_path, required=("ID", "audio", "duration")):
    """The rows of a CSV manifest, checked for its columns.

    Arguments
    ---------
    csv_path : str
        The manifest.
    required : tuple of str
        Columns it must have.

    Returns
    -------
    list of dict

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "clips.csv")
    >>> _ = open(path, "w").write("ID,audio,duration\\na,a.wav,1.0\\n")
    >>> read_rows(path)
    [{'ID': 'a', 'audio': 'a.wav', 'duration': '1.0'}]
    >>> read_rows(path, required=("ID", "label"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: .../clips.csv has no column 'label' (columns: ID, audio, duration)
    """
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"manifest not found: {csv_path}")
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        rows = list(reader)
    for column in required:
        if column not in columns:
            raise ValueError(
                f"{csv_path} has no column {column!r} (columns: {', '.join(columns)})"
            )
    if not rows:
        raise ValueError(f"{csv_path} lists no clip")
    return rows


def read_segment(path, segment_samples, sample_rate, rng=None):
    """A mono crop of ``segment_samples`` at ``sample_rate`` (zero-padded if short).

    Arguments
    ---------
    path : str
        Audio file (any rate: the crop is resampled to ``sample_rate``).
    segment_samples : int
        Length of the crop at ``sample_rate``.
    sample_rate : int
        Rate of the output.
    rng : random.Random, optional
        Random crop drawn from it; None: the centred crop.

    Returns
    -------
    torch.Tensor
        ``[segment_samples]`` float32 samples.
    """
    info = audio_info(path)
    native_segment = math.ceil(segment_samples * int(info.samplerate) / sample_rate)
    start, stop = crop_bounds(
        int(info.frames), native_segment, rng is not None, rng or random
    )
    wav, _ = read_audio(path, start, stop, mono=True, sample_rate=sample_rate)
    return fit_length(wav, segment_samples)


def single_source_subset(rows, fraction, seed=1234):
    """The clips kept as single-source data: ``fraction`` of every class.

    Each class keeps ``max(1, round(fraction * n))`` of its ``n`` clips
    (none for ``fraction`` 0), chosen by ``random.Random(f"{seed}:{label}")``
    from the clips sorted by ID: the same subset whatever the order of the
    manifest.

    Arguments
    ---------
    rows : list of dict
        Manifest rows with ``ID`` and ``label``.
    fraction : float
        In ``[0, 1]``.
    seed : int
        Seed of the choice.

    Returns
    -------
    list of dict
        The chosen rows, by class then ID.

    Example
    -------
    >>> rows = [{"ID": f"{c}{i}", "label": c} for c in "ab" for i in range(10)]
    >>> [r["ID"] for r in single_source_subset(rows, 0.2)]
    ['a0', 'a8', 'b2', 'b4']
    >>> len(single_source_subset(rows, 0.01)), len(single_source_subset(rows, 0))
    (2, 0)
    """
    fraction = float(fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"single_source_fraction must be in [0, 1], got {fraction}")
    if fraction == 0.0:
        return []
    chosen = []
    for label, group in sorted(group_by_label(rows).items()):
        group = sorted(group, key=lambda row: row["ID"])
        keep = max(1, round(fraction * len(group)))
        picked = random.Random(f"{seed}:{label}").sample(group, keep)
        chosen += sorted(picked, key=lambda row: row["ID"])
    return chosen


def group_by_label(rows):
    """``{label: [rows]}`` in order of first appearance."""
    groups = {}
    for row in rows:
        groups.setdefault(row["label"], []).append(row)
    return groups


class WeakSupTrainSet(torch.utils.data.Dataset):
    """Training items of N captioned mixtures (module docstring).

    An item is a dict: ``id``; ``mixtures`` ``[N, L]`` (each mixture the
    plain sum of its gained clips: the model's input is their mean, see
    :class:`~speechbrain_textsep.training.weaksup_brain.WeakSupBrain`);
    ``captions`` (N texts); ``prompts`` (N lists of P texts);
    ``prompt_weights`` ``[N, P]``; ``single_source`` (bool); ``labels`` and
    ``clips`` (N lists: the classes and clip IDs of each mixture; no labels
    for captioned clips).

    Arguments
    ---------
    csv_path : str
        Manifest of labelled clips (``label`` column) or of captioned
        natural mixtures (``caption`` column).
    n_items : int
        Items per epoch (``steps_per_epoch * batch_size``).
    segment_samples : int
        Samples per crop at ``sample_rate``.
    sample_rate : int
        Rate of the model.
    n_mixtures : int
        N, mixtures per item (2).
    n_sources : int
        Clips per mixture of labelled clips (2, 3 or 4).
    n_prompts : int, optional
        P, prompts per mixture (default ``n_sources``).
    single_source_fraction : float
        Fraction of every class kept as single-source clips.
    single_source_share : float
        Probability that an item is a single-source item (0: weak items
        only, 1: single-source items only).
    gain_min, gain_max : float
        Every clip is scaled by a gain drawn from ``U[gain_min, gain_max)``.
    seed : int
        Seed of every draw.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_textsep.data.synthmusic import prepare_synthmusic
    >>> folder = tempfile.mkdtemp()
    >>> _ = prepare_synthmusic(folder, classes=["flute", "tuba", "cello"],
    ...     n_train=2, n_valid=1, n_test=1, duration=0.5, n_frames=1,
    ...     n_test_mixtures=1)
    >>> data = WeakSupTrainSet(os.path.join(folder, "train.csv"), 4, 4000,
    ...     16000, n_mixtures=1, n_sources=3)
    >>> item = data[0]
    >>> item["mixtures"].shape, item["prompt_weights"].tolist()
    (torch.Size([1, 4000]), [[1.0, 1.0, 1.0]])
    >>> sorted(item["prompts"][0]) == sorted(
    ...     label_caption(c) for c in ["flute", "tuba", "cello"])
    True
    """

    def __init__(
        self,
        csv_path,
        n_items,
        segment_samples,
        sample_rate,
        n_mixtures=2,
        n_sources=2,
        n_prompts=None,
        single_source_fraction=0.0,
        single_source_share=0.0,
        gain_min=1.0,
        gain_max=1.0,
        seed=1234,
    ):
        self.rows = read_rows(csv_path)
        self.labelled = "label" in self.rows[0]
        if not self.labelled and "caption" not in self.rows[0]:
            raise ValueError(f"{csv_path} has neither a 'label' nor a 'caption' column")
        self.n_items = int(n_items)
        self.segment_samples = int(segment_samples)
        self.sample_rate = int(sample_rate)
        self.n_mixtures = int(n_mixtures)
        self.n_sources = int(n_sources)
        self.n_prompts = int(n_prompts or n_sources)
        self.share = float(single_source_share)
        self.gains = (float(gain_min), float(gain_max))
        self.seed = seed
        self.epoch = 0
        self._check(csv_path, single_source_fraction)
        if self.labelled:
            single = single_source_subset(self.rows, single_source_fraction, seed)
            chosen = {row["ID"] for row in single}
            self.by_label = group_by_label(
                [row for row in self.rows if row["ID"] not in chosen]
            )
            self.single_by_label = group_by_label(single)
            self._check_pools(csv_path)

    def _check(self, csv_path, fraction):
        """Clear errors for settings the manifest cannot serve."""
        if self.n_items < 1 or self.n_mixtures < 1 or self.n_prompts < 1:
            raise ValueError("n_items, n_mixtures and n_prompts must be positive")
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"single_source_share must be in [0, 1], got {self.share}")
        if not self.labelled:
            if self.share > 0 or float(fraction) > 0:
                raise ValueError(
                    f"{csv_path} has captions, not labels: it has no single-source "
                    "clips (set single_source_fraction and single_source_share to 0)"
                )
            return
        if self.share > 0 and float(fraction) == 0:
            raise ValueError(
                "single-source items (single_source_share > 0) need "
                "single_source_fraction > 0"
            )

    def _check_pools(self, csv_path):
        """Enough classes for the items that will be drawn."""
        need = self.n_mixtures * self.n_sources
        if self.share < 1 and need > len(self.by_label):
            raise ValueError(
                f"{self.n_mixtures} mixtures of {self.n_sources} distinct classes "
                f"need {need} classes; {csv_path} has {len(self.by_label)} outside "
                "the single-source clips"
            )
        if self.share > 0 and self.n_mixtures > len(self.single_by_label):
            raise ValueError(
                f"{self.n_mixtures} single-source clips of distinct classes need "
                f"{self.n_mixtures} classes; the single-source subset has "
                f"{len(self.single_by_label)}"
            )

    def set_epoch(self, epoch):
        """Draws the items of another epoch (called at every epoch start)."""
        self.epoch = int(epoch)

    def __len__(self):
        return self.n_items

    def __getitem__(self, index):
        if not 0 <= index < self.n_items:
            raise IndexError(f"item {index} of {self.n_items}")
        rng = random.Random(f"{self.seed}:{self.epoch}:{index}")
        single = self.share > 0 and rng.random() < self.share
        if single:
            mixtures, prompts = self._single_sources(rng)
        elif self.labelled:
            mixtures, prompts = self._labelled_mixtures(rng)
        else:
            mixtures, prompts = self._captioned_mixtures(rng)
        return {
            "id": f"e{self.epoch}_{index}",
            "mixtures": torch.stack([m["audio"] for m in mixtures]),
            "captions": [m["caption"] for m in mixtures],
            "labels": [m["labels"] for m in mixtures],
            "clips": [m["clips"] for m in mixtures],
            "prompts": [p[0] for p in prompts],
            "prompt_weights": torch.tensor([p[1] for p in prompts]),
            "single_source": single,
        }

    def _read(self, row, rng):
        """A random crop of a clip at a random gain."""
        gain = rng.uniform(*self.gains)
        return gain * read_segment(
            row["audio"], self.segment_samples, self.sample_rate, rng
        )

    def _labelled_mixtures(self, rng):
        """N mixtures of ``n_sources`` clips, all of distinct classes."""
        labels = rng.sample(sorted(self.by_label), self.n_mixtures * self.n_sources)
        mixtures, prompts = [], []
        for n in range(self.n_mixtures):
            chosen = labels[n * self.n_sources : (n + 1) * self.n_sources]
            clips = [rng.choice(self.by_label[label]) for label in chosen]
            audio = torch.stack([self._read(row, rng) for row in clips]).sum(0)
            mixtures.append(
                {
                    "audio": audio,
                    "caption": label_mixture_caption(chosen),
                    "labels": chosen,
                    "clips": [row["ID"] for row in clips],
                }
            )
            clauses = [label_caption(label) for label in chosen]
            prompts.append(sample_prompts(clauses, self.n_prompts, rng))
        return mixtures, prompts

    def _captioned_mixtures(self, rng):
        """N natural recordings with the clauses of their captions as prompts."""
        rows = rng.sample(self.rows, self.n_mixtures)
        mixtures, prompts = [], []
        for row in rows:
            mixtures.append(
                {
                    "audio": self._read(row, rng),
                    "caption": row["caption"],
                    "labels": [],
                    "clips": [row["ID"]],
                }
            )
            clauses = split_caption(row["caption"]) or [row["caption"]]
            prompts.append(sample_prompts(clauses, self.n_prompts, rng))
        return mixtures, prompts

    def _single_sources(self, rng):
        """N single-source clips of distinct classes; every prompt its caption."""
        labels = rng.sample(sorted(self.single_by_label), self.n_mixtures)
        mixtures, prompts = [], []
        for label in labels:
            row = rng.choice(self.single_by_label[label])
            caption = label_caption(label)
            mixtures.append(
                {
                    "audio": self._read(row, rng),
                    "caption": caption,
                    "labels": [label],
                    "clips": [row["ID"]],
                }
            )
            prompts.append(sample_prompts([caption], self.n_prompts, rng))
        return mixtures, prompts


class MixtureListSet(torch.utils.data.Dataset):
    """Fixed 2-source mixtures of held-out clips (validation), centred crops.

    Arguments
    ---------
    mixtures_csv : str
        Pair list ``ID, source1, label1, source2, label2`` (clip IDs), e.g.
        written by
        :func:`~speechbrain_textsep.evaluation.protocol.make_protocol_pairs`.
    clips_csv : str
        Manifest of the clips.
    segment_samples : int
        Samples per crop at ``sample_rate``.
    sample_rate : int
        Rate of the model.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_textsep.data.synthmusic import prepare_synthmusic
    >>> folder = tempfile.mkdtemp()
    >>> _ = prepare_synthmusic(folder, classes=["flute", "tuba"], n_train=1,
    ...     n_valid=1, n_test=1, duration=0.5, n_frames=1, n_test_mixtures=1)
    >>> data = MixtureListSet(os.path.join(folder, "test_mixtures.csv"),
    ...     os.path.join(folder, "test.csv"), 4000, 16000)
    >>> item = data[0]
    >>> item["sources"].shape, sorted(item["labels"])
    (torch.Size([2, 4000]), ['flute', 'tuba'])
    """

    def __init__(self, mixtures_csv, clips_csv, segment_samples, sample_rate):
        self.clips = {row["ID"]: row for row in read_rows(clips_csv)}
        self.pairs = read_rows(mixtures_csv, required=MIXTURE_COLUMNS)
        missing = [
            pair[key]
            for pair in self.pairs
            for key in ("source1", "source2")
            if pair[key] not in self.clips
        ]
        if missing:
            raise KeyError(f"clips {missing[:5]} of {mixtures_csv} not in {clips_csv}")
        self.segment_samples = int(segment_samples)
        self.sample_rate = int(sample_rate)

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, index):
        pair = self.pairs[index]
        sources = [
            read_segment(
                self.clips[pair[key]]["audio"], self.segment_samples, self.sample_rate
            )
            for key in ("source1", "source2")
        ]
        return {
            "id": pair["ID"],
            "sources": torch.stack(sources),
            "labels": [pair["label1"], pair["label2"]],
        }


def collate_items(examples):
    """A :class:`PaddedBatch` that keeps lists (captions, prompts) per item.

    SpeechBrain's default collate would transpose the nested lists of
    strings; here ``batch.captions[b]`` is the list of item ``b``.

    Example
    -------
    >>> batch = collate_items([{"id": "a", "x": torch.ones(2), "t": ["p", "q"]},
    ...                        {"id": "b", "x": torch.zeros(2), "t": ["r", "s"]}])
    >>> batch.x.data.shape, batch.t
    (torch.Size([2, 2]), [['p', 'q'], ['r', 's']])
    """
    return PaddedBatch(examples, nonpadded_stack=False)
