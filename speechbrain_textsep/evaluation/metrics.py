"""Separation metrics for query-conditioned sound separation.

Two families of metrics are provided:

* differentiable torch metrics working on ``[..., time]`` tensors: plain SDR
  (i.e. SNR, no scaling or filtering), scale-invariant SDR (SI-SDR) and their
  improvements over the mixture;
* BSS Eval v4 (SDR / SIR / SAR) through ``museval.metrics.bss_eval``, computed by
  default on a single window covering the whole clip, as in the CLIPSep
  evaluation protocol.

:func:`separation_scores` bundles everything for one query result.

Note on SpeechBrain reuse: ``speechbrain.nnet.losses.cal_si_snr`` computes the
same zero-mean SI-SNR, but it expects a ``[time, batch, sources]`` layout, returns
the negated value, has a fixed epsilon and multiplies its ``estimate_source``
argument in place (which fails on leaf tensors that require gradients), so the
torch metrics here are written directly in a few lines of torch. The tests check
:func:`si_sdr` against ``cal_si_snr``.

Authors
 * speechbrain-textsep contributors
"""

import math
import warnings

import numpy as np
import torch

DEFAULT_EPS = 1e-8

__all__ = [
    "bss_eval_v3_sdr",
    "bss_eval_v4",
    "sdr",
    "sdr_improvement",
    "separation_scores",
    "si_sdr",
    "si_sdr_improvement",
]


def _check_shapes(first, second, first_name, second_name):
    """Raises a ValueError naming both shapes when they differ."""
    if tuple(first.shape) != tuple(second.shape):
        raise ValueError(
            f"{first_name} and {second_name} must have the same shape, got "
            f"{first_name} {tuple(first.shape)} and "
            f"{second_name} {tuple(second.shape)}"
        )
    if first.dim() < 1:
        raise ValueError(
            f"expected tensors with a time axis ([..., time]), got 0-d "
            f"{first_name} and {second_name}"
        )


def _energy_ratio_db(signal, noise, eps):
    """Computes 10 log10(|signal|^2 / (|noise|^2 + eps) + eps) on the last axis.

    Same convention as SpeechBrain's ``cal_si_snr``: finite for a perfect
    estimate (about 10 log10(|signal|^2 / eps)) and about 10 log10(eps) when
    the signal part is zero.
    """
    signal_energy = signal.pow(2).sum(dim=-1)
    noise_energy = noise.pow(2).sum(dim=-1)
    return 10 * torch.log10(signal_energy / (noise_energy + eps) + eps)


def sdr(estimate, reference, eps=DEFAULT_EPS):
    """Plain signal-to-distortion ratio (SNR) in dB, without any scaling.

    ``SDR = 10 log10(|s|^2 / |s - s_hat|^2)`` computed along the last axis, as
    ``10 log10(|s|^2 / (|s - s_hat|^2 + eps) + eps)`` so that a perfect estimate
    gives a large but finite value. Differentiable.

    This is *not* the BSS Eval SDR (which first projects the estimate onto
    filtered versions of the references); see :func:`bss_eval_v4` for that.

    Arguments
    ---------
    estimate : torch.Tensor
        Estimated signal(s), shape ``[..., time]``.
    reference : torch.Tensor
        Reference signal(s), same shape as ``estimate``.
    eps : float
        Small constant for numerical stability.

    Returns
    -------
    torch.Tensor
        SDR in dB, shape ``[...]`` (the time axis is reduced).

    Example
    -------
    >>> reference = torch.tensor([1.0, -1.0, 1.0, -1.0])
    >>> estimate = reference + torch.tensor([0.1, 0.1, 0.1, 0.1])
    >>> round(sdr(estimate, reference).item(), 3)  # 10 log10(4 / 0.04)
    20.0
    >>> sdr(torch.zeros(3, 8), torch.randn(3, 8)).shape
    torch.Size([3])
    """
    _check_shapes(estimate, reference, "estimate", "reference")
    return _energy_ratio_db(reference, reference - estimate, eps)


