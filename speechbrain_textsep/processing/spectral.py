"""Spectral front end of the mask-based separators (CLIPSep, Sound of Pixels).

The separator works on a log-frequency-warped magnitude spectrogram and
predicts a mask there; the mask is warped back to linear frequency, applied
to the mixture STFT (keeping the mixture phase) and inverted.

The warp of the authors' code resamples the frequency axis with bilinear
``grid_sample`` (``align_corners=True``). Because the sampling grid is the
identity along time, that is a 1-D linear interpolation along frequency, so
here it is a fixed ``[n_out, n_in]`` interpolation matrix applied with one
matmul: the same numbers (see the tests), without building a grid for every
batch.

Authors
 * speechbrain-textsep contributors
"""

import math

import torch
from torch import nn


def log_frequency_positions(n_rows):
    """Positions in [-1, 1] (linear frequency) sampled by the log-frequency warp.

    Row ``y`` in ``linspace(-1, 1, n_rows)`` reads the linear-frequency
    coordinate ``(21 ** ((y + 1) / 2) - 11) / 10``, as in Sound of Pixels
    and CLIPSep.

    Arguments
    ---------
    n_rows : int
        Number of rows of the warped spectrogram.

    Returns
    -------
    torch.Tensor
        ``[n_rows]`` coordinates in [-1, 1], increasing.

    Example
    -------
    >>> pos = log_frequency_positions(5)
    >>> pos[0].item(), pos[-1].item()
    (-1.0, 1.0)
    """
    y = torch.linspace(-1.0, 1.0, n_rows, dtype=torch.float64)
    return (torch.pow(21.0, (y + 1) / 2) - 11) / 10


def linear_frequency_positions(n_bins):
    """Inverse of :func:`log_frequency_positions`: where each linear bin sits.

    Arguments
    ---------
    n_bins : int
        Number of linear-frequency bins (``n_fft // 2 + 1``).

    Returns
    -------
    torch.Tensor
        ``[n_bins]`` coordinates in [-1, 1] along the warped axis.

    Example
    -------
    >>> pos = linear_frequency_positions(513)
    >>> round(pos[0].item(), 6), round(pos[-1].item(), 6)
    (-1.0, 1.0)
    """
    v = torch.linspace(-1.0, 1.0, n_bins, dtype=torch.float64)
    return torch.log(10 * v + 11) / math.log(21) * 2 - 1


def interpolation_matrix(positions, n_in):
    """Matrix of 1-D linear interpolation at ``positions`` (align_corners=True).

    Arguments
    ---------
    positions : torch.Tensor
        ``[n_out]`` sampling coordinates in [-1, 1] over an axis of ``n_in``.
    n_in : int
        Length of the axis that is sampled.

    Returns
    -------
    torch.Tensor
        ``[n_out, n_in]`` float32 matrix ``W`` with ``out = W @ x``.

    Example
    -------
    >>> interpolation_matrix(torch.tensor([-1.0, 0.0, 1.0]), 3)
    tensor([[1., 0., 0.],
            [0., 1., 0.],
            [0., 0., 1.]])
    """
    index = ((positions.to(torch.float64) + 1) / 2 * (n_in - 1)).clamp(0, n_in - 1)
    low = index.floor().long().clamp(max=n_in - 2) if n_in > 1 else index.long()
    frac = index - low
    rows = torch.arange(len(positions))
    matrix = torch.zeros(len(positions), n_in, dtype=torch.float64)
    matrix[rows, low] += 1 - frac
    if n_in > 1:
        matrix[rows, low + 1] += frac
    return matrix.float()


def frames_for_length(length, hop_length):
    """Number of STFT frames of a centred STFT of ``length`` samples.

    Arguments
    ---------
    length : int
        Signal length in samples.
    hop_length : int
        STFT hop in samples.

    Returns
    -------
    int
        Frame count.

    Example
    -------
    >>> frames_for_length(65535, 256)
    256
    """
    return 1 + length // hop_length


