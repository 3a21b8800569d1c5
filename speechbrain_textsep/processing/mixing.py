"""The package's one SNR mixer: an interferer scaled to a target-to-interferer
ratio and added to the target, with one rule for peaks and one for silence.

:func:`mix_at_snr` builds the 0 dB mixtures of CLAPSep training (batches
``[B, T]``) and of the CLAPSep evaluation (single signals ``[T]``):

- **SNR**: ``mixture = target + g * interferer`` with
  ``g = sqrt(E_t / (E_i 10^(snr_db / 10)))`` (``E``: energy over the last
  axis, computed in float64), as ``torchaudio.functional.add_noise``; every
  row of a batch is mixed on its own.
- **Peaks**: a row whose mixture peak ``max |mixture|`` exceeds ``limit``
  (1.0) has its mixture, target and scaled interferer all multiplied by
  ``peak / max |mixture|``, so the mixture peaks at ``peak``, the sources
  still sum to the mixture and the SNR is unchanged. Rows within the limit
  are left as they are. The CLAPSep evaluation uses ``peak=0.9``, training
  ``peak=1.0`` (no clipping, nothing quieter than needed).
- **Silence**: the SNR of a silent target or interferer (energy 0) is
  undefined. ``silent="raise"`` (the default, for evaluation lists) raises a
  ValueError naming which one is silent (and the rows of a batch);
  ``silent="mute"`` (for training batches, where a random crop can fall on
  silence) mutes the interferer of those rows: their mixture is the target
  alone (all zeros if the target is silent). Never NaN.

Not SNR mixing, and so not here: the CLIPSep paper's ``(s1 + s2) / 2`` and
the random gains of mix-and-separate training.

Authors
 * speechbrain-textsep contributors
"""

import torch

__all__ = ["SILENCE_RULES", "mix_at_snr"]

#: What :func:`mix_at_snr` does with a silent target or interferer.
SILENCE_RULES = ("raise", "mute")


def _check_mix_args(target, interferer, limit, peak, silent):
    """Raises ValueError for inputs :func:`mix_at_snr` does not take."""
    if target.dim() == 0 or target.shape != interferer.shape:
        raise ValueError(
            "target and interferer must be [T] or [B, T] of the same shape, got "
            f"{tuple(target.shape)} and {tuple(interferer.shape)}"
        )
    if not (target.is_floating_point() and interferer.is_floating_point()):
        raise ValueError("target and interferer must be floating-point tensors")
    if not 0 < peak <= limit:
        raise ValueError(f"need 0 < peak <= limit, got peak={peak}, limit={limit}")
    if silent not in SILENCE_RULES:
        raise ValueError(f"silent must be one of {SILENCE_RULES}, got {silent!r}")


def _raise_if_silent(target_energy, interferer_energy, batched):
    """ValueError naming a silent target or interferer (and its rows)."""
    for which, energy in (("target", target_energy), ("interferer", interferer_energy)):
        rows = (energy.reshape(-1) == 0).nonzero().reshape(-1).tolist()
        if rows:
            where = f" (rows {rows})" if batched else ""
            raise ValueError(
                f"the {which} is silent{where}: a mixture at a given SNR is "
                "undefined (silent='mute' mixes the target alone)"
            )


def _power_ratio(snr_db, device):
    """``10^(snr_db / 10)``: a float, or a float64 ``[B, 1]`` tensor."""
    if not isinstance(snr_db, torch.Tensor):
        return 10 ** (float(snr_db) / 10)
    ratio = torch.pow(10.0, snr_db.to(device, torch.float64) / 10)
    return ratio.unsqueeze(-1) if ratio.dim() > 0 else ratio


def mix_at_snr(target, interferer, snr_db=0.0, limit=1.0, peak=0.9, silent="raise"):
    """Mixes ``target`` with ``interferer`` scaled to ``snr_db``, peak-limited.

    See the module docstring for the rules (SNR, peaks, silence).

    Arguments
    ---------
    target : torch.Tensor
        ``[T]`` or ``[B, T]`` (any leading axes) target signals.
    interferer : torch.Tensor
        Interferers, the same shape as ``target``.
    snr_db : float or torch.Tensor
        Target-to-interferer ratio in dB (0); a tensor gives one per row
        (shape ``[B]``).
    limit : float
        A row whose mixture peak exceeds this is scaled down (1.0).
    peak : float
        The peak of a scaled-down mixture (0.9; ``0 < peak <= limit``).
    silent : str
        ``"raise"``: ValueError for a silent target or interferer;
        ``"mute"``: their rows are the target alone.

    Returns
    -------
    mixture : torch.Tensor
        Same shape and dtype as ``target``.
    target : torch.Tensor
        The target as it is in the mixture (scaled with it).
    interferer : torch.Tensor
        The interferer as it is in the mixture (``mixture = target +
        interferer``, up to rounding).

    Example
    -------
    >>> t = torch.tensor([0.5, -0.5, 0.5, -0.5])
    >>> i = torch.tensor([1.0, 1.0, -1.0, -1.0])
    >>> m, t2, n = mix_at_snr(t, i)
    >>> n.tolist(), m.tolist()  # scaled to the target's energy, peak 1: kept
    ([0.5, 0.5, -0.5, -0.5], [1.0, 0.0, 0.0, -1.0])
    >>> m, t2, n = mix_at_snr(2 * t, i)  # peak 2 > 1: everything times 0.9 / 2
    >>> [round(v, 3) for v in m.tolist()], [round(v, 3) for v in t2.tolist()]
    ([0.9, 0.0, 0.0, -0.9], [0.45, -0.45, 0.45, -0.45])
    >>> m, t2, n = mix_at_snr(torch.stack([t, t]), torch.stack([i, 0 * i]),
    ...                       peak=1.0, silent="mute")
    >>> m[1].tolist()  # silent interferer: the target alone
    [0.5, -0.5, 0.5, -0.5]
    >>> mix_at_snr(t, 0 * i)
    Traceback (most recent call last):
    ...
    ValueError: the interferer is silent: a mixture at a given SNR is undefined (silent='mute' mixes the target alone)
    """  # noqa: E501
    _check_mix_args(target, interferer, limit, peak, silent)
    target_energy = target.double().pow(2).sum(-1, keepdim=True)
    interferer_energy = interferer.double().pow(2).sum(-1, keepdim=True)
    silent_rows = (target_energy == 0) | (interferer_energy == 0)
    if silent == "raise" and bool(silent_rows.any()):
        _raise_if_silent(target_energy, interferer_energy, target.dim() > 1)
    ratio = _power_ratio(snr_db, target.device)
    safe_energy = torch.where(
        silent_rows, torch.ones_like(interferer_energy), interferer_energy
    )
    gain = torch.sqrt(target_energy / (safe_energy * ratio))
    gain = torch.where(silent_rows, torch.zeros_like(gain), gain)
    interferer = (interferer.double() * gain).to(target.dtype)
    mixture = target + interferer
    max_value = mixture.abs().amax(-1, keepdim=True)
    over = max_value > limit
    if bool(over.any()):
        scale = torch.where(over, peak / max_value, torch.ones_like(max_value))
        mixture, target, interferer = (
            mixture * scale,
            target * scale,
            interferer * scale,
        )
    return mixture, target, interferer