def si_sdr(estimate, reference, eps=DEFAULT_EPS):
    """Scale-invariant SDR in dB (Le Roux et al., "SDR - half-baked or well
    done?", ICASSP 2019).

    Both signals are made zero-mean along the last axis, the reference is
    rescaled by ``alpha = <s_hat, s> / |s|^2`` and
    ``SI-SDR = 10 log10(|alpha s|^2 / |alpha s - s_hat|^2)``, with ``eps``
    added as in :func:`sdr` (and to ``|s|^2`` in ``alpha``). A silent estimate
    gives about ``10 log10(eps)`` (-80 dB). Invariant to rescaling the estimate.
    Differentiable.

    Arguments
    ---------
    estimate : torch.Tensor
        Estimated signal(s), shape ``[..., time]``.
    reference : torch.Tensor
        Reference signal(s), same shape as ``estimate``.
    eps : float
        Small constant for numerical stability.

    Returns
    -------
    torch.Tensor
        SI-SDR in dB, shape ``[...]``.

    Example
    -------
    >>> reference = torch.tensor([1.0, -1.0, 1.0, -1.0])
    >>> noise = torch.tensor([1.0, 1.0, -1.0, -1.0])  # orthogonal, zero-mean
    >>> round(si_sdr(reference + 0.1 * noise, reference).item(), 3)
    20.0
    >>> round(si_sdr(5.0 * (reference + 0.1 * noise), reference).item(), 3)
    20.0
    """
    _check_shapes(estimate, reference, "estimate", "reference")
    estimate = estimate - estimate.mean(dim=-1, keepdim=True)
    reference = reference - reference.mean(dim=-1, keepdim=True)
    dot = (estimate * reference).sum(dim=-1, keepdim=True)
    reference_energy = reference.pow(2).sum(dim=-1, keepdim=True)
    target = dot / (reference_energy + eps) * reference
    return _energy_ratio_db(target, estimate - target, eps)


def sdr_improvement(estimate, reference, mixture, eps=DEFAULT_EPS):
    """SDR improvement: ``sdr(estimate, reference) - sdr(mixture, reference)``.

    Arguments
    ---------
    estimate : torch.Tensor
        Estimated signal(s), shape ``[..., time]``.
    reference : torch.Tensor
        Reference signal(s), same shape.
    mixture : torch.Tensor
        Input mixture(s), same shape.
    eps : float
        Small constant for numerical stability.

    Returns
    -------
    torch.Tensor
        SDR improvement in dB, shape ``[...]``.

    Example
    -------
    >>> reference = torch.tensor([1.0, -1.0, 1.0, -1.0])
    >>> interference = torch.tensor([1.0, 1.0, -1.0, -1.0])
    >>> mixture = reference + interference  # 0 dB
    >>> estimate = reference + 0.1 * interference  # 20 dB
    >>> round(sdr_improvement(estimate, reference, mixture).item(), 3)
    20.0
    """
    _check_shapes(mixture, reference, "mixture", "reference")
    return sdr(estimate, reference, eps) - sdr(mixture, reference, eps)


def si_sdr_improvement(estimate, reference, mixture, eps=DEFAULT_EPS):
    """SI-SDR improvement: ``si_sdr(estimate, ref) - si_sdr(mixture, ref)``.

    Arguments
    ---------
    estimate : torch.Tensor
        Estimated signal(s), shape ``[..., time]``.
    reference : torch.Tensor
        Reference signal(s), same shape.
    mixture : torch.Tensor
        Input mixture(s), same shape.
    eps : float
        Small constant for numerical stability.

    Returns
    -------
    torch.Tensor
        SI-SDR improvement in dB, shape ``[...]``.

    Example
    -------
    >>> reference = torch.tensor([1.0, -1.0, 1.0, -1.0])
    >>> interference = torch.tensor([1.0, 1.0, -1.0, -1.0])
    >>> mixture = reference + interference
    >>> estimate = reference + 0.1 * interference
    >>> round(si_sdr_improvement(estimate, reference, mixture).item(), 3)
    20.0
    """
    _check_shapes(mixture, reference, "mixture", "reference")
    return si_sdr(estimate, reference, eps) - si_sdr(mixture, reference, eps)


