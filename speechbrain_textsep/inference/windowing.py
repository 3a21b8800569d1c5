"""Separation of long inputs in overlapping, cross-faded windows.

Authors
 * speechbrain-textsep contributors
"""

import math

import torch
from tqdm import tqdm


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


def separate_in_windows(
    separate, mixtures, window, overlap, batch_size=1, progress=False
):
    """Runs ``separate`` on overlapping windows and cross-fades the outputs.

    Inputs no longer than ``window`` are processed in one call, so the result
    is then exactly that of one-shot processing. Longer inputs are cut into
    windows of ``window`` samples that overlap by at least ``overlap``; the
    outputs are averaged with raised-cosine cross-fade weights. The output
    has exactly the input's length, and the memory the model needs does not
    grow with it (only the input and output buffers do).

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
    progress : bool
        Shows a progress bar over the windows.

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
    if window < 1 or not 0 <= overlap < window:
        raise ValueError(
            f"need window >= 1 and 0 <= overlap < window, got {window}, {overlap}"
        )
    n_mix, length = mixtures.shape
    if length <= window:
        return separate(mixtures)
    starts = window_starts(length, window, window - overlap)

    def weights(i):
        fade_in = 0 if i == 0 else starts[i - 1] + window - starts[i]
        fade_out = 0 if i == len(starts) - 1 else starts[i] + window - starts[i + 1]
        return crossfade_weights(window, fade_in, fade_out).to(mixtures.device)

    weight_sum = torch.zeros(length, device=mixtures.device)
    for i, start in enumerate(starts):
        weight_sum[start : start + window] += weights(i)
    # (mixture, window) pairs in the order they are separated.
    jobs = [(b, i) for b in range(n_mix) for i in range(len(starts))]
    output = None
    with tqdm(
        total=len(jobs), desc="windows", disable=not progress, dynamic_ncols=True
    ) as bar:
        for first in range(0, len(jobs), batch_size):
            chunk = jobs[first : first + batch_size]
            windows = torch.stack(
                [mixtures[b, starts[i] : starts[i] + window] for b, i in chunk]
            )
            estimates = separate(windows)
            if output is None:
                output = mixtures.new_zeros((n_mix, *estimates.shape[1:-1], length))
            for (b, i), estimate in zip(chunk, estimates):
                output[b, ..., starts[i] : starts[i] + window] += estimate * weights(i)
            bar.update(len(chunk))
    return output / weight_sum
