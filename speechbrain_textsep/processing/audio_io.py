"""The package's one audio reader, and what its callers need around it.

Every module that reads an audio file (the separation interfaces, the clip
datasets, the evaluation mixtures, the training recipes) goes through
:func:`read_audio`, so that they all share:

- **one error vocabulary**, naming the file: a missing file is a
  ``FileNotFoundError``; a file that exists but cannot be used (unreadable,
  empty, an empty crop, NaN or infinite samples) is an
  :class:`AudioReadError` (a ``ValueError``);
- **crops** given in samples or in seconds at the file's own rate, read
  without decoding the rest of the file;
- **one layout**: float32 ``[time, channels]`` (always 2-D), or ``[time]``
  with ``mono=True`` (channels averaged, as SpeechBrain's recipes do);
- **long files in blocks** (:func:`read_blocks`), checked as they are read:
  a truncated file or a NaN block is an :class:`AudioReadError` naming the
  file and the position;
- **one resampler** (:func:`resample`, ``torchaudio.functional.resample``).

It reads with soundfile, so every format libsndfile reads (wav, flac,
ogg/vorbis/opus, mp3, aiff...), and returns the samples soundfile decodes:
the same samples as ``sf.read(..., dtype="float32")`` and as SpeechBrain's
``read_audio({"file", "start", "stop"})``, which it replaces because that
one raises a bare ``RuntimeError`` for every problem, takes crops in samples
only, and checks nothing.

Authors
 * speechbrain-textsep contributors
"""

import os
import re

import numpy as np
import soundfile as sf
import torch
import torchaudio

__all__ = [
    "AudioReadError",
    "audio_info",
    "check_samples",
    "fit_length",
    "read_audio",
    "read_blocks",
    "resample",
]

#: Units of the ``start`` and ``stop`` of :func:`read_audio`.
CROP_UNITS = ("samples", "seconds")


class AudioReadError(ValueError):
    """An audio file that exists but cannot be used (unreadable, empty, NaN)."""