def _import_museval_metrics():
    """Imports ``museval.metrics`` lazily, with clear errors."""
    try:
        from museval import metrics as museval_metrics
    except RuntimeError as err:
        message = str(err)
        if "ffmpeg" in message or "ffprobe" in message:
            raise RuntimeError(
                "BSS Eval needs `museval`, whose import (through musdb/stempeg) "
                "requires the `ffmpeg` and `ffprobe` binaries on PATH, and they "
                "could not be found. Install ffmpeg (e.g. `apt-get install "
                "ffmpeg` or `conda install -c conda-forge ffmpeg`) and retry."
            ) from err
        raise
    except ImportError as err:
        raise ImportError(
            "BSS Eval needs the `museval` package: `pip install museval`."
        ) from err
    return museval_metrics


def _as_numpy_sources(sources, name):
    """Converts a tensor/array to a float64 numpy array ``[n_sources, time]``."""
    if isinstance(sources, torch.Tensor):
        sources = sources.detach().cpu().double().numpy()
    sources = np.asarray(sources, dtype=np.float64)
    if sources.ndim == 1:
        sources = sources[None]
    if sources.ndim != 2:
        raise ValueError(
            f"{name} must be mono sources shaped [n_sources, time] (or [time]), "
            f"got shape {sources.shape}"
        )
    return sources


def bss_eval_v4(references, estimates, window=None, hop=None, filters_len=512):
    """BSS Eval v4 SDR / SIR / SAR through ``museval.metrics.bss_eval``.

    Estimate ``j`` is scored against reference ``j`` (no permutation search),
    with time-invariant distortion filters of ``filters_len`` taps
    (``bss_eval_images`` flavour, as in SiSEC 2018 / museval defaults).
    In this setting the scores of estimate ``j`` depend on all the references but
    only on estimate ``j``.

    ``museval`` is imported lazily: its import pulls musdb/stempeg, which require
    the ``ffmpeg`` and ``ffprobe`` binaries.

    Arguments
    ---------
    references : numpy.ndarray or torch.Tensor
        Reference sources, mono, shape ``[n_sources, time]`` (``[time]`` is read
        as one source). All must be non-silent.
    estimates : numpy.ndarray or torch.Tensor
        Estimated sources, same shape. All must be non-silent.
    window : int or None
        Window length in samples. ``None`` (default) evaluates one window
        covering the whole clip (the CLIPSep protocol).
    hop : int or None
        Hop length in samples, defaults to ``window``. Ignored if ``window`` is
        ``None``.
    filters_len : int
        Length of the distortion filters (museval default: 512).

    Returns
    -------
    dict
        ``{"sdr", "sir", "sar"}`` -> float64 numpy arrays of shape
        ``[n_sources]`` when ``window`` is ``None``, else
        ``[n_sources, n_windows]`` (museval gives NaN for windows where a
        reference or an estimate is silent).

    Raises
    ------
    ValueError
        On shape mismatch, non-finite values, or a silent (all-zero) reference
        or estimate, for which BSS Eval is undefined.
    RuntimeError
        If ``museval`` cannot be imported because ffmpeg/ffprobe are missing.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> references = rng.standard_normal((2, 8000))
    >>> estimates = references + 0.1 * references[::-1]
    >>> scores = bss_eval_v4(references, estimates)
    >>> sorted(scores), scores["sdr"].shape
    (['sar', 'sdr', 'sir'], (2,))
    >>> bool(abs(scores["sdr"][0] - 20.0) < 0.5)
    True
    """
    references = _as_numpy_sources(references, "references")
    estimates = _as_numpy_sources(estimates, "estimates")
    if references.shape != estimates.shape:
        raise ValueError(
            "references and estimates must have the same shape, got references "
            f"{references.shape} and estimates {estimates.shape}"
        )
    if references.shape[-1] == 0:
        raise ValueError("BSS Eval got empty signals (time length 0)")
    for name, sources in (("references", references), ("estimates", estimates)):
        if not np.all(np.isfinite(sources)):
            raise ValueError(f"{name} contain NaN or inf values")
    for name, sources in (("reference", references), ("estimate", estimates)):
        for index in np.flatnonzero(np.all(sources == 0, axis=-1)):
            raise ValueError(
                f"{name} source {index} is silent (all zeros); BSS Eval is "
                "undefined for silent sources"
            )

    whole_clip = window is None
    if whole_clip:
        window = hop = references.shape[-1]
    else:
        window = int(window)
        hop = window if hop is None else int(hop)
        if window <= 0 or hop <= 0:
            raise ValueError(f"window and hop must be positive, got {window}, {hop}")

    museval_metrics = _import_museval_metrics()
    # museval expects [n_sources, time, channels]
    sdr_, _isr, sir_, sar_, _perm = museval_metrics.bss_eval(
        references[..., None],
        estimates[..., None],
        window=window,
        hop=hop,
        compute_permutation=False,
        filters_len=filters_len,
        framewise_filters=False,
        bsseval_sources_version=False,
    )
    scores = {"sdr": sdr_, "sir": sir_, "sar": sar_}
    if whole_clip:  # one window: drop the frame axis
        scores = {key: value[:, 0] for key, value in scores.items()}
    return {key: np.asarray(value, dtype=np.float64) for key, value in scores.items()}


