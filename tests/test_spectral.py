"""Spectral front end: warp/unwarp, padding, masking with the mixture phase."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from speechbrain_textsep.processing.spectral import (
    SpectralMasking,
    frames_for_length,
    grid_sample_matrix,
    linear_frequency_positions,
    log_frequency_positions,
    padded_length,
    unit_linspace,
)

pytestmark = pytest.mark.unit


def grid_sample_warp(mag, positions):
    """The authors' formulation: bilinear grid_sample, identity along time."""
    batch, n_in, frames = mag.shape
    grid_x = torch.linspace(-1, 1, frames)
    grid = torch.stack(
        torch.meshgrid(positions.float(), grid_x, indexing="ij")[::-1], -1
    )
    grid = grid[None].expand(batch, -1, -1, -1)
    return F.grid_sample(mag[:, None], grid, align_corners=True)[:, 0]


def test_warp_matches_grid_sample():
    spectral = SpectralMasking()
    mag = torch.rand(2, 513, 40)
    expected = grid_sample_warp(mag, log_frequency_positions(256))
    # float32 grid coordinates in grid_sample: differences of ~1e-5
    assert torch.allclose(spectral.warp(mag), expected, atol=5e-5)
    mask = torch.rand(2, 256, 40)
    expected = grid_sample_warp(mask, linear_frequency_positions(513))
    assert torch.allclose(spectral.unwarp(mask), expected, atol=5e-5)


def test_warp_grids_are_inverse():
    rows = log_frequency_positions(256)
    # where each warped row lands on the warped axis after the inverse map
    back = torch.log(10 * rows + 11) / torch.log(torch.tensor(21.0)) * 2 - 1
    assert torch.allclose(back, torch.linspace(-1, 1, 256, dtype=torch.float64))


def test_warp_unwarp_round_trip():
    spectral = SpectralMasking()
    # Smooth in frequency: the round trip is nearly exact.
    freqs = torch.linspace(0, 1, 513)[None, :, None]
    smooth = (1 + torch.cos(3 * torch.pi * freqs)).expand(1, 513, 8)
    assert torch.allclose(spectral.unwarp(spectral.warp(smooth)), smooth, atol=2e-2)
    # A warped-domain mask survives unwarp -> warp (every row is resampled
    # from bins that come from that row and its neighbours).
    mask = (torch.rand(1, 256, 8) > 0.5).float()
    mask = F.avg_pool1d(mask.transpose(1, 2), 3, 1, 1).transpose(1, 2)
    assert (spectral.warp(spectral.unwarp(mask)) - mask).abs().mean() < 0.05
    # A constant is kept exactly
    ones = torch.ones(1, 256, 8)
    assert torch.allclose(spectral.warp(spectral.unwarp(ones)), ones, atol=1e-6)


@pytest.mark.parametrize("length", [1, 255, 16000, 65535, 65536, 100003])
def test_padding_gives_frame_multiple_and_trims_back(length):
    spectral = SpectralMasking()
    target = padded_length(length, 256, 128)
    assert target >= length
    assert frames_for_length(target, 256) % 128 == 0
    wav = torch.randn(1, length)
    padded = spectral.pad(wav)
    assert padded.shape[-1] == target
    assert torch.equal(padded[..., :length], wav)
    spec = spectral.stft(padded)
    out = spectral.apply_mask(torch.ones(1, 256, spec.shape[-1]), spec, length)
    assert out.shape == (1, length)
    if length > 1024:
        assert torch.allclose(out, wav, atol=1e-4)


def test_mask_keeps_mixture_phase_and_scales_magnitude():
    spectral = SpectralMasking()
    wav = torch.randn(1, 32512)
    spec = spectral.stft(wav)
    half = spectral.apply_mask(torch.full((1, 256, spec.shape[-1]), 0.5), spec, 32512)
    assert torch.allclose(half, wav / 2, atol=1e-4)
    zero = spectral.apply_mask(torch.zeros(1, 256, spec.shape[-1]), spec, 32512)
    assert zero.abs().max() < 1e-6


def authors_grid(rows, frames, warp):
    """The CLIPSep authors' ``warpgrid``: float64 numpy, cast to float32."""
    x, y = np.meshgrid(np.linspace(-1, 1, frames), np.linspace(-1, 1, rows))
    if warp:
        y = (np.power(21, (y + 1) / 2) - 11) / 10
    else:
        y = np.log(y * 10 + 11) / np.log(21) * 2 - 1
    return torch.from_numpy(np.stack([x, y], -1).astype(np.float32))[None]


