"""Reading, converting and writing the audio of the separation interfaces.

Every format libsndfile reads (wav, flac, ogg/vorbis/opus, mp3, aiff...) at
any sample rate and channel count. Files are read by the package's one
reader, :func:`speechbrain_textsep.processing.audio_io.read_audio` (same
errors, naming the file, everywhere); :func:`read_audio` here gives its
samples channels-first, as the interfaces use them. :class:`AudioReadError`,
:func:`audio_info` and :func:`resample` are re-exported from there. Outputs
are written atomically (no partial file) and without wrap-around.

Authors
 * speechbrain-textsep contributors
"""

import os
import tempfile

import soundfile as sf

from speechbrain_textsep.processing import audio_io
from speechbrain_textsep.processing.audio_io import (
    AudioReadError,
    audio_info,
    resample,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "CHANNEL_MODES",
    "AudioReadError",
    "audio_info",
    "check_signal",
    "read_audio",
    "resample",
    "to_model_input",
    "write_audio",
]

#: Extensions taken from a folder given as input.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff")

#: What to do with multichannel inputs.
CHANNEL_MODES = ("mix", "separate")


def read_audio(path):
    """Reads an audio file as float32 ``[channels, time]`` and its sample rate.

    The package's reader (:func:`speechbrain_textsep.processing.audio_io.read_audio`),
    channels first.

    Arguments
    ---------
    path : str
        Audio file.

    Returns
    -------
    signal : torch.Tensor
        ``[C, L]`` samples.
    sample_rate : int

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    AudioReadError
        It cannot be decoded, is empty or has NaN or infinite samples.

    Example
    -------
    >>> import torch
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.flac")
    >>> _ = write_audio(path, torch.zeros(2, 800), 8000)
    >>> signal, rate = read_audio(path)
    >>> signal.shape, rate
    (torch.Size([2, 800]), 8000)
    """
    signal, rate = audio_io.read_audio(path)
    return signal.T.contiguous(), rate


def check_signal(signal, what="the mixture"):
    """Raises :class:`AudioReadError` for empty or non-finite audio.

    Arguments
    ---------
    signal : torch.Tensor
        Samples.
    what : str
        What they are, for the message.

    Example
    -------
    >>> import torch
    >>> check_signal(torch.full((1, 4), float("inf")))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    speechbrain_textsep.processing.audio_io.AudioReadError: the mixture contains NaN ...
    """
    audio_io.check_samples(signal, what)


def to_model_input(signal, sample_rate, model_rate, channels="mix"):
    """Mixtures ``[N, L']`` for the model from a ``[C, L]`` recording.

    Arguments
    ---------
    signal : torch.Tensor
        ``[C, L]`` recording.
    sample_rate : int
        Its sample rate.
    model_rate : int
        The model's sample rate.
    channels : str
        ``"mix"``: channels averaged into one mono mixture (N = 1);
        ``"separate"``: every channel separated on its own (N = C).

    Returns
    -------
    torch.Tensor
        ``[N, L']`` mixtures at ``model_rate``.

    Example
    -------
    >>> import torch
    >>> to_model_input(torch.ones(2, 32000), 32000, 16000).shape
    torch.Size([1, 16000])
    >>> to_model_input(torch.ones(2, 100), 16000, 16000, "separate").shape
    torch.Size([2, 100])
    """
    if channels not in CHANNEL_MODES:
        raise ValueError(f"channels must be one of {CHANNEL_MODES}, got {channels!r}")
    if signal.dim() != 2:
        raise ValueError(f"expected [channels, time], got {tuple(signal.shape)}")
    if channels == "mix":
        signal = signal.mean(dim=0, keepdim=True)
    return resample(signal, sample_rate, model_rate)


def write_audio(path, signal, sample_rate, subtype=None):
    """Writes ``[L]`` or ``[C, L]`` audio atomically, without wrap-around.

    WAV files are written as 32-bit float unless ``subtype`` says otherwise;
    integer PCM and lossy formats get samples clipped to [-1, 1]. The file is
    written under a temporary name and renamed, so an error never leaves a
    partial file behind.

    Arguments
    ---------
    path : str
        Output file; its extension selects the format.
    signal : torch.Tensor
        ``[L]`` or ``[C, L]`` samples.
    sample_rate : int
        Sample rate.
    subtype : str, optional
        soundfile subtype (e.g. ``"PCM_16"``).

    Returns
    -------
    str
        ``path``.

    Example
    -------
    >>> import torch
    >>> path = os.path.join(tempfile.mkdtemp(), "loud.wav")
    >>> _ = write_audio(path, torch.tensor([2.0, -3.0]), 16000, subtype="PCM_16")
    >>> read_audio(path)[0].round()
    tensor([[ 1., -1.]])
    """
    path = os.fspath(path)
    signal = signal.detach().float().cpu()
    signal = signal[None] if signal.dim() == 1 else signal
    check_signal(signal, "the audio to write")
    extension = os.path.splitext(path)[1].lower()
    if subtype is None and extension in ("", ".wav"):
        subtype = "FLOAT"
    if subtype not in ("FLOAT", "DOUBLE"):
        signal = signal.clamp(-1.0, 1.0)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp_path = tempfile.mkstemp(
        dir=folder, prefix=".tmp-", suffix=extension or ".wav"
    )
    os.close(handle)
    try:
        sf.write(
            tmp_path,
            signal.T.numpy(),
            int(sample_rate),
            subtype=subtype,
            format=None if extension else "WAV",
        )
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
    return path
