"""Resampling a signal that arrives in blocks, as if it were resampled whole.

:class:`StreamingResampler` applies the windowed-sinc kernel of
``torchaudio.functional.resample`` (the package's resampler,
:func:`speechbrain_textsep.processing.audio_io.resample`) to blocks of any
size, carrying the input history the kernel needs across block edges. Its
output is that of resampling the whole signal at once (to float rounding)
while holding only one block and one kernel length in memory.

The kernel is polyphase: with the rates reduced by their gcd to ``orig``
and ``new``, every ``orig`` input samples give ``new`` output samples, each
phase a sinc filter of ``2 * width + orig`` taps over the input from
``width`` samples before to ``width + orig`` after (zeros beyond the ends).

Authors
 * speechbrain-textsep contributors
"""

import math

import torch
import torchaudio

__all__ = ["StreamingResampler", "resampled_length"]


def resampled_length(length, orig_rate, new_rate):
    """Samples that ``length`` samples at ``orig_rate`` make at ``new_rate``.

    ``ceil(length * new_rate / orig_rate)``, computed exactly (torchaudio
    computes it in float32, which may differ by a few samples beyond
    ~10^7 samples).

    Example
    -------
    >>> resampled_length(441, 44100, 16000), resampled_length(1, 48000, 16000)
    (160, 1)
    """
    gcd = math.gcd(int(orig_rate), int(new_rate))
    orig, new = int(orig_rate) // gcd, int(new_rate) // gcd
    return -(-int(length) * new // orig)


class StreamingResampler:
    """Resamples the last axis of blocks pushed one after another.

    Arguments
    ---------
    orig_rate : int
        Sample rate of the input.
    new_rate : int
        Wanted sample rate.

    Example
    -------
    >>> signal = torch.randn(2, 1000)
    >>> stream = StreamingResampler(44100, 16000)
    >>> parts = [stream.push(block) for block in signal.split(77, dim=-1)]
    >>> out = torch.cat(parts + [stream.finish()], dim=-1)
    >>> whole = torchaudio.functional.resample(signal, 44100, 16000)
    >>> out.shape == whole.shape, bool((out - whole).abs().max() < 1e-5)
    (True, True)
    """

    def __init__(self, orig_rate, new_rate):
        if int(orig_rate) <= 0 or int(new_rate) <= 0:
            raise ValueError(f"sample rates must be positive: {orig_rate}, {new_rate}")
        self.orig_rate, self.new_rate = int(orig_rate), int(new_rate)
        gcd = math.gcd(self.orig_rate, self.new_rate)
        self._orig, self._new = self.orig_rate // gcd, self.new_rate // gcd
        self._kernel = self._width = None
        if self.orig_rate != self.new_rate:
            # torchaudio's own kernel, computed as resample() computes it for
            # float32 signals.
            transform = torchaudio.transforms.Resample(
                self.orig_rate, self.new_rate, dtype=torch.float32
            )
            self._kernel, self._width = transform.kernel, transform.width
        self._history = None
        self._lead = ()
        self._pushed = 0
        self._produced = 0
        self._finished = False

    def push(self, block):
        """Resampled samples ``[..., m]`` of the next ``[..., n]`` block.

        Output lags input by about one kernel length; :meth:`finish` gives
        the rest.
        """
        if self._finished:
            raise RuntimeError("push() after finish()")
        block = block.float()
        self._lead = block.shape[:-1]
        self._pushed += block.shape[-1]
        if self._kernel is None:
            self._produced += block.shape[-1]
            return block
        lead = block.shape[:-1]
        rows = block.reshape(-1, block.shape[-1])
        if self._history is None:
            self._history = rows.new_zeros(rows.shape[0], self._width)
        self._history = torch.cat([self._history, rows], dim=-1)
        return self._convolve().reshape(*lead, -1)

    def finish(self):
        """The last samples: the total is ``resampled_length`` of the input."""
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True
        if self._kernel is None or self._history is None:
            return torch.zeros(*self._lead, 0)
        self._history = torch.nn.functional.pad(
            self._history, (0, self._width + self._orig)
        )
        out = self._convolve()
        total = resampled_length(self._pushed, self._orig, self._new)
        keep = total - (self._produced - out.shape[-1])
        self._produced = total
        return out[..., :keep].reshape(*self._lead, -1)

    def _convolve(self):
        """Output of every kernel position the history now covers."""
        taps = self._kernel.shape[-1]
        rows, available = self._history.shape
        if available < taps:
            return self._history.new_zeros(rows, 0)
        frames = (available - taps) // self._orig + 1
        used = (frames - 1) * self._orig + taps
        out = torch.nn.functional.conv1d(
            self._history[:, None, :used], self._kernel, stride=self._orig
        )
        self._history = self._history[:, frames * self._orig :]
        out = out.transpose(1, 2).reshape(rows, -1)
        self._produced += out.shape[-1]
        return out
