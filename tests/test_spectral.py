"""Spectral front end: warp/unwarp, padding, masking with the mixture phase."""

import pytest
import torch
import torch.nn.functional as F

from speechbrain_textsep.processing.spectral import (
    SpectralMasking,
    frames_for_length,
    linear_frequency_positions,
    log_frequency_positions,
    padded_length,
)


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
