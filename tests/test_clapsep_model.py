"""CLAPSep: HTSAT feature copy with LoRA, FiLM Swin decoder, MaskNet, loss."""

import math
import threading

import pytest
import torch
from torch import nn

from speechbrain_textsep.encoders.laion import clap_module
from speechbrain_textsep.models.clapsep import (
    CLAPSep,
    clapsep_condition,
    normalize_condition,
)
from speechbrain_textsep.models.film import FiLM, FiLMSkip
from speechbrain_textsep.models.htsat_features import (
    HTSATFeatures,
    build_htsat,
    frames_to_image,
    image_to_frames,
)
from speechbrain_textsep.models.swin_decoder import PatchExpand, unmerge_patches
from speechbrain_textsep.training.clapsep_losses import clapsep_loss

SR = 32000
TINY_HTSAT = {"embed_dim": 16, "depths": (1, 1, 1, 1), "num_heads": (1, 2, 4, 8)}
TINY_MODEL = {
    "lora_rank": 16,
    "decoder_dim": 16,
    "decoder_heads": (1, 2, 4, 8),
    "masknet_dim": 32,
    "masknet_heads": 2,
    "masknet_layers": 1,
    "masknet_ff": 64,
    "pad_seconds": None,  # the padding to 10 s is tested on its own
}


@pytest.fixture(scope="module")
def htsat():
    torch.manual_seed(0)
    return build_htsat(**TINY_HTSAT).eval()


def tiny_model(htsat, seed=1, **overrides):
    torch.manual_seed(seed)
    return CLAPSep(htsat, **{**TINY_MODEL, **overrides})


@pytest.fixture(scope="module")
def model(htsat):
    return tiny_model(htsat).eval()


def random_condition(batch, seed=2):
    gen = torch.Generator().manual_seed(seed)
    pos, neg = (
        torch.randn(batch, 512, generator=gen),
        torch.randn(batch, 512, generator=gen),
    )
    return clapsep_condition(pos, neg)


def mixture(batch, seconds=10.0, seed=3):
    gen = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(batch, int(seconds * SR), generator=gen)


# ---------------------------------------------------------------- encoder


@pytest.mark.unit
def test_frames_to_image_is_htsat_reshape(htsat):
    x = torch.randn(2, 1, 1024, 64)
    image = frames_to_image(x, htsat.freq_ratio)
    assert torch.equal(image, htsat.reshape_wav2img(x))
    assert torch.equal(image_to_frames(image, htsat.freq_ratio), x)


@pytest.mark.unit
def test_encoder_levels_and_equivalence_to_htsat(htsat):
    features = HTSATFeatures(htsat, lora_rank=16)
    assert features.grids == [(64, 64), (32, 32), (16, 16), (8, 8), (8, 8)]
    assert features.dims == [16, 32, 64, 128, 128]
    wav = torch.randn(2, 480000)  # 10 s at 48 kHz -> 1001 frames
    with torch.no_grad():
        feats = features(wav)
        # The same path through the original HTSAT's own modules (LoRA starts
        # at zero): its front end with the authors' padding to 1024 frames,
        # its reshape to an image and its BasicLayer forwards.
        power = htsat.spectrogram_extractor(wav)
        assert power.shape[2] == 1001
        power = nn.functional.pad(power, (0, 0, 0, 1024 - 1001))
        mel = htsat.bn0(htsat.logmel_extractor(power).transpose(1, 3)).transpose(1, 3)
        h = htsat.patch_embed(htsat.reshape_wav2img(mel))
        expected = [h]
        for layer in htsat.layers:
            h = layer(h)[0]
            expected.append(h)
    for got, want, (gh, gw), dim in zip(feats, expected, features.grids, features.dims):
        assert got.shape == (2, gh * gw, dim)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.unit
