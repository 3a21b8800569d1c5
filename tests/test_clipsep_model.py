"""U-Net, CLIPSep conditioning, NIT heads and the mask losses."""

import math

import pytest
import torch

from speechbrain_textsep.models.clipsep import CLIPSep
from speechbrain_textsep.models.separator import MaskSeparator
from speechbrain_textsep.models.unet import AudioUNet
from speechbrain_textsep.processing.spectral import SpectralMasking
from speechbrain_textsep.training.losses import (
    binary_mask_targets,
    clipsep_loss,
    mask_loss,
    mixture_weight,
    nit_loss,
)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.integration
def test_paper_size_unet():
    unet = AudioUNet(out_channels=32, ngf=64, levels=7)
    assert abs(n_params(unet) - 30.3e6) < 0.05e6
    encoder_channels = [
        m.out_channels for m in unet.down.modules() if isinstance(m, torch.nn.Conv2d)
    ]
    assert encoder_channels == [64, 128, 256, 512, 512, 512, 512]
    with torch.no_grad():
        out = unet(torch.randn(1, 1, 256, 256))
    assert out.shape == (1, 32, 256, 256)


@pytest.mark.unit
def test_unet_rejects_bad_shapes():
    unet = AudioUNet(out_channels=4, ngf=4, levels=3)
    with pytest.raises(ValueError, match="multiples of 8"):
        unet(torch.randn(1, 1, 64, 30))
    with pytest.raises(ValueError, match=r"\[B, C, F, T\]"):
        unet(torch.randn(64, 32))


def small_model(noise_heads=0):
    torch.manual_seed(0)
    return CLIPSep(AudioUNet(out_channels=6, ngf=4, levels=3), 10, 6, noise_heads)


@pytest.mark.unit
def test_conditioning_formula():
    model = small_model().eval()
    with torch.no_grad():
        model.map_scale.copy_(torch.linspace(0.5, 2, 6))
        model.map_bias.fill_(0.3)
    log_mag = torch.randn(2, 1, 16, 8)
    queries = torch.randn(2, 3, 10)
    with torch.no_grad():
        logits = model(log_mag, queries)
        maps = model.unet(log_mag)
        q = torch.sigmoid(queries @ model.query_proj.weight.T + model.query_proj.bias)
        expected = torch.zeros(2, 3, 16, 8)
        for b in range(2):
            for j in range(3):
                for k in range(6):
                    expected[b, j] += model.map_scale[k] * q[b, j, k] * maps[b, k]
        expected += 0.3
    assert torch.allclose(logits, expected, atol=1e-5)
    # One query per mixture gives the same as Q = 1
    single = model(log_mag, queries[:, 0])
    assert torch.allclose(single, logits[:, 0], atol=1e-6)


@pytest.mark.unit
def test_different_queries_give_different_masks_and_gradients_flow():
    model = small_model()
    with torch.no_grad():
        model.query_proj.weight.normal_()
    log_mag = torch.randn(2, 1, 16, 8)
    queries = torch.randn(2, 2, 10)
    logits = model(log_mag, queries)
    assert not torch.allclose(logits[:, 0], logits[:, 1])
    logits.sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.unit
def test_query_dim_is_checked():
    with pytest.raises(ValueError, match="size 10"):
        small_model()(torch.randn(1, 1, 16, 8), torch.randn(1, 2, 7))


@pytest.mark.unit
def test_nit_heads():
    model = small_model(noise_heads=2)
    log_mag = torch.randn(2, 1, 16, 8)
    queries = torch.randn(2, 2, 10)
    logits, noise = model(log_mag, queries, with_noise=True)
    assert logits.shape == noise.shape == (2, 2, 16, 8)
    # The noise heads see u = mean of the pre-sigmoid query projections
    with torch.no_grad():
        u = model.query_proj(queries).mean(1)
        weights = torch.sigmoid(model.noise_heads[1](u))
        expected = model.combine(model.unet(log_mag), weights[:, None])[:, 0]
    assert torch.allclose(noise[:, 1], expected, atol=1e-5)
    # without noise heads NIT cannot run
    with pytest.raises(RuntimeError, match="no noise heads"):
        small_model()(log_mag, queries, with_noise=True)


@pytest.mark.unit
def test_weighted_bce_against_hand_computation():
    logits = torch.tensor([[[[0.0, 2.0]], [[-1.0, 0.5]]]])  # [1, 2, 1, 2]
    targets = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])
    mix = torch.tensor([[[0.5, 20.0]]])  # weights log1p: 0.405, 3.045
    w = [math.log1p(0.5), math.log1p(20.0)]

    def bce(x, t):
        p = 1 / (1 + math.exp(-x))
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    expected = (
        w[0] * bce(0.0, 1)
        + w[1] * bce(2.0, 0)
        + w[0] * bce(-1.0, 0)
        + w[1] * bce(0.5, 1)
    ) / 4
    loss = clipsep_loss(logits, targets, mixture_weight(mix))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # the probability form used by NIT agrees
    per_item = mask_loss(logits.sigmoid(), targets, mixture_weight(mix))
    assert per_item.mean().item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.unit
def test_binary_targets_and_weight_clamp():
    sources = torch.tensor([[[[3.0, 1.0, 0.0]], [[1.0, 1.0, 0.0]]]])
    mix = torch.tensor([[[4.0, 2.0, 0.0]]])
    targets = binary_mask_targets(sources, mix)
    assert targets.tolist() == [[[[1.0, 0.0, 0.0]], [[0.0, 0.0, 0.0]]]]
    assert mixture_weight(mix)[0, 0, 0, 2].item() == pytest.approx(1e-3)


@pytest.mark.unit
def test_nit_loss_hand_computed():
    # One item, one bin. Query probs 0.2 / 0.1, noise probs 0.5 / 0.3.
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    q = torch.tensor([logit(0.2), logit(0.1)]).view(1, 2, 1, 1)
    n = torch.tensor([logit(0.5), logit(0.3)]).view(1, 2, 1, 1)
    t = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    w = torch.full((1, 1, 1, 1), 2.0)

    def bce(p, target):
        return -2.0 * (target * math.log(p) + (1 - target) * math.log(1 - p))

    l11, l12 = bce(0.7, 1), bce(0.5, 1)  # source 1 (target 1) with noise 1 / 2
    l21, l22 = bce(0.6, 0), bce(0.4, 0)  # source 2 (target 0) with noise 1 / 2
    invariant = min((l11 + l22) / 2, (l12 + l21) / 2)
    reg = 0.1 * max(0.0, 0.5 + 0.3 - 0.25)
    loss = nit_loss(q, n, t, w)
    assert loss.item() == pytest.approx(invariant + reg, rel=1e-5)


@pytest.mark.unit
def test_mask_separator_output_length_and_zero_query_gain():
    spectral = SpectralMasking()
    model = CLIPSep(AudioUNet(out_channels=4, ngf=4, levels=7), 8, 4).eval()
    separator = MaskSeparator(spectral, model)
    mixture = torch.randn(2, 20001)
    with torch.no_grad():
        estimates = separator(mixture, torch.randn(2, 3, 8))
    assert estimates.shape == (2, 3, 20001)
    assert torch.isfinite(estimates).all()
    with pytest.raises(ValueError, match="2 query sets for 1 mixtures|query sets"):
        separator(mixture[:1], torch.randn(2, 1, 8))
