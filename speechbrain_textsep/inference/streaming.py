"""Separating an audio file as a stream: read, resample, separate, write.

:class:`FileStream` is the one path from an audio file to estimates, used
both to return them in memory and to write them to files: it reads the file
in blocks (:func:`~speechbrain_textsep.processing.audio_io.read_blocks`),
downmixes and resamples each block to the model's rate
(:class:`~speechbrain_textsep.processing.streaming_resample.StreamingResampler`,
state carried across block edges), feeds the overlapping windows
(:class:`~speechbrain_textsep.inference.windowing.WindowStream`), resamples
the finished estimates back and cuts them to the input's exact length. Each
stage gives what the same stage gives on the whole signal, so memory stays
that of a few windows whatever the file's length, and the estimates do not
depend on the block size. :func:`collect` gathers the blocks;
:func:`write_stream` writes them as they come, under temporary names renamed
at the end.

Authors
 * speechbrain-textsep contributors
"""

import collections
import time

import torch
from tqdm import tqdm

from speechbrain_textsep.inference.audio import (
    CHANNEL_MODES,
    atomic_writers,
    audio_info,
)
from speechbrain_textsep.inference.windowing import WindowStream
from speechbrain_textsep.processing.audio_io import read_blocks
from speechbrain_textsep.processing.streaming_resample import (
    StreamingResampler,
    resampled_length,
)

__all__ = ["BLOCK_FRAMES", "FileStream", "SecondsBar", "collect", "write_stream"]

#: Frames read per block (1.5 s at 44.1 kHz); results do not depend on it.
BLOCK_FRAMES = 65536


class _Fifo:
    """Samples ``[N, t]`` queued in blocks, taken from the front."""

    def __init__(self):
        self.blocks = collections.deque()

    def push(self, block):
        if block.shape[-1]:
            self.blocks.append(block)

    def pop(self, n):
        parts = []
        while n > 0:
            block = self.blocks.popleft()
            if block.shape[-1] > n:
                self.blocks.appendleft(block[..., n:])
                block = block[..., :n]
            parts.append(block)
            n -= block.shape[-1]
        return torch.cat(parts, dim=-1)


class _Output:
    """Cuts the estimates to the input's length and forms the residuals.

    Estimates arrive behind the mixture (the windows' and resamplers'
    delay): the mixture at the output rate waits in a queue for them, and
    no estimate past the samples read so far is released.
    """

    def __init__(self, residual):
        self.mixture = _Fifo() if residual else None
        self.pending = None
        self.read = self.released = 0

    def add_mixture(self, mixture):
        """``[N, n]`` mixture at the output rate."""
        self.read += mixture.shape[-1]
        if self.mixture is not None:
            self.mixture.push(mixture)

    def release(self, estimates, final):
        """``[N, Q, k]`` estimates (or None) -> ``(estimates, residuals)``
        ``[Q, N, k']``, or None when none can be released yet."""
        if estimates is not None:
            if self.pending is not None:
                estimates = torch.cat([self.pending, estimates], dim=-1)
            self.pending = estimates
        if self.pending is None:
            return None
        n = min(self.pending.shape[-1], self.read - self.released)
        out, self.pending = self.pending[..., :n], self.pending[..., n:]
        if final and n < self.read - self.released:
            out = torch.nn.functional.pad(out, (0, self.read - self.released - n))
        if out.shape[-1] == 0:
            return None
        self.released += out.shape[-1]
        residuals = None
        if self.mixture is not None:
            residuals = (self.mixture.pop(out.shape[-1])[:, None] - out).transpose(0, 1)
        return out.transpose(0, 1), residuals