def test_positions_are_numpy_linspace():
    for n in (1, 2, 256, 513, 626):
        assert torch.equal(unit_linspace(n), torch.from_numpy(np.linspace(-1, 1, n)))
    grid = authors_grid(256, 4, warp=True)[0, :, 0, 1]
    assert torch.equal(log_frequency_positions(256).float(), grid)
    grid = authors_grid(513, 4, warp=False)[0, :, 0, 1]
    assert torch.equal(linear_frequency_positions(513).float(), grid)


@pytest.mark.parametrize("frames", [32, 256, 626, 1024])
def test_float32_grid_sample_warp_is_the_authors_grid_sample(frames):
    torch.manual_seed(frames)
    authors = SpectralMasking(warp_grid="float32_grid_sample")
    exact = SpectralMasking()
    mag = torch.rand(2, 513, frames) ** 8  # near-zero bins next to loud ones
    expected = F.grid_sample(
        mag[:, None],
        authors_grid(256, frames, True).expand(2, -1, -1, -1),
        align_corners=True,
    )[:, 0]
    log_diff = torch.log(authors.warp(mag) + 1e-10) - torch.log(expected + 1e-10)
    assert log_diff.abs().max() < 4e-6  # float32 rounding of the sums
    # the exact warp does not let neighbouring frames leak in: far larger
    exact_diff = torch.log(exact.warp(mag) + 1e-10) - torch.log(expected + 1e-10)
    assert exact_diff.abs().max() > 1e-2
    mask = torch.rand(2, 256, frames)
    expected = F.grid_sample(
        mask[:, None],
        authors_grid(513, frames, False).expand(2, -1, -1, -1),
        align_corners=True,
    )[:, 0]
    assert (authors.unwarp(mask) - expected).abs().max() < 1e-6


def test_grid_sample_matrix_is_grid_sample():
    # Its weights are grid_sample's, bit for bit (impulses through both).
    positions = log_frequency_positions(256)
    impulses = torch.eye(513)[:, None, :, None].expand(-1, 1, -1, 2).contiguous()
    grid = authors_grid(256, 2, warp=True).expand(513, -1, -1, -1)
    weights = F.grid_sample(impulses, grid, align_corners=True)[:, 0, :, 0].T
    assert torch.equal(grid_sample_matrix(positions, 513), weights)


def test_constant_padding_is_zero_padding():
    wav = torch.randn(1, 5000)
    spectral = SpectralMasking(pad_mode="constant")
    spec = spectral.stft(wav)
    padded = F.pad(wav, (512, 512))
    first = torch.fft.rfft(padded[0, :1024] * torch.hann_window(1024))
    assert torch.allclose(spec[0, :, 0], first, atol=1e-4)
    reflect = SpectralMasking().stft(wav)
    assert not torch.allclose(reflect[0, :, 0], first, atol=1e-1)
    assert torch.allclose(reflect[..., 2:-2], spec[..., 2:-2])
    # the inverse does not depend on the padding
    out = spectral.apply_mask(torch.ones(1, 256, spec.shape[-1]), spec, 5000)
    assert torch.allclose(out, wav, atol=1e-4)


def librosa_stft(wav):
    """``librosa.stft`` 0.9.2 (centred, zeros, periodic Hann, numpy float64 FFT,
    stored as complex64) of ``[L]`` float32 audio: ``[513, T]``."""
    padded = np.pad(wav, 512)
    starts = 256 * np.arange(1 + len(wav) // 256)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1024) / 1024)
    frames = window * padded[starts[:, None] + np.arange(1024)]
    return np.fft.rfft(frames, axis=-1).T.astype(np.complex64)


def test_float64_stft_is_librosa():
    torch.manual_seed(0)
    t = torch.arange(20000) / 16000
    tone = sum(torch.sin(2 * torch.pi * 220 * k * t) / k for k in range(1, 8))
    wav = 0.3 * tone + 1e-4 * torch.randn(20000)  # bins ~120 dB down
    expected = torch.from_numpy(librosa_stft(wav.numpy())).abs()
    errors = {}
    for dtype in ("float32", "float64"):
        spectral = SpectralMasking(pad_mode="constant", stft_dtype=dtype)
        spec = spectral.stft(wav[None])[0]
        assert spec.dtype == torch.complex64
        log_diff = torch.log(spec.abs() + 1e-10) - torch.log(expected + 1e-10)
        errors[dtype] = log_diff.abs().max().item()
        out = spectral.apply_mask(torch.ones(1, 256, spec.shape[-1]), spec[None], 20000)
        assert out.dtype == torch.float32 and torch.allclose(out[0], wav, atol=1e-5)
    assert errors["float64"] < 1e-4 < errors["float32"]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="pad_mode must be one of"):
        SpectralMasking(pad_mode="zeros")
    with pytest.raises(ValueError, match="warp_grid must be one of"):
        SpectralMasking(warp_grid="float32")
    with pytest.raises(ValueError, match="stft_dtype must be one of"):
        SpectralMasking(stft_dtype="float16")