def test_encoder_rejects_other_modules_and_long_inputs(htsat):
    with pytest.raises(TypeError, match="HTSAT_Swin_Transformer"):
        HTSATFeatures(nn.Linear(2, 2))
    features = HTSATFeatures(htsat, lora_rank=0)
    with pytest.raises(ValueError, match="at most 1024 frames"):
        features(torch.zeros(1, 1024 * 480))


@pytest.mark.unit
def test_lora_parameters_tiny(htsat):
    features = HTSATFeatures(htsat, lora_rank=16, lora_alpha=1.0)
    trainable = {n: p for n, p in features.named_parameters() if p.requires_grad}
    # qkv: A (r x d) + B (3d x r) + bias 3d; proj: A (r x d) + B (d x r) + bias d
    dims = [16, 32, 64, 128]  # one block per layer
    assert sum(p.numel() for p in trainable.values()) == sum(100 * d for d in dims)
    assert all(
        ".adapter_" in n or n.endswith(".pretrained_module.bias") for n in trainable
    )
    loras = [m for m in features.modules() if type(m).__name__ == "LoRA"]
    assert len(loras) == 2 * len(dims)
    assert all(m.scaling == 1.0 / 16 for m in loras)
    assert all(torch.count_nonzero(m.adapter_up_proj.weight) == 0 for m in loras)
    assert not any("relative_position_bias_table" in n for n in trainable)


@pytest.mark.unit
def test_original_htsat_untouched(htsat):
    before = {k: v.clone() for k, v in htsat.state_dict().items()}
    flags = {n: p.requires_grad for n, p in htsat.named_parameters()}
    model = tiny_model(htsat).train()
    optimizer = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=1.0
    )
    loss = model(mixture(1, 1.0), random_condition(1)).pow(2).mean()
    loss.backward()
    optimizer.step()
    after = htsat.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert flags == {n: p.requires_grad for n, p in htsat.named_parameters()}
    attention = clap_module().htsat.WindowAttention
    for module in htsat.modules():
        if isinstance(module, attention):
            assert type(module.qkv) is nn.Linear and type(module.proj) is nn.Linear
    assert not htsat.training  # the fixture's mode, not changed by model.train()


# ---------------------------------------------------------------- decoder


@pytest.mark.unit
def test_unmerge_patches_inverts_htsat_patch_merging():
    merging = clap_module().htsat.PatchMerging((8, 6), dim=3)
    merging.norm, merging.reduction = nn.Identity(), nn.Identity()
    x = torch.randn(2, 8 * 6, 3)
    assert torch.equal(unmerge_patches(merging(x), 4, 3), x)


@pytest.mark.unit
def test_patch_expand_shapes():
    expand = PatchExpand((8, 4), 32)
    assert expand(torch.randn(3, 32, 32)).shape == (3, 16 * 8, 16)
    with pytest.raises(ValueError, match="even"):
        PatchExpand((2, 2), 5)


@pytest.mark.unit
def test_film_identity_and_skip():
    film = FiLM(condition_dim=10, channels=6)
    h, c = torch.randn(2, 7, 6), torch.randn(2, 10)
    film.set_identity()
    assert torch.equal(film(h, c), h)
    with torch.no_grad():
        film.beta.bias.fill_(0.5)
        film.gamma.bias.fill_(2.0)
    torch.testing.assert_close(film(h, c), 2.0 * h + 0.5)
    skip = FiLMSkip(in_dim=6, out_dim=6, condition_dim=10)
    skip.film.set_identity()
    with torch.no_grad():
        skip.proj.weight.copy_(torch.eye(6))
        skip.proj.bias.zero_()
    residual = torch.randn(2, 7, 6)
    torch.testing.assert_close(skip(h, c, residual), skip.norm(h + residual))
    torch.testing.assert_close(skip(h, c), skip.norm(h))


@pytest.mark.unit
def test_decoder_output_is_the_htsat_image(model):
    feats = [
        torch.randn(2, h * w, d)
        for d, (h, w) in zip(model.encoder.dims, model.encoder.grids)
    ]
    with torch.no_grad():
        image = model.decoder(feats, torch.randn(2, 1024))
    assert image.shape == (2, 1, 256, 256)
    assert image_to_frames(image, 4).shape == (2, 1, 1024, 64)