class FileStream:
    """Estimates (and residuals) of one audio file, block by block.

    Iterating reads the file once and yields ``(estimates, residuals,
    seconds)``: ``[Q, N, k]`` blocks of the estimates at :attr:`out_rate`
    (Q queries, N = 1 mixture for ``channels="mix"``, the file's channels
    for ``"separate"``), the residuals (the mixture the model was given
    minus the estimates; None unless asked) and the seconds of the input
    finished so far. Concatenated, the blocks are the whole-file result.

    Arguments
    ---------
    separate : callable
        ``separate(windows, rows)``, as :class:`WindowStream` takes it:
        ``[n, window]`` mixtures and the mixture index of each row ->
        ``[n, Q, window]`` estimates.
    path : str
        Audio file.
    model_rate : int
        The model's sample rate.
    window : int
        Window length in samples at the model's rate.
    overlap : int
        Minimum overlap of consecutive windows.
    batch_size : int
        Windows per call of ``separate``.
    channels : str
        ``"mix"`` (channels averaged) or ``"separate"`` (each on its own).
    resample_back : bool
        Gives the estimates at the file's rate and exact length (residuals:
        the downmix or channels at the file's rate minus the estimates)
        instead of the model's rate.
    residual : bool
        Also gives the residuals.
    block_frames : int
        Frames read per block.

    Example
    -------
    >>> import os, tempfile
    >>> from speechbrain_textsep.inference.audio import write_audio
    >>> path = os.path.join(tempfile.mkdtemp(), "a.wav")
    >>> _ = write_audio(path, torch.randn(2, 4410), 44100)
    >>> half = lambda windows, rows: 0.5 * windows[:, None]
    >>> stream = FileStream(half, path, 16000, 400, 100, residual=True)
    >>> estimates, residuals = collect(stream)
    >>> estimates.shape, torch.allclose(estimates, residuals, atol=1e-6)
    (torch.Size([1, 1, 1600]), True)
    """

    def __init__(
        self,
        separate,
        path,
        model_rate,
        window,
        overlap,
        batch_size=1,
        channels="mix",
        resample_back=False,
        residual=False,
        block_frames=BLOCK_FRAMES,
    ):
        if channels not in CHANNEL_MODES:
            raise ValueError(
                f"channels must be one of {CHANNEL_MODES}, got {channels!r}"
            )
        info = audio_info(path)
        self.path, self.separate = path, separate
        self.rate, self.frames = int(info.samplerate), int(info.frames)
        self.model_rate = int(model_rate)
        self.window, self.overlap, self.batch_size = window, overlap, batch_size
        self.channels, self.residual = channels, residual
        self.resample_back, self.block_frames = resample_back, block_frames
        self.n_mixtures = 1 if channels == "mix" else int(info.channels)
        self.out_rate = self.rate if resample_back else self.model_rate
        self.duration = self.frames / self.rate

    def out_frames(self):
        """Expected output length (from the header's frame count)."""
        if self.resample_back:
            return self.frames
        return resampled_length(self.frames, self.rate, self.model_rate)

    def _mixture(self, block):
        """``[time, channels]`` block -> ``[N, time]`` mixtures."""
        if self.channels == "mix":
            return block.mean(dim=1)[None]
        return block.T

    def __iter__(self):
        to_model = StreamingResampler(self.rate, self.model_rate)
        back = StreamingResampler(self.model_rate, self.rate)
        windows = WindowStream(
            self.separate, self.n_mixtures, self.window, self.overlap, self.batch_size
        )
        output = _Output(self.residual)

        def step(model_input, final):
            estimates = windows.push(model_input)
            if final:
                last = windows.finish()
                estimates = (
                    last if estimates is None else torch.cat([estimates, last], -1)
                )
            if self.resample_back and estimates is not None:
                n_mix, n_queries, _ = estimates.shape
                estimates = back.push(estimates.reshape(n_mix * n_queries, -1))
                if final:
                    estimates = torch.cat([estimates, back.finish()], dim=-1)
                estimates = estimates.reshape(n_mix, n_queries, -1)
            done = output.release(estimates, final)
            return None if done is None else (*done, output.released / self.out_rate)

        for block in read_blocks(self.path, self.block_frames):
            mixture = self._mixture(block)
            model_input = to_model.push(mixture)
            output.add_mixture(mixture if self.resample_back else model_input)
            done = step(model_input, final=False)
            if done is not None:
                yield done
        model_input = to_model.finish()
        if not self.resample_back:
            output.add_mixture(model_input)
        done = step(model_input, final=True)
        if done is not None:
            yield done


