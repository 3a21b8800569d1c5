"""The CLAPSep evaluation (Ma et al., 2024): five benchmarks, P / N / P+N queries.

The paper evaluates on AudioCaps (test), AudioSet (eval), ESC-50,
FSDKaggle2018 (test) and MUSIC21 with fixed lists of 2-source mixtures that
the authors publish in their repository (``metadata/evaluation/*.csv`` of
Aisaka0v0/CLAPSep) with the columns
``source_file, positive_caption, noise_file, negative_caption``. The label
datasets already have their captions written as "The sound of {label}" in
those files (:func:`label_query` makes such captions for new lists, see
:func:`make_label_benchmark`). ESC-50, FSDKaggle2018 and MUSIC21 come with
``*_eval_samples.csv`` files (``class, file``: a caption and a Python list of
10 query clips) for the audio queries.

What this module reproduces of the authors' evaluation code
(``evaluation/eval_audiocaps.py`` and ``model/CLAPSep.py``):

- **Clips**: read mono at 32 kHz (``librosa.load``, soxr resampling), cut to
  10 s, zero-padded to 10 s (:func:`load_clip`).
- **Mixing at 0 dB** (:func:`mix_at_snr`): the noise is scaled so that its
  energy equals the target's (``torchaudio.functional.add_noise`` with
  ``snr=0``, energies over the padded 10 s), ``mixture = target + noise``;
  if the mixture's peak exceeds 1, mixture and target are both multiplied by
  ``0.9 / peak``.
- **Metrics** (:func:`clapsep_metrics`): the paper's equation (15) defines
  SDR as the plain ratio ``10 log10(|s|^2 / |s - s_hat|^2)``, but the
  numbers of its tables come from torchmetrics'
  ``signal_distortion_ratio``, a **BSS-Eval-style SDR**: the estimate is
  projected onto the reference filtered by the best 512-tap FIR filter
  (least squares over the whole clip, one reference) and
  ``SDR = 10 log10(|P s_hat|^2 / |s_hat - P s_hat|^2)``; this is the SDR
  of BSS Eval's ``bss_eval_sources`` (mir_eval, fast_bss_eval; v3 style,
  one window over the whole clip, 512-tap filters), which depends on the
  target only. It is *not* museval's default v4 "images" SDR, which has no
  distortion filter and equals the plain SDR (the CLIPSep protocol of this
  package). :func:`bss_sdr` computes it as torchmetrics (float64,
  unit-norm signals, Toeplitz solve); the tests check it against
  ``mir_eval.separation.bss_eval_sources``. SI-SDR is torchmetrics'
  ``scale_invariant_signal_distortion_ratio`` *without* zero-mean
  (:func:`si_sdr_authors`), as in the paper's equation (16). The rows also
  hold the plain SNR and its improvement (``snr``, ``snri``: what AudioSep
  calls "SDRi") for comparison with other papers; the summary's
  ``sdri`` is the BSS-style one of the CLAPSep tables. Improvements are over
  the mixture; mean and sample std (``ddof=1``, torch's ``std`` as the
  authors) over all mixtures.
- **Queries**: text queries are the captions verbatim; ``P`` gives the
  positive embedding only, ``N`` the negative only (the other half zeros),
  ``P+N`` both. Audio queries (``modality="audio"``) average the CLAP audio
  embeddings of the first ``k`` (1, 5 or 10) query clips of the caption's
  class (or a seeded random ``k``-subset); ``"audio+text"`` averages the
  audio and text embeddings of each side (``a = 0.5``, as the paper's test).

Deliberate differences (see also the CLAPSep model):

- the authors' test code feeds the condition **without** the L2
  normalisation of their training (BUG); our :class:`CLAPSep` always
  normalises inside its forward, so this evaluation sees the conditions of
  training;
- their query CLAP runs a SpecAugment forward hook that stays on at
  evaluation (BUG); embeddings given to :func:`evaluate_clapsep_benchmark`
  are expected without augmentation (``CLAPQueryEncoder`` never augments);
- their script for audio queries is not public: the paper only says that
  ``k`` clips per class are averaged; which ``k`` of the 10 listed clips is
  our choice (the first ``k``, or a random subset with ``shot_seed``);
  the query clips are embedded at their own length (the CLAP encoder
  handles the 10-s input), not padded by this module.

The evaluation is independent of any interface class: it takes a
``separate(mixture [1, L], positive [1, D] or None, negative [1, D] or None)
-> [1, L]`` callable and embedding callables; :func:`clapsep_separate_fn`
and :func:`clap_embed_fns` make them from a bare :class:`CLAPSep` and a
:class:`~speechbrain_textsep.encoders.clap.CLAPQueryEncoder` (or from the
modules of a pretrained interface: ``separator.mods.clapsep`` and
``separator.mods.clap``).

Authors
 * speechbrain-textsep contributors
"""

