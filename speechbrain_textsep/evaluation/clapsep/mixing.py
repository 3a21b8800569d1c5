"""Clips and 0 dB mixtures of the CLAPSep evaluation, as the authors make them.

- **Clips** (:func:`load_clip`): read mono at 32 kHz (``librosa.load``, soxr
  resampling), cut to 10 s, zero-padded to 10 s.
- **Mixing** (:func:`mix_at_snr`, the package's one mixer,
  :func:`speechbrain_textsep.processing.mixing.mix_at_snr`, re-exported
  here): the interferer is scaled so that its energy equals the target's at
  0 dB (``torchaudio.functional.add_noise`` with ``snr=0``, energies over
  the padded 10 s), ``mixture = target + interferer``; if the mixture's peak
  exceeds 1, mixture and target are both multiplied by ``0.9 / peak``
  (``limit=1.0, peak=0.9``); a silent clip is an error.

Authors
 * speechbrain-textsep contributors
"""

import os

import numpy as np
import torch

from speechbrain_textsep.processing.mixing import mix_at_snr

__all__ = ["benchmark_mixture", "load_clip", "mix_at_snr"]


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

    Example
    -------
    >>> import tempfile, soundfile
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> soundfile.write(path, np.full(8000, 0.5), 16000)
    >>> clip = load_clip(path, sample_rate=16000, seconds=1.0)
    >>> clip.shape, clip[:8000].mean().item(), clip[8000:].abs().max().item()
    (torch.Size([16000]), 0.5, 0.0)
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


def benchmark_mixture(
    item, audio_dir, sample_rate=32000, clip_seconds=10.0, snr_db=0.0
):
    """The mixture and the target of one benchmark item (:func:`mix_at_snr`).

    Arguments
    ---------
    item : speechbrain_textsep.evaluation.clapsep.lists.BenchmarkItem
        The mixture to build.
    audio_dir : str
        Folder of its target and interferer clips.
    sample_rate : int
        Rate of the clips (32000).
    clip_seconds : float or None
        Clips are cut / zero-padded to this length (10 s); None: the target's
        length (the interferer is cut / padded to it).
    snr_db : float
        Mixing SNR (0 dB).

    Returns
    -------
    mixture, target : torch.Tensor
        ``[L]`` each (the target as scaled with the mixture).

    Example
    -------
    >>> import tempfile, soundfile
    >>> from speechbrain_textsep.evaluation.clapsep.lists import BenchmarkItem
    >>> folder = tempfile.mkdtemp()
    >>> soundfile.write(os.path.join(folder, "a.wav"), np.full(100, 0.1), 8000)
    >>> soundfile.write(os.path.join(folder, "b.wav"), np.full(50, 0.5), 8000)
    >>> item = BenchmarkItem("a.wav", "a", "b.wav", "b")
    >>> mixture, target = benchmark_mixture(item, folder, 8000, None)
    >>> mixture.shape, round(mixture[0].item(), 3), round(mixture[-1].item(), 3)
    (torch.Size([100]), 0.241, 0.1)
    """
    target = load_clip(
        os.path.join(audio_dir, item.source_file), sample_rate, clip_seconds
    )
    interferer = load_clip(
        os.path.join(audio_dir, item.noise_file), sample_rate, clip_seconds
    )
    if clip_seconds is None:
        interferer = torch.nn.functional.pad(
            interferer, (0, max(0, target.numel() - interferer.numel()))
        )
        interferer = interferer[: target.numel()]
    try:
        mixture, target, _ = mix_at_snr(target, interferer, snr_db, 1.0, 0.9)
    except ValueError as e:
        raise ValueError(f"{item.source_file} + {item.noise_file}: {e}") from e
    return mixture, target
