"""Reading, converting and writing the audio of the separation interfaces.

Every format libsndfile reads (wav, flac, ogg/vorbis/opus, mp3, aiff...) at
any sample rate and channel count. Files are read by the package's one
reader, :func:`speechbrain_textsep.processing.audio_io.read_audio` (same
errors, naming the file, everywhere); :func:`read_audio` here gives its
samples channels-first, as the interfaces use them. :class:`AudioReadError`,
:func:`audio_info` and :func:`resample` are re-exported from there. Outputs
are written atomically (no partial file) and without wrap-around, whole
(:func:`write_audio`) or block by block (:func:`atomic_writers`).

Authors
 * speechbrain-textsep contributors
"""

import contextlib
import os
import tempfile

import numpy as np
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
    "AudioStreamWriter",
    "atomic_writers",
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


#: Bytes of samples past which a WAV file is written as RF64 (RIFF sizes
#: are 32-bit).
WAV_LIMIT_BYTES = 0xFFFFFFFF - (1 << 20)


class AudioStreamWriter:
    """Writes one audio file block by block under a temporary name.

    The file is written as ``.tmp-*`` next to ``path`` and only gets its
    name from :meth:`commit`; :meth:`discard` removes it. Prefer
    :func:`atomic_writers`, which calls them.

    Arguments
    ---------
    path : str
        Final file; its extension selects the format (WAV if none).
    sample_rate : int
        Sample rate.
    channels : int
        Channels of every block.
    subtype : str, optional
        soundfile subtype; default 32-bit float for WAV. Integer PCM and
        lossy formats get samples clipped to [-1, 1].
    frames : int, optional
        Expected length; a WAV file past 4 GiB is written as RF64.
    """

    def __init__(self, path, sample_rate, channels, subtype=None, frames=None):
        self.path = os.fspath(path)
        self.channels = int(channels)
        extension = os.path.splitext(self.path)[1].lower()
        if subtype is None and extension in ("", ".wav"):
            subtype = "FLOAT"
        self.clip = subtype not in ("FLOAT", "DOUBLE")
        file_format = None if extension else "WAV"
        if extension in ("", ".wav") and frames is not None:
            sample_bytes = 8 if subtype == "DOUBLE" else 4
            if frames * self.channels * sample_bytes > WAV_LIMIT_BYTES:
                file_format = "RF64"
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        handle, self.tmp_path = tempfile.mkstemp(
            dir=folder, prefix=".tmp-", suffix=extension or ".wav"
        )
        os.close(handle)
        try:
            self._file = sf.SoundFile(
                self.tmp_path,
                "w",
                int(sample_rate),
                self.channels,
                subtype=subtype,
                format=file_format,
            )
        except BaseException:
            os.remove(self.tmp_path)
            raise

    def write(self, block):
        """Appends ``[L]`` or ``[channels, L]`` samples (checked finite)."""
        block = block.detach().float().cpu()
        block = block[None] if block.dim() == 1 else block
        if block.shape[0] != self.channels:
            raise ValueError(
                f"{self.path}: expected {self.channels} channels, got {block.shape[0]}"
            )
        if block.shape[-1] == 0:
            return
        check_signal(block, f"the audio to write to {self.path}")
        if self.clip:
            block = block.clamp(-1.0, 1.0)
        self._file.write(np.ascontiguousarray(block.T.numpy()))

    def commit(self):
        """Closes the file and gives it its final name."""
        self._file.close()
        os.replace(self.tmp_path, self.path)

    def discard(self):
        """Closes and removes the temporary file, if still there."""
        self._file.close()
        if os.path.exists(self.tmp_path):
            os.remove(self.tmp_path)


@contextlib.contextmanager
def atomic_writers(paths, sample_rate, channels, subtype=None, frames=None):
    """Streaming writers of several audio files, all written or none.

    Each file is written under a temporary name in its folder. When the
    ``with`` block ends normally, all are renamed to their names; if it
    raises (an error, Ctrl-C), all temporary files are removed. A process
    killed outright leaves at most ``.tmp-*`` files, never a partial file
    under a final name.

    Arguments
    ---------
    paths : list of str
        Output files.
    sample_rate : int
        Their sample rate.
    channels : int
        Their channel count.
    subtype : str, optional
        See :class:`AudioStreamWriter`.
    frames : int, optional
        Expected length (selects RF64 for WAV files past 4 GiB).

    Yields
    ------
    list of AudioStreamWriter

    Example
    -------
    >>> import torch
    >>> folder = tempfile.mkdtemp()
    >>> paths = [os.path.join(folder, name) for name in ("a.wav", "b.flac")]
    >>> with atomic_writers(paths, 8000, 1) as (a, b):
    ...     for block in torch.zeros(3, 100):
    ...         a.write(block)
    ...         b.write(-block)
    >>> sorted(os.listdir(folder)), read_audio(paths[1])[0].shape
    (['a.wav', 'b.flac'], torch.Size([1, 300]))
    """
    writers = []
    try:
        for path in paths:
            writers.append(
                AudioStreamWriter(path, sample_rate, channels, subtype, frames)
            )
        yield writers
        for writer in writers:
            writer.commit()
    finally:
        for writer in writers:
            writer.discard()


def write_audio(path, signal, sample_rate, subtype=None):
    """Writes ``[L]`` or ``[C, L]`` audio atomically, without wrap-around.

    WAV files are written as 32-bit float unless ``subtype`` says otherwise;
    integer PCM and lossy formats get samples clipped to [-1, 1]. The file is
    written under a temporary name and renamed (:func:`atomic_writers`), so
    an error never leaves a partial file behind.

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
    signal = signal.detach().float().cpu()
    signal = signal[None] if signal.dim() == 1 else signal
    check_signal(signal, "the audio to write")
    frames = signal.shape[-1]
    with atomic_writers([path], sample_rate, len(signal), subtype, frames) as (out,):
        out.write(signal)
    return os.fspath(path)