import ast
import csv
import json
import math
import os
import random
import re
from dataclasses import dataclass

import numpy as np
import torch

from speechbrain_textsep.evaluation.report import write_results

__all__ = [
    "BENCHMARKS",
    "BenchmarkItem",
    "MODALITIES",
    "VALENCES",
    "average_shots",
    "bss_sdr",
    "clap_embed_fns",
    "clapsep_metrics",
    "clapsep_separate_fn",
    "condition_name",
    "evaluate_clapsep_benchmark",
    "label_query",
    "load_clip",
    "make_label_benchmark",
    "mix_at_snr",
    "read_benchmark_csv",
    "read_query_samples",
    "results_table",
    "si_sdr_authors",
    "snr_authors",
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
#: Query valences: positive only, negative only, both.
VALENCES = ("P", "N", "P+N")
#: Query modalities (``audio+text``: both embeddings averaged, a = 0.5).
MODALITIES = ("text", "audio", "audio+text")
#: Columns of the authors' mixture lists.
CSV_COLUMNS = ("source_file", "positive_caption", "noise_file", "negative_caption")
#: Columns of the authors' query-sample lists.
SAMPLES_COLUMNS = ("class", "file")
#: Caption template of the label datasets (the paper's "The sound of").
LABEL_TEMPLATE = "The sound of {}"
#: Which SDR the ``sdr``/``sdri`` columns hold (written into the summary).
SDR_DEFINITION = (
    "sdr/sdri: BSS-Eval-style SDR (torchmetrics signal_distortion_ratio = "
    "bss_eval_sources SDR: projection onto the reference filtered by the best "
    "512-tap FIR filter, whole clip), as the CLAPSep paper's tables; si_sdr/si_sdri: "
    "SI-SDR without zero-mean (torchmetrics scale_invariant_signal_distortion_"
    "ratio); snr/snri: plain SNR 10 log10(|s|^2/|s - s_hat|^2) (the paper's "
    "eq. 15, AudioSep's 'SDR'); improvements over the 0 dB mixture"
)


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
    """

    source_file: str
    positive_caption: str
    noise_file: str
    negative_caption: str


def label_query(label, template=LABEL_TEMPLATE):
    """The caption of a class label, as the paper: "The sound of {label}".

    Underscores become spaces (FSDKaggle2018 labels such as
    ``Acoustic_guitar``; the authors' ESC-50 and MUSIC21 lists use lower case,
    FSDKaggle2018 "The sound of" with a capital: give the label as wanted).

    Arguments
    ---------
    label : str
        Class label.
    template : str
        Template with one ``{}``.

    Returns
    -------
    str

    Example
    -------
    >>> label_query("Acoustic_guitar")
    'The sound of Acoustic guitar'
    """
    label = str(label).replace("_", " ").strip()
    if not label:
        raise ValueError("empty class label")
    return template.format(label)


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
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"benchmark list not found: {path}")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, skipinitialspace=True)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != CSV_COLUMNS:
            raise ValueError(
                f"{path}: expected the header {','.join(CSV_COLUMNS)} (the "
                f"authors' layout), got {header}"
            )
        items = []
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
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
        raise ValueError(f"{path} lists no mixtures")
    return items


def write_benchmark_csv(items, path):
    """Writes a mixture list in the authors' layout (see :func:`read_benchmark_csv`).

    Arguments
    ---------
    items : list of BenchmarkItem
        The mixtures.
    path : str or os.PathLike
        Output CSV; parent folders are created.
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
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"query-sample list not found: {path}")
    samples = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, skipinitialspace=True)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != SAMPLES_COLUMNS:
            raise ValueError(f"{path}: expected the header class,file, got {header}")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 2:
                raise ValueError(f"{path}, line {line}: expected 2 fields, got {row}")
            caption, files = row[0].strip(), row[1].strip()
            try:
                files = ast.literal_eval(files)
            except (ValueError, SyntaxError) as e:
                raise ValueError(
                    f"{path}, line {line}: the file field must be a Python list "
                    f"of names, got {files!r}"
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
            if caption in samples:
                raise ValueError(f"{path}, line {line}: class {caption!r} repeated")
            samples[caption] = list(files)
    if not samples:
        raise ValueError(f"{path} lists no query samples")
    return samples


def make_label_benchmark(labels, n_noises=1, seed=0, template=LABEL_TEMPLATE):
    """A mixture list as the paper builds it for labelled datasets.

    Every clip is a target mixed with ``n_noises`` (1 or 5 in the paper)
    other clips drawn at random among those of another class; captions are
    :func:`label_query` of the labels.

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
                    label_query(labels[target], template),
                    noise,
                    label_query(labels[noise], template),
                )
            )
    return items


def load_clip(path, sample_rate=32000, seconds=10.0):
    """Reads a clip as the authors: mono, resampled, cut and zero-padded.

    ``librosa.load(path, sr=sample_rate)`` (channel mean, soxr resampling),
    then the first ``seconds`` are kept and shorter clips are zero-padded to
    ``seconds``.

    Arguments
    ---------
    path : str or os.PathLike
        Audio file (any format libsndfile reads).
    sample_rate : int
        Output rate (32000).
    seconds : float or None
        Length of the output (10 s); None keeps the clip's own length.

    Returns
    -------
    torch.Tensor
        ``[L]`` float32.
    """
    import librosa

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"audio file not found: {path}")
    wav, _ = librosa.load(path, sr=sample_rate, mono=True)
    wav = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
    if wav.numel() == 0:
        raise ValueError(f"{path} holds no samples")
    if not torch.isfinite(wav).all():
        raise ValueError(f"{path} has NaN or infinite samples")
    if seconds is not None:
        length = int(round(seconds * sample_rate))
        wav = wav[:length]
        wav = torch.nn.functional.pad(wav, (0, length - wav.numel()))
    return wav


def mix_at_snr(target, noise, snr_db=0.0, peak=0.9):
    """Mixes as the authors' evaluation: noise scaled to the SNR, peak-limited.

    ``mixture = target + g noise`` with ``g = sqrt(E_t / (E_n 10^(snr/10)))``
    (``torchaudio.functional.add_noise``); if ``max |mixture| > 1``, mixture
    and target (and the scaled noise) are multiplied by ``peak / max``.

    Arguments
    ---------
    target : torch.Tensor
        ``[L]`` target.
    noise : torch.Tensor
        ``[L]`` interferer.
    snr_db : float
        Target-to-noise ratio in dB (0).
    peak : float
        Peak after limiting (0.9).

    Returns
    -------
    mixture, target, noise : torch.Tensor
        ``[L]`` each, ``mixture = target + noise``.

    Example
    -------
    >>> t = torch.tensor([0.5, -0.5, 0.5, -0.5])
    >>> m, t2, n = mix_at_snr(t, torch.tensor([1.0, 1.0, -1.0, -1.0]))
    >>> n.tolist(), m.tolist()  # noise scaled to the target's energy, peak 1
    ([0.5, 0.5, -0.5, -0.5], [1.0, 0.0, 0.0, -1.0])
    >>> m, t2, n = mix_at_snr(2 * t, torch.tensor([1.0, 1.0, -1.0, -1.0]))
    >>> [round(v, 3) for v in m.tolist()], [round(v, 3) for v in t2.tolist()]
    ([0.9, 0.0, 0.0, -0.9], [0.45, -0.45, 0.45, -0.45])
    """
    if target.dim() != 1 or target.shape != noise.shape:
        raise ValueError(
            "target and noise must be 1-D of the same length, got "
            f"{tuple(target.shape)} and {tuple(noise.shape)}"
        )
    target_energy = target.double().pow(2).sum()
    noise_energy = noise.double().pow(2).sum()
    if target_energy == 0:
        raise ValueError("the target is silent: a 0 dB mixture is undefined")
    if noise_energy == 0:
        raise ValueError("the noise is silent: a 0 dB mixture is undefined")
    gain = torch.sqrt(target_energy / (noise_energy * 10 ** (snr_db / 10)))
    noise = (noise.double() * gain).to(target.dtype)
    mixture = target + noise
    max_value = mixture.abs().max()
    if max_value > 1:
        scale = peak / max_value
        target, mixture, noise = target * scale, mixture * scale, noise * scale
    return mixture, target, noise


def bss_sdr(estimate, reference, filter_length=512):
    """BSS-Eval-style SDR of the CLAPSep tables (torchmetrics' algorithm).

    Both signals are scaled to unit norm; the best ``filter_length``-tap
    FIR filter of the reference is found by least squares (Toeplitz system
    of the reference autocorrelation, cross-correlation with the estimate),
    ``coh = |P s_hat|^2`` and ``SDR = 10 log10(coh / (1 - coh))``. In float64.

    Arguments
    ---------
    estimate : torch.Tensor
        ``[..., L]``.
    reference : torch.Tensor
        ``[..., L]``.
    filter_length : int
        Taps of the distortion filter (512).

    Returns
    -------
    torch.Tensor
        ``[...]`` float64 SDR in dB.

    Example
    -------
    >>> s = torch.randn(4000, generator=torch.Generator().manual_seed(0))
    >>> bool(bss_sdr(0.5 * s, s) > 100)  # a gain (a filter) is no distortion
    True
    >>> round(snr_authors(0.5 * s, s).item(), 2)  # but the plain SNR sees it
    6.02
    """
    if estimate.shape != reference.shape or estimate.dim() < 1:
        raise ValueError(
            "estimate and reference must have the same [..., time] shape, got "
            f"{tuple(estimate.shape)} and {tuple(reference.shape)}"
        )
    est = estimate.double()
    ref = reference.double()
    ref = ref / ref.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    est = est / est.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    length = est.shape[-1]
    n_fft = 2 ** math.ceil(math.log2(2 * length - 1))
    ref_f = torch.fft.rfft(ref, n=n_fft)
    autocorr = torch.fft.irfft(ref_f.real**2 + ref_f.imag**2, n=n_fft)
    autocorr = autocorr[..., :filter_length]
    crosscorr = torch.fft.irfft(ref_f.conj() * torch.fft.rfft(est, n=n_fft), n=n_fft)
    crosscorr = crosscorr[..., :filter_length]
    lags = torch.arange(filter_length)
    toeplitz = autocorr[..., (lags[:, None] - lags[None, :]).abs()]
    solution = torch.linalg.solve(toeplitz, crosscorr.unsqueeze(-1)).squeeze(-1)
    coh = (crosscorr * solution).sum(dim=-1)
    return 10 * torch.log10(coh / (1 - coh).clamp(min=1e-12))


def si_sdr_authors(estimate, reference):
    """SI-SDR as torchmetrics (no zero-mean, ``eps`` of float32), in float64.

    ``a = (<s_hat, s> + eps) / (|s|^2 + eps)``,
    ``SI-SDR = 10 log10((|a s|^2 + eps) / (|a s - s_hat|^2 + eps))``.

    Arguments
    ---------
    estimate : torch.Tensor
        ``[..., L]``.
    reference : torch.Tensor
        ``[..., L]``.

    Returns
    -------
    torch.Tensor
        ``[...]`` float64.

    Example
    -------
    >>> s = torch.tensor([1.0, -1.0, 1.0, -1.0])
    >>> e = torch.tensor([1.0, 1.0, -1.0, -1.0])
    >>> round(si_sdr_authors(2 * s + 0.2 * e, s).item(), 4)
    20.0
    """
    eps = torch.finfo(torch.float32).eps
    est, ref = estimate.double(), reference.double()
    alpha = ((est * ref).sum(-1, keepdim=True) + eps) / (
        ref.pow(2).sum(-1, keepdim=True) + eps
    )
    scaled = alpha * ref
    ratio = (scaled.pow(2).sum(-1) + eps) / ((scaled - est).pow(2).sum(-1) + eps)
    return 10 * torch.log10(ratio)


def snr_authors(estimate, reference):
    """Plain SNR as torchmetrics (``eps`` of float32), in float64.

    Arguments
    ---------
    estimate : torch.Tensor
        ``[..., L]``.
    reference : torch.Tensor
        ``[..., L]``.

    Returns
    -------
    torch.Tensor
        ``[...]`` float64 ``10 log10((|s|^2 + eps) / (|s - s_hat|^2 + eps))``.

    Example
    -------
    >>> s = torch.tensor([1.0, -1.0, 1.0, -1.0])
    >>> round(snr_authors(s + 0.1, s).item(), 4)
    20.0
    """
    eps = torch.finfo(torch.float32).eps
    est, ref = estimate.double(), reference.double()
    return 10 * torch.log10(
        (ref.pow(2).sum(-1) + eps) / ((ref - est).pow(2).sum(-1) + eps)
    )


def clapsep_metrics(estimate, target, mixture):
    """The scores of one separation: metrics, mixture metrics, improvements.

    Arguments
    ---------
    estimate : torch.Tensor
        ``[L]`` separated target.
    target : torch.Tensor
        ``[L]`` reference.
    mixture : torch.Tensor
        ``[L]`` input mixture.

    Returns
    -------
    dict
        Floats ``sdr, si_sdr, snr`` (of the estimate), ``sdr_mix,
        si_sdr_mix, snr_mix`` (of the mixture) and ``sdri, si_sdri, snri``
        (see :data:`SDR_DEFINITION`).

    Example
    -------
    >>> s = torch.tensor([1.0, -1.0, 1.0, -1.0] * 200)
    >>> n = torch.tensor([1.0, 1.0, -1.0, -1.0] * 200)
    >>> scores = clapsep_metrics(s + 0.1 * n, s, s + n)
    >>> round(scores["snri"], 3), round(scores["si_sdri"], 3)
    (20.0, 20.0)
    """
    estimate, target, mixture = (x.reshape(-1) for x in (estimate, target, mixture))
    if not (estimate.shape == target.shape == mixture.shape):
        raise ValueError(
            "estimate, target and mixture must have the same length, got "
            f"{estimate.numel()}, {target.numel()} and {mixture.numel()}"
        )
    pair = torch.stack([estimate, mixture]).cpu()
    reference = target.cpu().expand_as(pair)
    sdr = bss_sdr(pair, reference)
    si_sdr = si_sdr_authors(pair, reference)
    snr = snr_authors(pair, reference)
    scores = {}
    for name, values in (("sdr", sdr), ("si_sdr", si_sdr), ("snr", snr)):
        scores[name] = float(values[0])
        scores[f"{name}_mix"] = float(values[1])
    for name in ("sdr", "si_sdr", "snr"):
        scores[f"{name}i"] = scores[name] - scores[f"{name}_mix"]
    return scores


def clapsep_separate_fn(model, embedding_dim=512):
    """A ``separate(mixture, positive, negative)`` callable from a CLAPSep.

    Arguments
    ---------
    model : speechbrain_textsep.models.clapsep.CLAPSep
        The separator (set to eval mode here); its forward L2-normalises the
        condition.
    embedding_dim : int
        Size ``D`` of one query embedding (512).

    Returns
    -------
    callable
        ``separate(mixture [1, L], positive [1, D] or None, negative [1, D]
        or None) -> [1, L]`` under ``torch.no_grad()``, on the model's device.
    """
    from speechbrain_textsep.models.clapsep import clapsep_condition

    model.eval()

    def separate(mixture, positive=None, negative=None):
        device = next(model.parameters()).device
        positive = None if positive is None else positive.to(device).reshape(1, -1)
        negative = None if negative is None else negative.to(device).reshape(1, -1)
        condition = clapsep_condition(positive, negative, embedding_dim)
        with torch.no_grad():
            return model(mixture.to(device).reshape(1, -1), condition).cpu()

    return separate


def clap_embed_fns(query_encoder):
    """``embed_text`` and ``embed_audio`` callables of a CLAP query encoder.

    Arguments
    ---------
    query_encoder : speechbrain_textsep.encoders.clap.CLAPQueryEncoder
        The frozen CLAP (no augmentation).

    Returns
    -------
    embed_text : callable
        ``embed_text(list of str) -> [N, D]`` (texts verbatim).
    embed_audio : callable
        ``embed_audio(list of [L_i] tensors, sample_rate) -> [N, D]``.
    """

    def embed_text(texts):
        return query_encoder.encode_text(list(texts)).cpu()

    def embed_audio(clips, sample_rate):
        return torch.cat(
            [
                query_encoder.encode_audio(clip.reshape(1, -1), sample_rate=sample_rate)
                for clip in clips
            ]
        ).cpu()

    return embed_text, embed_audio


def average_shots(embeddings, shots):
    """Mean of the first ``shots`` embeddings (the paper's k-shot query).

    The mean is not re-normalised (the paper averages; CLAPSep normalises
    the whole condition).

    Arguments
    ---------
    embeddings : torch.Tensor
        ``[N, D]`` embeddings of the listed query clips, in order.
    shots : int
        ``k`` (1 <= k <= N).

    Returns
    -------
    torch.Tensor
        ``[D]``.

    Example
    -------
    >>> average_shots(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), 2)
    tensor([0.5000, 0.5000])
    """
    if not 1 <= shots <= embeddings.shape[0]:
        raise ValueError(
            f"{shots}-shot query asked but only {embeddings.shape[0]} query "
            "clips are listed for this class"
        )
    return embeddings[:shots].mean(dim=0)


def condition_name(modality, valence, shots=None):
    """Name of one evaluated condition, e.g. ``text_P+N`` or ``audio_5shot_N``.

    Example
    -------
    >>> condition_name("audio+text", "P", 10)
    'audio+text_10shot_P'
    """
    if modality == "text":
        return f"text_{valence}"
    return f"{modality}_{shots}shot_{valence}"


def results_table(results, metrics=("sdri", "si_sdri", "snri")):
    """A Markdown table of :func:`evaluate_clapsep_benchmark` results.

    One row per condition, ``mean ± std`` of each metric (dB).

    Arguments
    ---------
    results : dict
        What :func:`evaluate_clapsep_benchmark` returned (or its
        ``summary.json``).
    metrics : sequence of str
        Summary keys to show.

    Returns
    -------
    str

    Example
    -------
    >>> stats = {"mean": 1.5, "std": 0.25, "count": 4}
    >>> print(results_table({"conditions": {"text_P": {"sdri": stats}}},
    ...                     metrics=["sdri"]))
    | condition | n | SDRi (dB) |
    |---|---|---|
    | text_P | 4 | 1.50 ± 0.25 |
    """
    names = {"sdri": "SDRi", "si_sdri": "SI-SDRi", "snri": "SNRi"}
    header = ["condition", "n"] + [f"{names.get(m, m)} (dB)" for m in metrics]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for name, summary in results["conditions"].items():
        cells = [name, str(summary[metrics[0]]["count"])]
        cells += [
            f"{summary[m]['mean']:.2f} ± {summary[m]['std']:.2f}" for m in metrics
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _file_stem(name):
    """A file-system-safe version of a condition name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "", name.replace("+", "plus"))


def _check_choices(values, allowed, what):
    values = [values] if isinstance(values, str) else list(values)
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise ValueError(f"{what} must be among {allowed}, got {values}")
    return values


def evaluate_clapsep_benchmark(
    separate,
    embed_text,
    items,
    audio_dir,
    embed_audio=None,
    query_samples=None,
    query_audio_dir=None,
    modalities=("text",),
    valences=VALENCES,
    shots=(1, 5, 10),
    shot_seed=None,
    sample_rate=32000,
    clip_seconds=10.0,
    snr_db=0.0,
    benchmark="custom",
    out_dir=None,
    max_items=None,
    progress=False,
):
    """Evaluates a query-conditioned separator on a CLAPSep benchmark list.

    Every mixture is built once (:func:`load_clip`, :func:`mix_at_snr`) and
    separated under every condition (modality x shots x valence); each
    condition gets a per-item CSV and a summary JSON
    (:func:`~speechbrain_textsep.evaluation.report.write_results`), and
    ``summary.json`` gathers them.

    Arguments
    ---------
    separate : callable
        ``separate(mixture [1, L], positive [1, D] or None, negative [1, D]
        or None) -> [1, L]`` at ``sample_rate`` (see
        :func:`clapsep_separate_fn`).
    embed_text : callable or None
        ``embed_text(list of str) -> [N, D]`` (see :func:`clap_embed_fns`);
        needed for the ``text`` and ``audio+text`` modalities.
    items : list of BenchmarkItem or str
        The mixtures, or the path of a list in the authors' layout.
    audio_dir : str
        Folder of the target and noise clips.
    embed_audio : callable or None
        ``embed_audio(list of [L_i] tensors, sample_rate) -> [N, D]``;
        needed for audio queries.
    query_samples : dict or str or None
        ``{caption: [file, ...]}`` (or the path of a ``*_eval_samples.csv``)
        for audio queries.
    query_audio_dir : str or None
        Folder of the query clips (default: ``audio_dir``).
    modalities : sequence of str
        Among :data:`MODALITIES`.
    valences : sequence of str
        Among :data:`VALENCES`.
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

    Returns
    -------
    dict
        ``{"benchmark", "n_mixtures", "sdr_definition", "conditions":
        {name: summary}}``; a summary is ``{metric: {"mean", "std",
        "median", "sem", "count", "n_nan"}}``.
    """
    modalities = _check_choices(modalities, MODALITIES, "modalities")
    valences = _check_choices(valences, VALENCES, "valences")
    if isinstance(items, (str, os.PathLike)):
        items = read_benchmark_csv(items)
    items = list(items)[:max_items] if max_items is not None else list(items)
    if not items:
        raise ValueError("no mixtures to evaluate")
    audio_modalities = [m for m in modalities if m != "text"]
    if any(m != "audio" for m in modalities) and embed_text is None:
        raise ValueError("text queries need embed_text")
    shots = sorted({int(k) for k in shots}) if audio_modalities else [None]
    samples = {}
    if audio_modalities:
        if embed_audio is None:
            raise ValueError("audio queries need embed_audio")
        if query_samples is None:
            raise ValueError(
                "audio queries need query_samples ({caption: [files]} or the "
                "authors' *_eval_samples.csv)"
            )
        if isinstance(query_samples, (str, os.PathLike)):
            query_samples = read_query_samples(query_samples)
        needed = {i.positive_caption for i in items} | {
            i.negative_caption for i in items
        }
        missing = sorted(needed - set(query_samples))
        if missing:
            raise ValueError(
                f"no query clips for {len(missing)} captions of the list, e.g. "
                f"{missing[:3]}"
            )
        samples = _embed_query_samples(
            {c: query_samples[c] for c in sorted(needed)},
            embed_audio,
            query_audio_dir or audio_dir,
            sample_rate,
            max(shots),
            shot_seed,
        )

    text_cache = {}

    def text_embedding(caption):
        if caption not in text_cache:
            text_cache[caption] = embed_text([caption])[0].detach().cpu().float()
        return text_cache[caption]

    def side_embedding(modality, caption, k):
        if modality == "text":
            return text_embedding(caption)
        audio = average_shots(samples[caption], k)
        if modality == "audio":
            return audio
        return 0.5 * (audio + text_embedding(caption))

    conditions = [
        (condition_name(m, v, k if m != "text" else None), m, v, k)
        for m in modalities
        for k in (shots if m != "text" else [None])
        for v in valences
    ]
    rows = {name: [] for name, *_ in conditions}
    iterator = enumerate(items)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(items), desc=benchmark)
    for index, item in iterator:
        target = load_clip(
            os.path.join(audio_dir, item.source_file), sample_rate, clip_seconds
        )
        noise = load_clip(
            os.path.join(audio_dir, item.noise_file), sample_rate, clip_seconds
        )
        if clip_seconds is None:
            noise = torch.nn.functional.pad(
                noise, (0, max(0, target.numel() - noise.numel()))
            )
            noise = noise[: target.numel()]
        try:
            mixture, target, _ = mix_at_snr(target, noise, snr_db)
        except ValueError as e:
            raise ValueError(
                f"mixture {index} ({item.source_file} + {item.noise_file}): {e}"
            ) from e
        for name, modality, valence, k in conditions:
            positive = negative = None
            if "P" in valence:
                positive = side_embedding(modality, item.positive_caption, k)[None]
            if "N" in valence:
                negative = side_embedding(modality, item.negative_caption, k)[None]
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
            rows[name].append(row)

    results = {
        "benchmark": benchmark,
        "n_mixtures": len(items),
        "sdr_definition": SDR_DEFINITION,
        "shot_selection": "first" if shot_seed is None else f"random:{shot_seed}",
        "conditions": {},
    }
    for name, condition_rows in rows.items():
        if out_dir is not None:
            stem = os.path.join(out_dir, _file_stem(name))
            summary = write_results(
                condition_rows, f"{stem}.csv", f"{stem}_summary.json"
            )
        else:
            from speechbrain_textsep.evaluation.report import summarize

            summary = summarize(condition_rows)
        results["conditions"][name] = summary
    if out_dir is not None:
        with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as f:
            json.dump(_json_safe(results), f, indent=2)
            f.write("\n")
    return results


def _json_safe(value):
    """NaN / inf -> None, recursively (strict JSON)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _embed_query_samples(
    query_samples, embed_audio, audio_dir, sample_rate, max_shots, shot_seed
):
    """``{caption: [max_shots, D]}`` embeddings of the chosen query clips."""
    embeddings = {}
    for caption, files in query_samples.items():
        files = list(files)
        if len(files) < max_shots:
            raise ValueError(
                f"{max_shots}-shot queries asked but only {len(files)} query "
                f"clips are listed for {caption!r}"
            )
        if shot_seed is not None:
            files = random.Random(f"{shot_seed}:{caption}").sample(files, len(files))
        clips = [
            load_clip(os.path.join(audio_dir, name), sample_rate, None)
            for name in files[:max_shots]
        ]
        embeddings[caption] = embed_audio(clips, sample_rate).detach().cpu().float()
        if embeddings[caption].shape[0] != len(clips):
            raise ValueError(
                f"embed_audio returned {embeddings[caption].shape[0]} embeddings "
                f"for {len(clips)} clips"
            )
    return embeddings