# ---------------------------------------------------------------- model


@pytest.mark.unit
def test_condition_helpers():
    e = torch.randn(2, 512)
    c = clapsep_condition(positive=e)
    assert c.shape == (2, 1024) and torch.equal(c[:, 512:], torch.zeros(2, 512))
    assert torch.equal(clapsep_condition(negative=e)[:, :512], torch.zeros(2, 512))
    with pytest.raises(ValueError, match="positive or a negative"):
        clapsep_condition()
    with pytest.raises(ValueError, match=r"\[batch, 512\]"):
        clapsep_condition(torch.randn(2, 3))
    n = normalize_condition(torch.cat([c, torch.zeros(1, 1024)]))
    assert torch.isfinite(n).all() and torch.equal(n[2], torch.zeros(1024))
    torch.testing.assert_close(n[:2].norm(dim=-1), torch.ones(2))


@pytest.mark.unit
def test_zeroed_queries_and_normalisation(model):
    e = random_condition(1)[:, :512]
    pos_only = clapsep_condition(positive=e)
    neg_only = clapsep_condition(negative=e)
    both = clapsep_condition(e, -e)
    conditions = torch.cat([pos_only, neg_only, torch.zeros(1, 1024), both, 7.0 * both])
    with torch.no_grad():
        out = model(mixture(1, 2.0).expand(5, -1), conditions)
    assert torch.isfinite(out).all()
    assert (out[0] - out[1]).abs().max() > 1e-6  # positive vs negative only
    assert (out[0] - out[2]).abs().max() > 1e-6
    # normalised in the forward: the scale of the condition does not matter
    torch.testing.assert_close(out[3], out[4], rtol=0, atol=1e-6)