def padded_length(length, hop_length, frame_multiple):
    """Smallest length ``>= length`` whose centred STFT has a multiple of frames.

    Arguments
    ---------
    length : int
        Signal length in samples.
    hop_length : int
        STFT hop in samples.
    frame_multiple : int
        The U-Net needs a time axis that is a multiple of ``2 ** levels``.

    Returns
    -------
    int
        The length to zero-pad to (``length`` itself when it already fits).

    Example
    -------
    >>> padded_length(65535, 256, 128)
    65535
    >>> padded_length(16000, 256, 128)
    32512
    >>> frames_for_length(32512, 256)
    128
    """
    frames = frames_for_length(length, hop_length)
    if frames % frame_multiple == 0:
        return length
    target = math.ceil(frames / frame_multiple) * frame_multiple
    return (target - 1) * hop_length


class SpectralMasking(nn.Module):
    """STFT, log-frequency warp, masking with the mixture phase, and inverse STFT.

    Arguments
    ---------
    n_fft : int
        FFT size (1024 in CLIPSep).
    hop_length : int
        Hop in samples (256).
    win_length : int
        Hann window length (1024).
    n_warped : int
        Rows of the log-frequency spectrogram (256). ``None`` disables the warp.
    frame_multiple : int
        Inputs are zero-padded so that the frame count is a multiple of this
        (``2 ** levels`` of the U-Net: 128) and trimmed back on output.

    Example
    -------
    >>> spectral = SpectralMasking()
    >>> wav = torch.randn(2, 16000)
    >>> spec = spectral.stft(spectral.pad(wav))
    >>> spec.shape
    torch.Size([2, 513, 128])
    >>> spectral.warp(spec.abs()).shape
    torch.Size([2, 256, 128])
    >>> mask = torch.ones(2, 256, 128)
    >>> out = spectral.apply_mask(mask, spec, length=16000)
    >>> out.shape, torch.allclose(out, wav, atol=1e-4)
    (torch.Size([2, 16000]), True)
    """

    def __init__(
        self,
        n_fft=1024,
        hop_length=256,
        win_length=1024,
        n_warped=256,
        frame_multiple=128,
    ):
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.n_freq = n_fft // 2 + 1
        self.n_warped = n_warped
        self.frame_multiple = frame_multiple
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        if n_warped is not None:
            self.register_buffer(
                "warp_matrix",
                interpolation_matrix(log_frequency_positions(n_warped), self.n_freq),
                persistent=False,
            )
            self.register_buffer(
                "unwarp_matrix",
                interpolation_matrix(linear_frequency_positions(self.n_freq), n_warped),
                persistent=False,
            )

    def pad(self, wav):
        """Zero-pads ``[..., time]`` so that the frame count fits the U-Net."""
        length = wav.shape[-1]
        target = padded_length(length, self.hop_length, self.frame_multiple)
        if target == length:
            return wav
        return nn.functional.pad(wav, (0, target - length))

    def stft(self, wav):
        """Complex STFT ``[..., time] -> [..., freq, frames]`` (centred, Hann)."""
        shape = wav.shape[:-1]
        spec = torch.stft(
            wav.reshape(-1, wav.shape[-1]).float(),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            return_complex=True,
        )
        return spec.reshape(*shape, *spec.shape[-2:])

    def istft(self, spec, length):
        """Inverse of :meth:`stft`, trimmed or padded to ``length`` samples."""
        shape = spec.shape[:-2]
        wav = torch.istft(
            spec.reshape(-1, *spec.shape[-2:]),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            length=length,
        )
        return wav.reshape(*shape, length)

    def warp(self, linear):
        """Linear-frequency ``[..., n_freq, T]`` to log-frequency ``[..., rows, T]``."""
        if self.n_warped is None:
            return linear
        return torch.matmul(self.warp_matrix, linear)

    def unwarp(self, warped):
        """Log-frequency ``[..., rows, T]`` back to linear ``[..., n_freq, T]``."""
        if self.n_warped is None:
            return warped
        return torch.matmul(self.unwarp_matrix, warped)

    def apply_mask(self, mask, spec, length):
        """Applies a warped-domain mask to the mixture STFT and inverts it.

        Arguments
        ---------
        mask : torch.Tensor
            ``[..., rows, T]`` mask in the warped domain (values >= 0).
        spec : torch.Tensor
            Complex mixture STFT ``[..., n_freq, T]`` broadcastable to the mask.
        length : int
            Output length in samples (the unpadded input length).

        Returns
        -------
        torch.Tensor
            ``[..., length]`` waveform: ``|X| * mask`` with the mixture phase.
        """
        linear_mask = self.unwarp(mask.float())
        return self.istft(spec * linear_mask, length)
