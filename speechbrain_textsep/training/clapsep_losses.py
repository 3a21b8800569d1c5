"""Training loss of CLAPSep: ``-0.9 SNR - 0.1 SI-SNR`` on waveforms.

Authors
 * speechbrain-textsep contributors
"""

from speechbrain_textsep.evaluation.metrics import sdr, si_sdr

__all__ = ["clapsep_loss"]


def clapsep_loss(estimate, target, snr_weight=0.9, reduction="mean"):
    """``-w SNR(estimate, target) - (1 - w) SI-SNR(estimate, target)``.

    SNR is the plain signal-to-noise (distortion) ratio
    ``10 log10(|s|^2 / |s - s_hat|^2)`` and SI-SNR the zero-mean,
    scale-invariant one, both in dB and computed in float32 by
    :func:`speechbrain_textsep.evaluation.metrics.sdr` and
    :func:`~speechbrain_textsep.evaluation.metrics.si_sdr` (with their
    ``eps = 1e-8`` guards: finite for perfect or silent estimates). The
    paper and the authors' code use ``w = 0.9``.

    Arguments
    ---------
    estimate : torch.Tensor
        ``[..., time]`` estimated waveforms.
    target : torch.Tensor
        ``[..., time]`` reference waveforms, same shape.
    snr_weight : float
        ``w`` in [0, 1].
    reduction : str
        ``"mean"`` (a scalar, the mean over items) or ``"none"`` (``[...]``).

    Returns
    -------
    torch.Tensor
        The loss (lower is better).

    Example
    -------
    >>> import torch
    >>> target = torch.tensor([1.0, -1.0, 1.0, -1.0])
    >>> noise = torch.tensor([1.0, 1.0, -1.0, -1.0])  # orthogonal, zero-mean
    >>> round(clapsep_loss(target + 0.1 * noise, target).item(), 3)  # 20 dB
    -20.0
    """
    if not 0.0 <= snr_weight <= 1.0:
        raise ValueError(f"snr_weight must be in [0, 1], got {snr_weight}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    estimate, target = estimate.float(), target.float()
    loss = -snr_weight * sdr(estimate, target) - (1.0 - snr_weight) * si_sdr(
        estimate, target
    )
    return loss.mean() if reduction == "mean" else loss