class SecondsBar:
    """Progress in seconds of audio, with the real-time factor.

    The real-time factor is the processing time over the audio time done
    (below 1: faster than real time).

    Arguments
    ---------
    total : float
        Seconds of audio to process.
    enabled : bool
        Shows the bar.
    desc : str
        Label, e.g. the file name.
    leave : bool
        Keeps the bar on screen when done.

    Example
    -------
    >>> with SecondsBar(10.0, enabled=False) as bar:
    ...     bar.advance(4.0)
    """

    def __init__(self, total, enabled=True, desc="audio", leave=True):
        self._start = time.perf_counter()
        self._bar = tqdm(
            total=round(total, 2),
            desc=desc,
            unit="s",
            disable=not enabled,
            leave=leave,
            dynamic_ncols=True,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s "
            "of audio [{elapsed}<{remaining}{postfix}]",
        )

    def advance(self, done):
        """Sets the seconds of audio done."""
        self._bar.update(round(done, 2) - self._bar.n)
        if done > 0:
            rtf = (time.perf_counter() - self._start) / done
            self._bar.set_postfix_str(f"real-time factor {rtf:.3f}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._bar.close()


def collect(stream, progress=False, leave=True):
    """Whole ``[Q, N, L]`` estimates and residuals (None unless asked).

    Arguments
    ---------
    stream : FileStream
        The file's stream.
    progress : bool
        Shows a :class:`SecondsBar`.
    leave : bool
        Keeps the bar on screen when done.

    Returns
    -------
    estimates : torch.Tensor
    residuals : torch.Tensor or None
    """
    outputs, filled = None, 0
    with SecondsBar(stream.duration, progress, _name(stream.path), leave) as bar:
        for estimate, residual, seconds in stream:
            blocks = [estimate] if residual is None else [estimate, residual]
            if outputs is None:  # the length is known: no copy when done
                shape = (*estimate.shape[:-1], stream.out_frames())
                outputs = [torch.empty(shape) for _ in blocks]
            n = estimate.shape[-1]
            for output, block in zip(outputs, blocks):
                output[..., filled : filled + n] = block
            filled += n
            bar.advance(seconds)
    if filled != outputs[0].shape[-1]:
        raise RuntimeError(f"{stream.path}: {filled} samples instead of the header's")
    return outputs[0], outputs[1] if stream.residual else None


def write_stream(stream, paths, residual_paths=(), progress=False, leave=True):
    """Writes the estimates (and residuals) to files as they are produced.

    Arguments
    ---------
    stream : FileStream
        The file's stream (with ``residual`` if ``residual_paths``).
    paths : list of str
        One output file per query.
    residual_paths : list of str
        One residual file per query, or none.
    progress : bool
        Shows a :class:`SecondsBar`.
    leave : bool
        Keeps the bar on screen when done.

    Returns
    -------
    list of str
        ``paths`` then ``residual_paths``, all written; on any error (or
        Ctrl-C) none of them is, and no temporary file is left.
    """
    paths, residual_paths = list(paths), list(residual_paths)
    if residual_paths and not stream.residual:
        raise ValueError("residual files asked of a stream without residuals")
    with (
        atomic_writers(
            paths + residual_paths,
            stream.out_rate,
            stream.n_mixtures,
            frames=stream.out_frames(),
        ) as writers,
        SecondsBar(stream.duration, progress, _name(stream.path), leave) as bar,
    ):
        for estimates, residuals, seconds in stream:
            for writer, estimate in zip(writers, estimates):
                writer.write(estimate)
            if residuals is not None:
                for writer, residual in zip(writers[len(paths) :], residuals):
                    writer.write(residual)
            bar.advance(seconds)
    return paths + residual_paths


def _name(path):
    return str(path).replace("\\", "/").rsplit("/", 1)[-1]
