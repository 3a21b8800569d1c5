"""Separation of long inputs in overlapping, cross-faded windows.

:class:`WindowStream` takes a mixture as it arrives, in blocks of any size,
and gives back the cross-faded estimates as soon as no later window can
change them; :func:`separate_in_windows` feeds it a whole tensor. Both cut
the same windows (:func:`window_starts`), so a file separated as a stream
gives the estimates of the file separated whole.

Authors
 * speechbrain-textsep contributors
"""

import math

import torch


def window_starts(length, window, hop):
    """First samples of windows of ``window`` samples covering ``length``.

    Windows start every ``hop`` samples; the last one is moved back so that
    it ends exactly at ``length`` (no padding).

    Arguments
    ---------
    length : int
        Input length in samples (more than ``window``).
    window : int
        Window length in samples.
    hop : int
        Distance between window starts (``window`` minus the overlap).

    Returns
    -------
    list of int

    Example
    -------
    >>> window_starts(25, 10, 8)
    [0, 8, 15]
    """
    last = length - window
    return list(range(0, last, hop)) + [last]


def crossfade_weights(window, fade_in, fade_out):
    """Weight of one window: raised-cosine fades, 1 in between.

    The fades never reach 0, so that the normalised overlap-add
    (``sum w_i y_i / sum w_i``) is defined everywhere.

    Arguments
    ---------
    window : int
        Window length in samples.
    fade_in : int
        Length of the fade-in (0 for the first window).
    fade_out : int
        Length of the fade-out (0 for the last window).

    Returns
    -------
    torch.Tensor
        ``[window]`` weights.

    Example
    -------
    >>> w = crossfade_weights(6, 2, 2)
    >>> [round(float(v), 3) for v in w]
    [0.146, 0.854, 1.0, 1.0, 0.854, 0.146]
    """
    weights = torch.ones(window)
    for length, flip in ((fade_in, False), (fade_out, True)):
        if length > 0:
            ramp = torch.sin(0.5 * math.pi * (torch.arange(length) + 0.5) / length) ** 2
            if flip:
                weights[window - length :] *= ramp.flip(0)
            else:
                weights[:length] *= ramp
    return weights


