"""The one SNR mixer: SNR measured back, peak rule, silence, batches."""

import math

import pytest
import torch

from speechbrain_textsep.processing.mixing import mix_at_snr

pytestmark = pytest.mark.unit


def snr_of(target, interferer):
    """10 log10 of the energy ratio over the last axis (float64)."""
    t, i = target.double().pow(2).sum(-1), interferer.double().pow(2).sum(-1)
    return 10 * torch.log10(t / i)


def signals(batch=3, length=4000, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        0.1 * torch.randn(batch, length, generator=g),
        0.3 * torch.randn(batch, length, generator=g),
    )


@pytest.mark.parametrize("snr_db", [-10.0, 0.0, 6.0, 20.0])
def test_snr_measured_back(snr_db):
    target, interferer = signals()
    mixture, t, i = mix_at_snr(target, interferer, snr_db)
    torch.testing.assert_close(
        snr_of(t, i), torch.full((3,), snr_db, dtype=torch.float64), atol=1e-4, rtol=0
    )
    torch.testing.assert_close(mixture, t + i)
    assert mixture.dtype == target.dtype and mixture.shape == target.shape


def test_hand_computed_gain_without_limiting():
    t = torch.tensor([0.5, -0.5, 0.5, -0.5])  # energy 1
    i = torch.tensor([1.0, 1.0, -1.0, -1.0])  # energy 4
    # 0 dB: g = sqrt(1 / 4) = 0.5, mixture peak 1.0: not above the limit
    mixture, t2, i2 = mix_at_snr(t, i)
    assert i2.tolist() == [0.5, 0.5, -0.5, -0.5]
    assert mixture.tolist() == [1.0, 0.0, 0.0, -1.0]
    assert torch.equal(t2, t)
    # 20 dB: g = sqrt(1 / (4 * 100)) = 0.05
    _, _, i2 = mix_at_snr(t, i, 20.0)
    torch.testing.assert_close(i2, 0.05 * i)


def test_peak_rule_scales_mixture_and_both_sources_together():
    t = torch.tensor([1.0, -1.0, 1.0, -1.0])
    i = torch.tensor([1.0, 1.0, -1.0, -1.0])
    # 0 dB: g = 1, mixture [2, 0, 0, -2], peak 2 > 1: times 0.9 / 2 = 0.45
    mixture, t2, i2 = mix_at_snr(t, i)
    torch.testing.assert_close(mixture, torch.tensor([0.9, 0.0, 0.0, -0.9]))
    torch.testing.assert_close(t2, 0.45 * t)
    torch.testing.assert_close(i2, 0.45 * i)
    # training's rule: peak = limit = 1, the mixture divided by its peak
    mixture, t2, i2 = mix_at_snr(t, i, peak=1.0)
    torch.testing.assert_close(mixture, torch.tensor([1.0, 0.0, 0.0, -1.0]))
    torch.testing.assert_close(t2, 0.5 * t)
    # a higher limit keeps the mixture as it is
    mixture, t2, _ = mix_at_snr(t, i, limit=2.0, peak=2.0)
    assert mixture.tolist() == [2.0, 0.0, 0.0, -2.0] and torch.equal(t2, t)
    with pytest.raises(ValueError, match="peak <= limit"):
        mix_at_snr(t, i, limit=1.0, peak=1.5)


def test_peak_rule_is_per_row_and_keeps_the_snr():
    target, interferer = signals()
    target[1] *= 40  # only row 1 clips
    mixture, t, i = mix_at_snr(target, interferer, 3.0)
    peaks = mixture.abs().amax(-1)
    assert peaks[1].item() == pytest.approx(0.9)
    assert peaks[0] <= 1 and peaks[2] <= 1
    assert torch.equal(t[0], target[0]) and torch.equal(t[2], target[2])
    torch.testing.assert_close(snr_of(t, i), torch.full((3,), 3.0).double())


def test_batch_rows_equal_single_signals():
    target, interferer = signals()
    target[2] *= 30
    snr = torch.tensor([0.0, 5.0, -5.0])
    batch = mix_at_snr(target, interferer, snr)
    for row in range(3):
        single = mix_at_snr(target[row], interferer[row], float(snr[row]))
        for b, s in zip(batch, single):
            torch.testing.assert_close(b[row], s)


def test_matches_the_former_training_mixer():
    """``mix_at_0db`` of CLAPSep training (eps-guarded, divided by the peak)."""
    target, interferer = signals()
    target[0] *= 50
    e_t = target.pow(2).sum(-1, keepdim=True)
    e_i = interferer.pow(2).sum(-1, keepdim=True)
    ref = target + interferer * torch.sqrt((e_t + 1e-8) / (e_i + 1e-8))
    scale = ref.abs().amax(-1, keepdim=True).clamp(min=1.0)
    mixture, t, _ = mix_at_snr(target, interferer, 0.0, peak=1.0, silent="mute")
    torch.testing.assert_close(mixture, ref / scale)
    torch.testing.assert_close(t, target / scale)


def test_silence_raises_or_mutes_never_nan():
    target, interferer = signals()
    interferer[1] = 0
    with pytest.raises(ValueError, match=r"interferer is silent \(rows \[1\]\)"):
        mix_at_snr(target, interferer)
    with pytest.raises(ValueError, match="the target is silent:"):
        mix_at_snr(torch.zeros(5), torch.ones(5))
    target[2] = 0
    mixture, t, i = mix_at_snr(target, interferer, 10.0, silent="mute")
    assert torch.isfinite(mixture).all()
    assert torch.equal(mixture[1], target[1]) and torch.equal(i[1], interferer[1])
    assert mixture[2].abs().max() == 0 and i[2].abs().max() == 0
    assert math.isclose(snr_of(t[0], i[0]).item(), 10.0, abs_tol=1e-4)
    with pytest.raises(ValueError, match="silent must be one of"):
        mix_at_snr(target, interferer, silent="ignore")


def test_shape_errors():
    with pytest.raises(ValueError, match="same shape"):
        mix_at_snr(torch.ones(4), torch.ones(5))
    with pytest.raises(ValueError, match="floating-point"):
        mix_at_snr(torch.ones(4, dtype=torch.long), torch.ones(4, dtype=torch.long))