def _as_1d_float64_tensor(signal, name):
    """Converts a tensor/array to a 1-D float64 CPU tensor."""
    if isinstance(signal, torch.Tensor):
        signal = signal.detach().cpu().double()
    else:
        signal = torch.as_tensor(np.asarray(signal, dtype=np.float64))
    if signal.dim() != 1:
        raise ValueError(f"{name} must be 1-D [time], got shape {tuple(signal.shape)}")
    return signal


def separation_scores(estimate, target, interferer, mixture):
    """All the scores of one query result (one target, one interferer).

    * ``sdr_plain``, ``sdri_plain``: plain SDR (SNR, see :func:`sdr`) of the
      estimate and its improvement over the mixture;
    * ``si_sdr``, ``si_sdri``: SI-SDR and its improvement over the mixture;
    * ``sdr_bss_v4``, ``sir_bss_v4``, ``sar_bss_v4``: BSS Eval v4 of the
      target, whole clip as one window, with references ``[target,
      interferer]`` and estimates ``[estimate, mixture - estimate]``;
    * ``sdri_bss_v4``: ``sdr_bss_v4`` minus the BSS Eval v4 SDR of the
      mixture taken as the estimate of the target (same references).

    The keys are those of :mod:`speechbrain_textsep.utils.metric_keys`.

    The BSS Eval scores of an estimate depend only on that estimate (and on all
    the references), so the baseline needs a second ``bss_eval`` call: museval
    scores estimate ``j`` against reference ``j`` only, and duplicating the
    target reference to score the mixture in the same call would make the
    projection singular. If ``mixture - estimate`` is silent (the estimate is
    the mixture), the mixture is used as the second estimate instead, which
    does not change the scores of the target. If the estimate is silent, BSS
    Eval is undefined: the ``*_bss_v4`` scores are NaN and a warning is issued.

    Note that with the ``bss_eval_images`` flavour used by museval v4 (and by
    CLIPSep's evaluation, ``museval.metrics.bss_eval(refs, ests, np.inf)``),
    the error terms of the decomposition sum to ``estimate - target``, so
    ``sdr_bss_v4`` equals ``sdr_plain`` (and ``sdri_bss_v4`` equals
    ``sdri_plain``) up to numerical error; ``sir_bss_v4`` and ``sar_bss_v4``
    carry the extra information.

    Computations run in float64 on CPU.

    Arguments
    ---------
    estimate : torch.Tensor or numpy.ndarray
        Separated signal, shape ``[time]``.
    target : torch.Tensor or numpy.ndarray
        Target source, shape ``[time]``, non-silent.
    interferer : torch.Tensor or numpy.ndarray
        Interfering source(s) summed, shape ``[time]``, non-silent.
    mixture : torch.Tensor or numpy.ndarray
        Input mixture (usually ``target + interferer``), shape ``[time]``.

    Returns
    -------
    dict
        Plain Python floats (dB) for keys ``sdr_plain``, ``sdri_plain``,
        ``si_sdr``, ``si_sdri``, ``sdr_bss_v4``, ``sir_bss_v4``,
        ``sar_bss_v4``, ``sdri_bss_v4``.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> target, interferer = rng.standard_normal((2, 8000))
    >>> mixture = target + interferer
    >>> scores = separation_scores(target + 0.1 * interferer, target,
    ...                            interferer, mixture)
    >>> list(scores)  # doctest: +NORMALIZE_WHITESPACE
    ['sdr_plain', 'sdri_plain', 'si_sdr', 'si_sdri',
     'sdr_bss_v4', 'sir_bss_v4', 'sar_bss_v4', 'sdri_bss_v4']
    >>> [round(scores[key]) for key in ("sdr_plain", "sdri_plain", "si_sdr")]
    [20, 20, 20]
    >>> bool(scores["sdri_bss_v4"] > 15.0)
    True
    """
    estimate = _as_1d_float64_tensor(estimate, "estimate")
    target = _as_1d_float64_tensor(target, "target")
    interferer = _as_1d_float64_tensor(interferer, "interferer")
    mixture = _as_1d_float64_tensor(mixture, "mixture")
    _check_shapes(estimate, target, "estimate", "target")
    _check_shapes(interferer, target, "interferer", "target")
    _check_shapes(mixture, target, "mixture", "target")

    sdr_est = sdr(estimate, target).item()
    sdr_mix = sdr(mixture, target).item()
    si_sdr_est = si_sdr(estimate, target).item()
    si_sdr_mix = si_sdr(mixture, target).item()
    scores = {
        "sdr_plain": sdr_est,
        "sdri_plain": sdr_est - sdr_mix,
        "si_sdr": si_sdr_est,
        "si_sdri": si_sdr_est - si_sdr_mix,
    }

    references = torch.stack([target, interferer]).numpy()
    if not torch.any(estimate != 0):
        warnings.warn(
            "separation_scores: the estimate is silent (all zeros); BSS Eval is "
            "undefined, *_bss_v4 scores are NaN",
            stacklevel=2,
        )
        scores.update(
            sdr_bss_v4=math.nan,
            sir_bss_v4=math.nan,
            sar_bss_v4=math.nan,
            sdri_bss_v4=math.nan,
        )
        return scores

    residual = mixture - estimate
    if not torch.any(residual != 0):
        # Does not change the scores of estimate 0 (see docstring).
        residual = mixture
    bss = bss_eval_v4(references, torch.stack([estimate, residual]).numpy())
    bss_mix = bss_eval_v4(references, torch.stack([mixture, mixture]).numpy())
    scores.update(
        sdr_bss_v4=float(bss["sdr"][0]),
        sir_bss_v4=float(bss["sir"][0]),
        sar_bss_v4=float(bss["sar"][0]),
        sdri_bss_v4=float(bss["sdr"][0] - bss_mix["sdr"][0]),
    )
    return scores


