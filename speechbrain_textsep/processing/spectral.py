"""Spectral front end of the mask-based separators (CLIPSep, Sound of Pixels).

The separator works on a log-frequency-warped magnitude spectrogram and
predicts a mask there; the mask is warped back to linear frequency, applied
to the mixture STFT (keeping the mixture phase) and inverted.

Three settings decide whether the numbers are the authors' ones:

- ``pad_mode``: the centred STFT pads ``n_fft // 2`` samples on each side.
  The CLIPSep authors compute it with ``librosa.stft`` (librosa 0.9.2), which
  pads with zeros (``"constant"``); ``torch.stft`` pads by reflection by
  default (``"reflect"``, the default here, kept for CLAPSep and for model
  folders written before the setting existed). The first and last two frames
  differ (log-magnitudes by up to ~4), and the U-Net spreads that over the
  whole mask, so every CLIPSep-family recipe, template and import sets
  ``"constant"``. The inverse STFT does not depend on it.
- ``warp_grid``: the authors' warp resamples the frequency axis with
  bilinear ``grid_sample`` (``align_corners=True``) on a float32 grid that is
  the identity along time. ``"exact"`` (default) is the linear interpolation
  it stands for, computed in float64 and applied as one fixed
  ``[n_out, n_in]`` matrix product. ``"float32_grid_sample"`` reproduces
  ``grid_sample`` on the authors' float32 grid to float32 rounding: the
  frequency weights come from the float32 coordinates, and the time axis is
  resampled as ``grid_sample`` does, where the float32 coordinates let a
  neighbouring frame leak in with a weight of up to ~``T * 3e-8``. The two
  differ by up to ~1e-2 in log-magnitude at near-zero bins next to loud
  ones. The CLIPSep checkpoint import sets ``"float32_grid_sample"``.
- ``stft_dtype``: ``librosa.stft`` runs numpy's FFT in float64 and rounds the
  spectrum to complex64; ``torch.stft`` in float32 differs from it by ~1e-7
  of the loudest bin, which is ~5e-3 in log-magnitude at bins 120 dB down
  and moved the masks of random networks by up to 2.5e-4. ``"float64"``
  computes both FFTs in float64 (the import sets it); the default
  ``"float32"`` is the training setting.

Authors
 * speechbrain-textsep contributors
"""

import math

import torch
from torch import nn

#: Padding modes of the centred STFT (``torch.stft``'s ``pad_mode``).
PAD_MODES = ("constant", "reflect", "replicate", "circular")
#: How the log-frequency warp samples the spectrogram (see the module docstring).
WARP_GRIDS = ("exact", "float32_grid_sample")
#: Precisions of the STFT and inverse STFT computations.
STFT_DTYPES = ("float32", "float64")


def unit_linspace(n):
    """``n`` points from -1 to 1 in float64, computed as ``numpy.linspace``.

    ``numpy.linspace(-1, 1, n)`` (the authors' grid) is ``-1 + i * step``
    with the last point set to 1; ``torch.linspace`` rounds some points the
    other way by one float64 ulp.

    Arguments
    ---------
    n : int
        Number of points.

    Returns
    -------
    torch.Tensor
        ``[n]`` float64 points.

    Example
    -------
    >>> unit_linspace(5)
    tensor([-1.0000, -0.5000,  0.0000,  0.5000,  1.0000], dtype=torch.float64)
    """
    if n == 1:
        return torch.full((1,), -1.0, dtype=torch.float64)
    points = torch.arange(n, dtype=torch.float64) * (2.0 / (n - 1)) - 1.0
    points[-1] = 1.0
    return points


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
    y = unit_linspace(n_rows)
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
    v = unit_linspace(n_bins)
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


def grid_sample_taps(positions, n_in):
    """Taps of bilinear ``grid_sample`` (``align_corners=True``, zero padding).

    The coordinates are rounded to float32 and unnormalised, floored and
    weighted in float32, as ``torch.nn.functional.grid_sample`` does with a
    float32 grid; a neighbour outside the axis has weight 0.

    Arguments
    ---------
    positions : torch.Tensor
        ``[n_out]`` sampling coordinates in [-1, 1] over an axis of ``n_in``.
    n_in : int
        Length of the axis that is sampled.

    Returns
    -------
    tuple of torch.Tensor
        ``index`` ``[2, n_out]`` (long, lower and upper neighbour, clamped
        into the axis) and ``weight`` ``[2, n_out]`` (float32).

    Example
    -------
    >>> index, weight = grid_sample_taps(torch.tensor([-1.0, 0.25, 1.0]), 3)
    >>> index
    tensor([[0, 1, 2],
            [1, 2, 2]])
    >>> weight
    tensor([[1.0000, 0.7500, 1.0000],
            [0.0000, 0.2500, 0.0000]])
    """
    coords = positions.to(torch.float32)
    scale = torch.tensor((n_in - 1) / 2, dtype=torch.float32)
    unnormalized = (coords + 1) * scale
    low = unnormalized.floor()
    frac = unnormalized - low
    index = torch.stack([low, low + 1]).long()
    weight = torch.stack([1 - frac, frac])
    inside = (index >= 0) & (index < n_in)
    weight = torch.where(inside, weight, torch.zeros_like(weight))
    return index.clamp(0, max(n_in - 1, 0)), weight


