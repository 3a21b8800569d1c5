"""Waveform-in, waveform-out wrapper around a query-conditioned mask network.

Authors
 * speechbrain-textsep contributors
"""

import torch
from torch import nn

LOG_EPS = 1e-10


def analyze(spectral, mixture):
    """Spectral views of a ``[B, L]`` mixture, padded to fit the U-Net.

    Arguments
    ---------
    spectral : speechbrain_textsep.processing.spectral.SpectralMasking
        The spectral front end.
    mixture : torch.Tensor
        ``[B, L]`` waveforms.

    Returns
    -------
    dict
        ``spec`` complex STFT ``[B, n_freq, T]``, ``mag`` its warped magnitude
        ``[B, F, T]`` and ``log_mag`` the network input ``[B, 1, F, T]``.

    Example
    -------
    >>> from speechbrain_textsep.processing.spectral import SpectralMasking
    >>> views = analyze(SpectralMasking(), torch.randn(1, 16000))
    >>> views["log_mag"].shape
    torch.Size([1, 1, 256, 128])
    """
    spec = spectral.stft(spectral.pad(mixture))
    mag = spectral.warp(spec.abs())
    return {"spec": spec, "mag": mag, "log_mag": torch.log(mag + LOG_EPS)[:, None]}


class MaskSeparator(nn.Module):
    """Separates the sound that a query embedding describes from a mixture.

    Pads the mixture to a length the U-Net accepts, computes the warped
    log-magnitude, asks the mask network for one soft mask per query, applies
    it with the mixture phase and trims back to the input length.

    Arguments
    ---------
    spectral : speechbrain_textsep.processing.spectral.SpectralMasking
        STFT, warp and masking.
    mask_net : torch.nn.Module
        Maps ``([B, 1, F, T], [B, Q, D])`` to ``[B, Q, F, T]`` mask logits
        (e.g. :class:`speechbrain_textsep.models.clipsep.CLIPSep`).

    Example
    -------
    >>> from speechbrain_textsep.models.clipsep import CLIPSep
    >>> from speechbrain_textsep.models.unet import AudioUNet
    >>> from speechbrain_textsep.processing.spectral import SpectralMasking
    >>> net = CLIPSep(AudioUNet(out_channels=4, ngf=4, levels=3), 8, 4)
    >>> sep = MaskSeparator(SpectralMasking(n_fft=64, hop_length=16,
    ...     win_length=64, n_warped=16, frame_multiple=8), net)
    >>> sep(torch.randn(2, 1000), torch.randn(2, 3, 8)).shape
    torch.Size([2, 3, 1000])
    >>> from speechbrain_textsep.models.pit import PITSep  # query-free
    >>> pit = MaskSeparator(sep.spectral, PITSep(AudioUNet(4, 4, 3), n_maps=4))
    >>> pit(torch.randn(2, 1000)).shape
    torch.Size([2, 2, 1000])
    """

    def __init__(self, spectral, mask_net):
        super().__init__()
        self.spectral = spectral
        self.mask_net = mask_net

    def forward(self, mixture, queries=None):
        """Soft-mask estimates of every queried source.

        Arguments
        ---------
        mixture : torch.Tensor
            ``[B, L]`` mixtures.
        queries : torch.Tensor or None
            ``[B, Q, D]`` query embeddings (``[B, D]`` for one query each);
            None for a query-free mask network (e.g. PIT), whose every
            output is returned.

        Returns
        -------
        torch.Tensor
            ``[B, Q, L]`` estimates (``[B, L]`` for ``[B, D]`` queries;
            ``[B, K, L]`` for the ``K`` outputs of a query-free network).
        """
        if mixture.dim() != 2:
            raise ValueError(
                f"mixture must be [batch, time], got {tuple(mixture.shape)}"
            )
        single = queries is not None and queries.dim() == 2
        if queries is not None:
            queries = queries.unsqueeze(1) if single else queries
            if queries.shape[0] != mixture.shape[0]:
                raise ValueError(
                    f"{queries.shape[0]} query sets for {mixture.shape[0]} mixtures"
                )
        autocast_off = torch.autocast(device_type=mixture.device.type, enabled=False)
        with autocast_off:
            views = analyze(self.spectral, mixture.float())
        if queries is None:
            logits = self.mask_net(views["log_mag"])
        else:
            logits = self.mask_net(views["log_mag"], queries)
        masks = logits.float().sigmoid()
        with autocast_off:
            estimates = self.spectral.apply_mask(
                masks, views["spec"][:, None], mixture.shape[-1]
            )
        return estimates.squeeze(1) if single else estimates
