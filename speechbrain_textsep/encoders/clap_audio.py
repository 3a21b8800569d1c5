"""Audio preprocessing of the LAION-CLAP encoder: waveforms to HTSAT inputs.

laion_clap's preprocessing for models without fusion (``get_audio_features``
with "rand_trunc" and "repeatpad"), on torch tensors: resampling to the
CLAP rate (48 kHz), then a clip longer than ``clip_samples`` (10 s) is
cropped to it (:data:`~speechbrain_textsep.encoders.clap_config.CROP_MODES`)
and a shorter one is repeated ``int(clip_samples / length)`` times, then
zero-padded. As CLAPSep (``get_audio_embedding_from_data(...,
use_tensor=True)``), the waveform is not rounded to 16 bits as laion_clap's
numpy path does.

Authors
 * speechbrain-textsep contributors
"""

import torch
import torch.nn.functional as F

from speechbrain_textsep.encoders.clap_config import CROP_MODES
from speechbrain_textsep.processing.audio_io import resample

__all__ = ["check_crop", "clap_audio_input"]


def check_crop(crop):
    """Raises ValueError unless ``crop`` is one of :data:`CROP_MODES`.

    Arguments
    ---------
    crop : str
        A crop mode.

    Example
    -------
    >>> check_crop("center")
    >>> check_crop("middle")
    Traceback (most recent call last):
    ...
    ValueError: crop must be one of ('center', 'start', 'random'), got 'middle'
    """
    if crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {CROP_MODES}, got {crop!r}")


def _check_sample_rate(sample_rate):
    """``sample_rate`` as a positive int (integral floats accepted)."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int):
        if not (isinstance(sample_rate, float) and sample_rate.is_integer()):
            raise TypeError(f"sample_rate must be an int, got {sample_rate!r}")
        sample_rate = int(sample_rate)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    return sample_rate


def _waveform_items(waveforms):
    """A ``[N, L]`` / ``[L]`` tensor or a list of waveforms as a list of tensors."""
    if isinstance(waveforms, torch.Tensor):
        if waveforms.dim() == 1:
            waveforms = waveforms[None]
        if waveforms.dim() != 2:
            raise ValueError(
                f"audio tensor has shape {tuple(waveforms.shape)}; expected [N, L] "
                "(mono waveforms) or [L]"
            )
        items = list(waveforms)
    elif isinstance(waveforms, (list, tuple)):
        items = [torch.as_tensor(w) for w in waveforms]
    else:
        raise TypeError(
            f"waveforms must be a tensor or a list of waveforms, got {type(waveforms)}"
        )
    if not items:
        raise ValueError("empty audio batch")
    return items


def _checked_float(wav, index):
    """A mono, non-empty, finite waveform as float32 (``index`` for errors)."""
    if wav.dim() != 1:
        raise ValueError(
            f"audio item {index} has shape {tuple(wav.shape)}; expected a mono "
            "waveform [L]"
        )
    if wav.numel() == 0:
        raise ValueError(f"audio item {index} is empty (0 samples)")
    wav = wav.float()
    if not torch.isfinite(wav).all():
        raise ValueError(f"audio item {index} contains NaN or infinite samples")
    return wav


def _fit_clip(wav, max_len, crop):
    """Crops (``crop``) or repeat-pads a waveform to ``max_len`` samples."""
    length = wav.shape[0]
    if length > max_len:
        if crop == "center":
            start = (length - max_len) // 2
        elif crop == "start":
            start = 0
        else:
            start = int(torch.randint(length - max_len + 1, ()).item())
        return wav[start : start + max_len]
    if length < max_len:
        wav = wav.repeat(max_len // length)
        wav = F.pad(wav, (0, max_len - wav.shape[0]))
    return wav


def clap_audio_input(waveforms, sample_rate, audio_cfg, crop="center"):
    """Waveforms ready for the HTSAT: resampled, cropped or repeat-padded.

    laion_clap's preprocessing for models without fusion
    (``get_audio_features`` with "rand_trunc" and "repeatpad"): a clip
    longer than ``clip_samples`` (10 s) is cropped to it (see ``crop``); a
    shorter one is repeated ``int(clip_samples / length)`` times, then
    zero-padded.

    Arguments
    ---------
    waveforms : torch.Tensor or list
        ``[N, L]`` or ``[L]`` tensor, or a list of 1-D tensors / arrays of
        any lengths.
    sample_rate : int
        Sample rate of ``waveforms``; resampled to ``audio_cfg["sample_rate"]``.
    audio_cfg : dict
        The CLAP's ``audio_cfg`` (``sample_rate``, ``clip_samples``).
    crop : str
        One of :data:`CROP_MODES`.

    Returns
    -------
    torch.Tensor
        ``[N, clip_samples]`` float32.

    Example
    -------
    >>> from speechbrain_textsep.encoders.clap_config import TINY_CLAP_CFG
    >>> cfg = TINY_CLAP_CFG["audio_cfg"]
    >>> x = clap_audio_input(torch.ones(2, 144000), 48000, cfg)  # 3 s
    >>> x.shape, x[0, 3 * 144000 - 1].item(), x[0, 3 * 144000].item()
    (torch.Size([2, 480000]), 1.0, 0.0)
    >>> clap_audio_input(torch.randn(16000), 16000, cfg).shape  # resampled
    torch.Size([1, 480000])
    >>> clap_audio_input([torch.arange(720000.0)], 48000, cfg)[0, 0].item()
    120000.0
    """
    check_crop(crop)
    sample_rate = _check_sample_rate(sample_rate)
    items = _waveform_items(waveforms)
    target_rate = int(audio_cfg["sample_rate"])
    max_len = int(audio_cfg["clip_samples"])
    out = []
    for i, wav in enumerate(items):
        wav = _checked_float(wav, i)
        if sample_rate != target_rate:
            wav = resample(wav, sample_rate, target_rate)
        out.append(_fit_clip(wav, max_len, crop))
    return torch.stack(out)