def grid_sample_matrix(positions, n_in):
    """Matrix form ``[n_out, n_in]`` of :func:`grid_sample_taps` (float32).

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
    >>> grid_sample_matrix(torch.tensor([-1.0, 0.25, 1.0]), 3)
    tensor([[1.0000, 0.0000, 0.0000],
            [0.0000, 0.7500, 0.2500],
            [0.0000, 0.0000, 1.0000]])
    """
    index, weight = grid_sample_taps(positions, n_in)
    matrix = torch.zeros(len(positions), n_in, dtype=torch.float32)
    rows = torch.arange(len(positions)).expand_as(index)
    return matrix.index_put_((rows, index), weight, accumulate=True)


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
    pad_mode : str
        Padding of the centred STFT (one of :data:`PAD_MODES`): ``"constant"``
        (zeros) is the authors' ``librosa.stft`` and the setting of every
        CLIPSep-family recipe; the default ``"reflect"`` is ``torch.stft``'s.
    warp_grid : str
        ``"exact"`` (float64 linear interpolation) or
        ``"float32_grid_sample"`` (the authors' ``grid_sample`` on a float32
        grid, to float32 rounding); see the module docstring.
    stft_dtype : str
        Precision of the FFTs: ``"float32"`` (default) or ``"float64"``, as
        numpy's FFT in ``librosa`` (the spectrum is rounded to complex64
        either way; float64 needs a device that has it, not MPS).

    Example
    -------
    >>> spectral = SpectralMasking(pad_mode="constant")
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
    >>> authors = SpectralMasking(pad_mode="constant",
    ...                           warp_grid="float32_grid_sample", stft_dtype="float64")
    >>> authors.stft(wav).dtype
    torch.complex64
    >>> diff = authors.warp(spec.abs()) - spectral.warp(spec.abs())
    >>> bool(diff.abs().max() < 1e-3 * spec.abs().max())
    True
    """

    def __init__(
        self,
        n_fft=1024,
        hop_length=256,
        win_length=1024,
        n_warped=256,
        frame_multiple=128,
        pad_mode="reflect",
        warp_grid="exact",
        stft_dtype="float32",
    ):
        super().__init__()
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
        if warp_grid not in WARP_GRIDS:
            raise ValueError(
                f"warp_grid must be one of {WARP_GRIDS}, got {warp_grid!r}"
            )
        if stft_dtype not in STFT_DTYPES:
            raise ValueError(
                f"stft_dtype must be one of {STFT_DTYPES}, got {stft_dtype!r}"
            )
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.n_freq = n_fft // 2 + 1
        self.n_warped = n_warped
        self.frame_multiple = frame_multiple
        self.pad_mode = pad_mode
        self.warp_grid = warp_grid
        self.stft_dtype = stft_dtype
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        if n_warped is not None:
            build = (
                grid_sample_matrix
                if warp_grid == "float32_grid_sample"
                else interpolation_matrix
            )
            self.register_buffer(
                "warp_matrix",
                build(log_frequency_positions(n_warped), self.n_freq),
                persistent=False,
            )
            self.register_buffer(
                "unwarp_matrix",
                build(linear_frequency_positions(self.n_freq), n_warped),
                persistent=False,
            )

    def pad(self, wav):
        """Zero-pads ``[..., time]`` so that the frame count fits the U-Net."""
        length = wav.shape[-1]
        target = padded_length(length, self.hop_length, self.frame_multiple)
        if target == length:
            return wav
        return nn.functional.pad(wav, (0, target - length))

    def _window(self, dtype):
        """The Hann window, computed in ``dtype`` (float64: as scipy's)."""
        if dtype == self.window.dtype:
            return self.window
        return torch.hann_window(
            self.win_length, dtype=dtype, device=self.window.device
        )

    def stft(self, wav):
        """Complex64 STFT ``[..., time] -> [..., freq, frames]`` (centred, Hann)."""
        shape = wav.shape[:-1]
        dtype = getattr(torch, self.stft_dtype)
        spec = torch.stft(
            wav.reshape(-1, wav.shape[-1]).float().to(dtype),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self._window(dtype),
            center=True,
            pad_mode=self.pad_mode,
            return_complex=True,
        )
        return spec.to(torch.complex64).reshape(*shape, *spec.shape[-2:])

    def istft(self, spec, length):
        """Inverse of :meth:`stft` (float32), trimmed or padded to ``length``."""
        shape = spec.shape[:-2]
        dtype = getattr(torch, self.stft_dtype)
        wav = torch.istft(
            spec.reshape(-1, *spec.shape[-2:]).to(dtype.to_complex()),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self._window(dtype),
            center=True,
            length=length,
        )
        return wav.float().reshape(*shape, length)

    def resample_frames(self, x):
        """The time axis of ``[..., T]`` through the authors' float32 grid.

        The identity for ``warp_grid: exact``; for ``float32_grid_sample``
        the time half of their ``grid_sample`` (x = ``linspace(-1, 1, T)``
        in float32), which lets a neighbouring frame leak in slightly.
        """
        if self.warp_grid == "exact":
            return x
        index, weight = grid_sample_taps(unit_linspace(x.shape[-1]), x.shape[-1])
        index, weight = index.to(x.device), weight.to(x.device, x.dtype)
        return x[..., index[0]] * weight[0] + x[..., index[1]] * weight[1]

    def warp(self, linear):
        """Linear-frequency ``[..., n_freq, T]`` to log-frequency ``[..., rows, T]``."""
        if self.n_warped is None:
            return linear
        return self.resample_frames(torch.matmul(self.warp_matrix, linear))

    def unwarp(self, warped):
        """Log-frequency ``[..., rows, T]`` back to linear ``[..., n_freq, T]``."""
        if self.n_warped is None:
            return warped
        return torch.matmul(self.unwarp_matrix, self.resample_frames(warped))

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