def _existing_file(path):
    """``path`` as a str; FileNotFoundError naming it if it is not a file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"audio file not found: {path}")
    return path


def audio_info(path):
    """Header of an audio file, with clear errors.

    Arguments
    ---------
    path : str or os.PathLike
        Audio file.

    Returns
    -------
    soundfile._SoundFileInfo
        ``samplerate``, ``channels``, ``frames``...

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    AudioReadError
        libsndfile cannot read it, or it holds no samples.

    Example
    -------
    >>> audio_info("missing.wav")
    Traceback (most recent call last):
    ...
    FileNotFoundError: audio file not found: missing.wav
    """
    path = _existing_file(path)
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioReadError(f"cannot read audio file {path}: {e}") from e
    if info.frames == 0:
        raise AudioReadError(f"audio file {path} is empty (0 samples)")
    return info


def check_samples(signal, what):
    """Raises :class:`AudioReadError` for empty or non-finite audio.

    Arguments
    ---------
    signal : torch.Tensor or numpy.ndarray
        Samples, time on the first or last axis.
    what : str
        What the samples are, for the message (e.g. ``"audio file a.wav"``).

    Example
    -------
    >>> check_samples(torch.ones(3), "the query")
    >>> check_samples(np.zeros((0, 2)), "audio file a.wav")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    speechbrain_textsep.processing.audio_io.AudioReadError: audio file a.wav is empty...
    """
    if isinstance(signal, np.ndarray):
        empty, finite = signal.size == 0, bool(np.isfinite(signal).all())
    else:
        empty, finite = signal.numel() == 0, bool(torch.isfinite(signal).all())
    if empty:
        raise AudioReadError(f"{what} is empty (0 samples)")
    if not finite:
        raise AudioReadError(f"{what} contains NaN or infinite samples")


def _frame_range(path, start, stop, sample_rate, n_frames, unit):
    """``(first, last)`` frames of a crop, clamped to the file (validated)."""
    if unit not in CROP_UNITS:
        raise ValueError(f"unit must be one of {CROP_UNITS}, got {unit!r}")
    bounds = []
    for name, value in (("start", start), ("stop", stop)):
        if value is not None:
            if value < 0:
                raise ValueError(f"crop of {path}: {name} must be >= 0, got {value}")
            value = round(value * sample_rate) if unit == "seconds" else int(value)
        bounds.append(value)
    first, last = bounds[0] or 0, bounds[1]
    if last is not None and last <= first:
        raise ValueError(
            f"empty crop of {path}: stop ({stop}) must exceed start ({start})"
        )
    first = min(first, n_frames)
    last = n_frames if last is None else min(last, n_frames)
    return first, max(first, last)


def _read_frames(path, start, stop, unit):
    """``(float32 [time, channels] array, rate)`` of a crop, checked.

    Seeks as ``sf.read`` does (also to frame 0), so that the decoders of
    lossy formats give the same samples as ``sf.read`` with ``start``.
    """
    try:
        with sf.SoundFile(path) as f:
            native, n_frames = int(f.samplerate), int(f.frames)
            if n_frames == 0:
                raise AudioReadError(f"audio file {path} is empty (0 samples)")
            first, last = _frame_range(path, start, stop, native, n_frames, unit)
            if f.seekable():
                f.seek(first)
            data = f.read(last - first, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioReadError(f"cannot read audio file {path}: {e}") from e
    if data.shape[0] == 0:
        raise AudioReadError(
            f"audio file {path} has no samples in the crop start={start}, "
            f"stop={stop} ({unit}; the file has {n_frames} frames at {native} Hz)"
        )
    check_samples(data, f"audio file {path}")
    return data, native


def read_audio(
    path, start=None, stop=None, mono=False, sample_rate=None, unit="samples"
):
    """Reads an audio file (or a crop of it) as float32, and its sample rate.

    Arguments
    ---------
    path : str or os.PathLike
        Audio file, any format libsndfile reads.
    start : int or float, optional
        First frame of the crop (None: the beginning), at the file's rate.
    stop : int or float, optional
        End of the crop, exclusive (None: the end of the file). A crop
        running past the end of the file is shortened, as with soundfile.
    mono : bool
        False: ``[time, channels]`` (always 2-D); True: ``[time]``, the mean
        of the channels.
    sample_rate : int, optional
        Resamples the crop to this rate (:func:`resample`); None keeps the
        file's rate.
    unit : str
        ``"samples"`` (``start`` and ``stop`` are frame indices) or
        ``"seconds"`` (rounded to the nearest frame at the file's rate).

    Returns
    -------
    signal : torch.Tensor
        ``[time, channels]`` or, with ``mono``, ``[time]`` float32 samples.
    sample_rate : int
        Their rate (``sample_rate`` if given, else the file's).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    AudioReadError
        The file cannot be decoded, is empty, the crop starts after its end,
        or it contains NaN or infinite samples.

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "ramp.flac")
    >>> sf.write(path, np.stack([np.arange(8) / 8, -np.arange(8) / 8], 1), 8)
    >>> signal, rate = read_audio(path)
    >>> signal.shape, signal.dtype, rate
    (torch.Size([8, 2]), torch.float32, 8)
    >>> read_audio(path, 2, 4)[0][:, 0].tolist()
    [0.25, 0.375]
    >>> read_audio(path, 0.5, 0.75, mono=True, unit="seconds")[0].tolist()
    [0.0, 0.0]
    >>> read_audio(path, 8)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    speechbrain_textsep.processing.audio_io.AudioReadError: ...ramp.flac has no ...
    """
    path = _existing_file(path)
    data, native = _read_frames(path, start, stop, unit)
    signal = torch.from_numpy(data)
    if mono:
        signal = signal[:, 0] if signal.shape[1] == 1 else signal.mean(dim=1)
    if sample_rate is None or int(sample_rate) == native:
        return signal, native
    if mono:
        return resample(signal, native, sample_rate), int(sample_rate)
    return resample(signal.T, native, sample_rate).T.contiguous(), int(sample_rate)


#: libsndfile's log line of a RIFF/WAV data chunk longer than the file.
_SHORT_DATA = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
#: Data sizes that streaming writers put in a header they cannot go back to.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


def _where(position, rate):
    """A position for messages, e.g. ``sample 44100 (1.000 s)``."""
    return f"sample {position} ({position / rate:.3f} s)"


def _check_complete(f, path):
    """AudioReadError if a WAV file's header announces more data than it holds."""
    found = _SHORT_DATA.search(f.extra_info)
    if found and int(found.group(1)) not in _UNKNOWN_SIZES:
        raise AudioReadError(
            f"audio file {path} is truncated: its header announces "
            f"{found.group(1)} bytes of samples but it holds "
            f"{found.group(2)}; it ends at {_where(f.frames, f.samplerate)}"
        )


def _checked_block(data, path, position, rate):
    """``data`` as a tensor; AudioReadError at the first non-finite sample."""
    finite = np.isfinite(data).all(axis=1)
    if not finite.all():
        bad = position + int(np.argmin(finite))
        raise AudioReadError(
            f"audio file {path} contains NaN or infinite samples "
            f"(the first at {_where(bad, rate)})"
        )
    return torch.from_numpy(data)


def read_blocks(path, block_frames=65536):
    """Reads a whole audio file block by block, checking each block.

    Memory does not grow with the file. Every block is checked as it is
    read, so that a file broken part-way stops the reader with an error
    naming the file and the position.

    Arguments
    ---------
    path : str or os.PathLike
        Audio file, any format libsndfile reads.
    block_frames : int
        Frames per block (the last one may be shorter).

    Yields
    ------
    torch.Tensor
        float32 ``[time, channels]`` blocks, in order.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    AudioReadError
        The file cannot be decoded, is empty, holds fewer samples than its
        header announces (truncated), or has NaN or infinite samples.

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "ramp.wav")
    >>> ramp = np.arange(10, dtype=np.float32) / 10
    >>> sf.write(path, ramp, 10, subtype="FLOAT")
    >>> [block.shape for block in read_blocks(path, 4)]
    [torch.Size([4, 1]), torch.Size([4, 1]), torch.Size([2, 1])]
    >>> ramp[7] = np.nan
    >>> sf.write(path, ramp, 10, subtype="FLOAT")
    >>> list(read_blocks(path, 4))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    speechbrain_textsep.processing.audio_io.AudioReadError: ...at sample 7 (0.700 s))
    """
    if int(block_frames) < 1:
        raise ValueError(f"block_frames must be >= 1, got {block_frames}")
    path = _existing_file(path)
    try:
        f = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioReadError(f"cannot read audio file {path}: {e}") from e
    with f:
        rate, frames = int(f.samplerate), int(f.frames)
        if frames == 0:
            raise AudioReadError(f"audio file {path} is empty (0 samples)")
        _check_complete(f, path)
        position = 0
        while True:
            try:
                data = f.read(int(block_frames), dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as e:
                raise AudioReadError(
                    f"cannot read audio file {path} after {_where(position, rate)}"
                    f" (truncated or corrupt?): {e}"
                ) from e
            if len(data) == 0:
                break
            yield _checked_block(data, path, position, rate)
            position += len(data)
    if position < frames:
        raise AudioReadError(
            f"audio file {path} is truncated: it ends at {_where(position, rate)}"
            f" but its header announces {frames} samples"
        )


def fit_length(signal, length):
    """Trims or zero-pads the last axis to ``length`` (padding at the end).

    Arguments
    ---------
    signal : torch.Tensor
        ``[..., time]`` samples.
    length : int
        Wanted number of samples.

    Returns
    -------
    torch.Tensor
        ``[..., length]``.

    Example
    -------
    >>> fit_length(torch.ones(2, 3), 5).tolist()
    [[1.0, 1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0, 0.0]]
    >>> fit_length(torch.arange(5.0), 2).tolist()
    [0.0, 1.0]
    """
    if signal.shape[-1] >= length:
        return signal[..., :length]
    return torch.nn.functional.pad(signal, (0, length - signal.shape[-1]))


def resample(signal, orig_rate, new_rate, length=None):
    """Resamples the last axis; with ``length``, trims or zero-pads to it.

    ``torchaudio.functional.resample`` (windowed sinc) when the rates differ,
    the signal unchanged otherwise.

    Arguments
    ---------
    signal : torch.Tensor
        ``[..., time]`` samples (time on the last axis, as the model tensors
        ``[C, L]`` and ``[B, L]``).
    orig_rate : int
        Its sample rate.
    new_rate : int
        The wanted rate.
    length : int, optional
        Trims or zero-pads the result to this length (:func:`fit_length`).

    Returns
    -------
    torch.Tensor
        ``[..., time']`` samples at ``new_rate``.

    Example
    -------
    >>> resample(torch.randn(2, 441), 44100, 16000).shape
    torch.Size([2, 160])
    >>> resample(torch.randn(160), 16000, 44100, length=441).shape
    torch.Size([441])
    """
    if orig_rate != new_rate:
        signal = torchaudio.functional.resample(
            signal.contiguous(), int(orig_rate), int(new_rate)
        )
    if length is not None:
        signal = fit_length(signal, length)
    return signal