@pytest.mark.unit
def test_forward_shapes_and_masks(model):
    condition = random_condition(2)
    with torch.no_grad():
        estimate, mask = model.separate(mixture(2, 0.5), condition)
        masks = model.masks(mixture(2, 0.5), condition)
    assert estimate.shape == (2, 16000) and estimate.dtype == torch.float32
    assert mask.shape == (2, 513, 1 + 16000 // 320)
    assert ((mask > 0) & (mask < 1)).all()
    assert torch.equal(masks, mask)


@pytest.mark.integration
def test_short_inputs_are_padded_to_10_s(htsat):
    model = tiny_model(htsat, pad_seconds=10.0).eval()
    assert model.pad_samples == 320000
    condition, length = random_condition(1), 12345
    with torch.no_grad():
        estimate, mask = model.separate(mixture(1, length / SR), condition)
        padded = nn.functional.pad(mixture(1, length / SR), (0, 320000 - length))
        full = model(padded, condition)
    assert estimate.shape == (1, length)
    assert mask.shape == (1, 513, 1 + length // 320)
    # a short input is the zero-padded 10 s input, trimmed
    torch.testing.assert_close(estimate, full[:, :length], rtol=0, atol=1e-5)


@pytest.mark.unit
def test_length_limits(model):
    assert model.max_samples == 1024 * 320 - 1  # 10.24 s minus one sample
    condition = random_condition(1)
    with torch.no_grad():
        out = model(mixture(1, model.max_samples / SR), condition)
    assert out.shape == (1, model.max_samples)
    with pytest.raises(ValueError, match="at most 327679 samples"):
        model(torch.zeros(1, model.max_samples + 1), condition)


@pytest.mark.unit
def test_bad_inputs(model, htsat):
    with pytest.raises(ValueError, match="batch, time"):
        model(torch.zeros(SR), random_condition(1))
    with pytest.raises(ValueError, match=r"\[batch, 1024\]"):
        model(torch.zeros(1, SR), torch.zeros(1, 512))
    with pytest.raises(ValueError, match="2 conditions for 1 mixtures"):
        model(torch.zeros(1, SR), random_condition(2))
    with pytest.raises(ValueError, match="frame period"):
        CLAPSep(htsat, hop_length=256)


@pytest.mark.integration
def test_batch_independence(model):
    mix, condition = mixture(2, 3.0), random_condition(2)
    with torch.no_grad():
        batch = model(mix, condition)
        alone = model(mix[:1], condition[:1])
    torch.testing.assert_close(alone[0], batch[0], rtol=0, atol=1e-5)


@pytest.mark.unit
def test_thread_safety(model):
    mixes = [mixture(1, 2.0, seed=s) for s in (5, 6)]
    conditions = [random_condition(1, seed=s) for s in (7, 8)]
    with torch.no_grad():
        expected = [model(m, c) for m, c in zip(mixes, conditions)]
    results = [None, None]

    def run(i):
        with torch.no_grad():
            results[i] = model(mixes[i], conditions[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for got, want in zip(results, expected):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


@pytest.mark.unit
def test_gradients_reach_only_trainable_parameters(htsat):
    model = tiny_model(htsat).train()
    assert not model.encoder.training  # the HTSAT copy always runs in eval mode
    target = mixture(2, 1.0, seed=9)
    loss = clapsep_loss(model(mixture(2, 1.0), random_condition(2)), target)
    loss.backward()
    trained = set(model.trained_keys())
    for name, param in model.named_parameters():
        assert (param.grad is not None) == param.requires_grad, name
        assert param.requires_grad == (name in trained), name
    ups = [p for n, p in model.named_parameters() if "adapter_up_proj" in n]
    assert ups and all(p.grad.abs().sum() > 0 for p in ups)


@pytest.mark.unit
def test_trainable_state_dict_round_trip(htsat, tmp_path):
    source = tiny_model(htsat, seed=1).train()
    with torch.no_grad():
        for param in source.parameters():
            if param.requires_grad:
                param.add_(0.01 * torch.randn_like(param))
        source(mixture(2, 1.0), random_condition(2))  # updates BN statistics
    state = source.trainable_state_dict()
    assert not any("pretrained_module.weight" in k or "spectrogram" in k for k in state)
    assert any(k.endswith("mask_net.spec_norm.running_mean") for k in state)
    torch.save(state, tmp_path / "clapsep.ckpt")
    loaded = torch.load(tmp_path / "clapsep.ckpt", weights_only=True)

    target = tiny_model(htsat, seed=4)
    target.load_trainable_state_dict(loaded)
    source.eval(), target.eval()
    mix, condition = mixture(1, 2.0), random_condition(1)
    with torch.no_grad():
        assert torch.equal(source(mix, condition), target(mix, condition))
    with pytest.raises(KeyError, match="1 missing"):
        target.load_trainable_state_dict(
            {k: v for k, v in loaded.items() if not k.startswith("mask_net.output")}
            | {"mask_net.output_proj.weight": loaded["mask_net.output_proj.weight"]}
        )


@pytest.mark.unit
def test_checkpointer_saves_only_the_trained_part(htsat, tmp_path):
    from speechbrain.utils.checkpoints import Checkpointer

    source = tiny_model(htsat, seed=1)
    with torch.no_grad():
        source.mask_net.output_proj.bias.fill_(0.25)
    Checkpointer(tmp_path, {"model": source}).save_checkpoint()
    target = tiny_model(htsat, seed=4)
    Checkpointer(tmp_path, {"model": target}).recover_if_possible()
    assert torch.equal(
        target.mask_net.output_proj.bias, source.mask_net.output_proj.bias
    )
    (saved,) = tmp_path.glob("CKPT*/model.ckpt")
    assert torch.load(saved, weights_only=True).keys() == set(source.trained_keys())


@pytest.mark.integration
def test_full_size_parameter_counts():
    torch.manual_seed(0)
    model = CLAPSep(build_htsat())  # HTSAT-base geometry, random weights
    assert model.encoder.grids == [(64, 64), (32, 32), (16, 16), (8, 8), (8, 8)]
    assert model.encoder.dims == [128, 256, 512, 1024, 1024]
    blocks = [level[0] for level in model.decoder.blocks]
    assert [
        (b.dim, b.num_heads, b.window_size, b.input_resolution) for b in blocks
    ] == [
        (128, 4, 8, (64, 64)),
        (256, 8, 8, (32, 32)),
        (512, 16, 8, (16, 16)),
        (1024, 32, 8, (8, 8)),
    ]
    inverse = model.decoder.inverse_patch_embed
    assert (inverse.in_channels, inverse.out_channels) == (128, 1)
    assert inverse.kernel_size == inverse.stride == (4, 4)
    layer = model.mask_net.transformer.layers[0]
    assert len(model.mask_net.transformer.layers) == 3
    assert (layer.linear1.in_features, layer.linear1.out_features) == (640, 2560)
    assert (
        layer.self_attn.num_heads == 8 and model.mask_net.input_proj.in_features == 577
    )
    counts = model.parameter_counts()
    # LoRA: 100 d per block (r = 16) over 2 x 128, 2 x 256, 12 x 512, 2 x 1024
    assert counts["lora"] == 100 * (2 * 128 + 2 * 256 + 12 * 512 + 2 * 1024)
    assert counts["trainable"] == 44_359_616  # SPEC: ~44 M
    assert counts["total"] == 113_229_592  # + the frozen CLAP: ~320 M
    size_mb = sum(
        v.numel() * v.element_size() for v in model.trainable_state_dict().values()
    )
    assert math.isclose(size_mb / 1e6, 178, abs_tol=1)  # SPEC: ~178 MB


# ---------------------------------------------------------------- loss


@pytest.mark.unit
def test_loss_hand_computed():
    target = torch.tensor([1.0, -1.0, 1.0, -1.0])
    noise = torch.tensor([1.0, 1.0, -1.0, -1.0])
    # 1) orthogonal zero-mean error at -20 dB: SNR = SI-SNR = 20 dB
    assert clapsep_loss(target + 0.1 * noise, target).item() == pytest.approx(
        -20.0, abs=1e-4
    )
    # 2) half the target: SNR = 10 log10(4 / 1); SI-SNR only limited by eps
    #    (10 log10(1 / 1e-8) = 80 dB)
    expected = -0.9 * 10 * math.log10(4.0) - 0.1 * 80.0
    assert clapsep_loss(0.5 * target, target).item() == pytest.approx(
        expected, abs=1e-3
    )
    # 3) an error of 1 on the first sample: SNR = 10 log10(4 / 1); zero-mean
    #    estimate [1.75, -1.25, 0.75, -1.25], projection 5 / 4 target (energy
    #    6.25), residual [0.5, 0, -0.5, 0] (energy 0.5): SI-SNR = 10 log10(12.5)
    est = target + torch.tensor([1.0, 0.0, 0.0, 0.0])
    assert clapsep_loss(est, target).item() == pytest.approx(
        -0.9 * 10 * math.log10(4.0) - 0.1 * 10 * math.log10(12.5), abs=1e-4
    )
    # batch: mean of the items; "none" keeps them
    batch = torch.stack([target + 0.1 * noise, 0.5 * target])
    per_item = clapsep_loss(batch, target.expand(2, -1), reduction="none")
    torch.testing.assert_close(
        per_item, torch.tensor([-20.0, expected]), atol=1e-3, rtol=0
    )
    assert clapsep_loss(batch, target.expand(2, -1)).item() == pytest.approx(
        per_item.mean().item()
    )
    # weight 1: pure SNR
    assert clapsep_loss(0.5 * target, target, snr_weight=1.0).item() == pytest.approx(
        -10 * math.log10(4.0), abs=1e-4
    )
    with pytest.raises(ValueError, match="same shape"):
        clapsep_loss(torch.zeros(3), torch.zeros(4))