def bss_eval_v3_sdr(estimate, reference, filter_length=512):
    """BSS Eval v3 SDR of one estimate against one reference (CLAPSep tables).

    The SDR of ``bss_eval_sources`` (mir_eval, fast_bss_eval) with a single
    reference and a single window covering the whole clip, computed as
    torchmetrics' ``signal_distortion_ratio`` (the numbers of the CLAPSep
    paper): both signals are scaled to unit norm, the best
    ``filter_length``-tap FIR filter of the reference is found by least
    squares (Toeplitz system of the reference autocorrelation,
    cross-correlation with the estimate), ``coh = |P s_hat|^2`` and
    ``SDR = 10 log10(coh / (1 - coh))``. A filtered (e.g. rescaled) reference
    is no distortion, unlike in :func:`sdr`; unlike :func:`bss_eval_v4`, the
    other sources play no part. Computed in float64.

    Arguments
    ---------
    estimate : torch.Tensor
        Estimated signal(s), shape ``[..., time]``.
    reference : torch.Tensor
        Reference signal(s), same shape.
    filter_length : int
        Taps of the distortion filter (512, as BSS Eval).

    Returns
    -------
    torch.Tensor
        SDR in dB, float64, shape ``[...]``.

    Example
    -------
    >>> s = torch.randn(4000, generator=torch.Generator().manual_seed(0))
    >>> bool(bss_eval_v3_sdr(0.5 * s, s) > 100)  # a gain is no distortion
    True
    >>> round(sdr(0.5 * s.double(), s.double()).item(), 2)  # the plain SDR sees it
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