class WindowStream:
    """Separates a stream of mixtures in overlapping, cross-faded windows.

    The windows are those of :func:`window_starts` on the whole input: every
    ``window - overlap`` samples, the last one moved back to end at the end.
    As the total length is known only at :meth:`finish`, a window is run
    once the input reaches one hop past its end (then neither its position
    nor its neighbour's can change). Estimates are given back as soon as no
    later window overlaps them. An input no longer than ``window`` is
    separated in one call at :meth:`finish`, exactly as a one-shot pass.
    Memory holds about two windows and one block, whatever the length.

    Arguments
    ---------
    separate : callable
        ``separate(windows, rows)``: ``[n, window]`` mixtures (or ``[N, L]``
        for a short input), and the list of the mixtures (0..N-1) each row
        comes from -> ``[n, ..., window]`` estimates.
    n_mixtures : int
        Number N of mixtures streamed side by side.
    window : int
        Window length in samples.
    overlap : int
        Minimum overlap of consecutive windows (``0 <= overlap < window``).
    batch_size : int
        Windows separated per call.

    Example
    -------
    >>> stream = WindowStream(lambda x, rows: 2 * x[:, None], 1, 300, 50)
    >>> mixture = torch.randn(1, 1000)
    >>> parts = [stream.push(block) for block in mixture.split(128, dim=-1)]
    >>> [None if part is None else part.shape[-1] for part in parts]
    [None, None, None, None, 250, None, 250, None]
    >>> out = torch.cat([p for p in parts if p is not None] + [stream.finish()], -1)
    >>> out.shape, torch.allclose(out[:, 0], 2 * mixture, atol=1e-6)
    (torch.Size([1, 1, 1000]), True)
    """

    def __init__(self, separate, n_mixtures, window, overlap, batch_size=1):
        if window < 1 or not 0 <= overlap < window:
            raise ValueError(
                f"need window >= 1 and 0 <= overlap < window, got {window}, {overlap}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.separate, self.n_mixtures = separate, int(n_mixtures)
        self.window, self.hop, self.batch_size = window, window - overlap, batch_size
        self._input = None
        self._input_start = 0  # position of self._input[:, 0]
        self._seen = 0  # samples pushed so far
        self._ready = []  # (start, fade_in, fade_out, next_start) not yet run
        self._rows_done = 0  # (window, mixture) jobs of self._ready[0] run
        self._next_start = 0  # start of the next window to schedule
        self._previous = None  # start of the last window scheduled
        self._acc = self._weight = None  # overlap-add from self._out_start
        self._out_start = 0
        self._finished = False

    def push(self, block):
        """Estimates ``[N, ..., k]`` finished by the ``[N, n]`` block, or
        None when the block finishes none (the output lags the input by
        about two windows)."""
        if self._finished:
            raise RuntimeError("push() after finish()")
        if block.dim() != 2 or block.shape[0] != self.n_mixtures:
            raise ValueError(
                f"expected [{self.n_mixtures}, time] blocks, got {tuple(block.shape)}"
            )
        if self._input is None:
            self._input = block
        else:
            self._input = torch.cat([self._input, block], dim=-1)
        self._seen += block.shape[-1]
        while self._seen > self._next_start + self.window + self.hop:
            self._schedule(self._next_start + self.hop)
        return self._run(final=False)

    def finish(self):
        """The remaining estimates; the total has the input's length."""
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True
        if self._seen == 0:
            raise ValueError("no samples were pushed")
        if self._previous is None and self._seen <= self.window:
            rows = list(range(self.n_mixtures))
            return self.separate(self._input, rows)
        last = self._seen - self.window
        while self._next_start < last:
            self._schedule(min(self._next_start + self.hop, last))
        self._schedule(None)
        return self._run(final=True)

    def run(self, mixtures, block=65536):
        """Estimates ``[N, ..., L]`` of whole ``[N, L]`` mixtures."""
        parts = [self.push(part) for part in mixtures.split(block, dim=-1)]
        parts = [part for part in parts if part is not None]
        return torch.cat([*parts, self.finish()], dim=-1)

    def _schedule(self, next_start):
        """Queues the window at ``self._next_start`` (followed by ``next_start``)."""
        start = self._next_start if next_start is not None else self._seen - self.window
        fade_in = 0 if self._previous is None else self._previous + self.window - start
        fade_out = 0 if next_start is None else start + self.window - next_start
        self._ready.append((start, fade_in, fade_out, next_start))
        self._previous = start
        if next_start is not None:
            self._next_start = next_start

    def _run(self, final):
        """Separates queued windows (full batches unless ``final``); returns
        the estimates that no later window overlaps."""
        jobs = [(w, b) for w in range(len(self._ready)) for b in range(self.n_mixtures)]
        jobs = jobs[self._rows_done :]
        n_run = len(jobs) if final else len(jobs) - len(jobs) % self.batch_size
        finished_to = None
        for first in range(0, n_run, self.batch_size):
            chunk = jobs[first : first + self.batch_size]
            windows = torch.stack(
                [self._window_input(self._ready[w][0], b) for w, b in chunk]
            )
            estimates = self.separate(windows, [b for _, b in chunk])
            for (w, b), estimate in zip(chunk, estimates):
                self._add(self._ready[w], b, estimate)
                if b == self.n_mixtures - 1:
                    finished_to = self._ready[w][3]
                    finished_to = self._seen if finished_to is None else finished_to
        done = self._rows_done + n_run
        self._ready = self._ready[done // self.n_mixtures :]
        self._rows_done = done % self.n_mixtures
        keep_from = self._ready[0][0] if self._ready else self._next_start
        self._input = self._input[:, keep_from - self._input_start :]
        self._input_start = keep_from
        return self._emit(finished_to)

    def _window_input(self, start, row):
        offset = start - self._input_start
        return self._input[row, offset : offset + self.window]

    def _add(self, job, row, estimate):
        """Overlap-adds the weighted ``estimate`` of window ``job``, mixture ``row``."""
        start, fade_in, fade_out, _ = job
        weights = crossfade_weights(self.window, fade_in, fade_out).to(estimate)
        end = start + self.window - self._out_start
        if self._acc is None:
            self._acc = estimate.new_zeros(self.n_mixtures, *estimate.shape[:-1], 0)
            self._weight = estimate.new_zeros(0)
        if end > self._acc.shape[-1]:
            grow = end - self._acc.shape[-1]
            self._acc = torch.nn.functional.pad(self._acc, (0, grow))
            self._weight = torch.nn.functional.pad(self._weight, (0, grow))
        offset = start - self._out_start
        self._acc[row, ..., offset:end] += estimate * weights
        if row == 0:
            self._weight[offset:end] += weights

    def _emit(self, until):
        """Normalised estimates from the last emitted sample up to ``until``."""
        if until is None:
            return None
        n = until - self._out_start
        out = self._acc[..., :n] / self._weight[:n]
        self._acc, self._weight = self._acc[..., n:], self._weight[n:]
        self._out_start = until
        return out


def separate_in_windows(separate, mixtures, window, overlap, batch_size=1):
    """Runs ``separate`` on overlapping windows and cross-fades the outputs.

    Inputs no longer than ``window`` are processed in one call, so the result
    is then exactly that of one-shot processing. Longer inputs are cut into
    windows of ``window`` samples that overlap by at least ``overlap``; the
    outputs are averaged with raised-cosine cross-fade weights. The output
    has exactly the input's length (a :class:`WindowStream` fed the whole
    input).

    Arguments
    ---------
    separate : callable
        Maps ``[N, window]`` mixtures to ``[N, ..., window]`` estimates (e.g.
        ``[N, Q, window]`` for Q queries); called with the windows of every
        mixture of the batch.
    mixtures : torch.Tensor
        ``[B, L]`` mixtures.
    window : int
        Window length in samples.
    overlap : int
        Minimum overlap of consecutive windows (``0 <= overlap < window``).
    batch_size : int
        Windows separated per call.

    Returns
    -------
    torch.Tensor
        ``[B, ..., L]`` estimates.

    Example
    -------
    >>> mixtures = torch.randn(2, 1000)
    >>> out = separate_in_windows(lambda x: 2 * x[:, None], mixtures, 300, 50)
    >>> out.shape
    torch.Size([2, 1, 1000])
    >>> torch.allclose(out[:, 0], 2 * mixtures, atol=1e-6)
    True
    """
    if mixtures.dim() != 2:
        raise ValueError(f"mixtures must be [batch, time], got {tuple(mixtures.shape)}")
    stream = WindowStream(
        lambda windows, rows: separate(windows),
        mixtures.shape[0],
        window,
        overlap,
        batch_size,
    )
    return stream.run(mixtures)
