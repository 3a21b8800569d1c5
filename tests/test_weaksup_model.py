"""The separator of weakly-supervised bi-modal separation: the attention
U-Net, its conditioning by the CLAP text embedding and token sequence, the
packed condition, and the CLAP token sequence itself."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from speechbrain_textsep.encoders.clap import (
    TINY_CLAP_CFG,
    CLAPQueryEncoder,
    build_tiny_tokenizer,
)
from speechbrain_textsep.models.attention_unet import TextAttentionBlock
from speechbrain_textsep.models.weaksup import (
    WeakSupMaskNet,
    WeakSupSeparator,
    pack_text_condition,
    text_condition_size,
    unpack_text_condition,
)
from speechbrain_textsep.processing.spectral import SpectralMasking

pytestmark = pytest.mark.unit

TINY = {"n_maps": 4, "ngf": 4, "levels": 3, "attn_levels": 2, "heads": 2}
D, S, DT = 8, 5, 6


def tiny_net(seed=0, **size):
    """A tiny mask network with PyTorch's default (non-vanishing) weights.

    The authors' initialisation (conv N(0, 1e-3)) makes every mask ~0.5 up
    to 1e-6, which would hide what the conditioning does.
    """
    torch.manual_seed(seed)
    net = WeakSupMaskNet(**{**TINY, **size}, query_dim=D, token_dim=DT)
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            type(module).reset_parameters(module)
    return net.eval()


def queries(batch=2, n_queries=1, seed=1, real=S):
    """Random ``[B, Q, D]`` embeddings, ``[B, Q, S, DT]`` tokens and masks."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.zeros(batch, n_queries, S, dtype=torch.bool)
    mask[..., :real] = True
    return (
        torch.randn(batch, n_queries, D, generator=gen),
        torch.randn(batch, n_queries, S, DT, generator=gen),
        mask,
    )


def tiny_separator(net):
    spectral = SpectralMasking(
        n_fft=62, hop_length=16, win_length=62, n_warped=None, frame_multiple=8
    )
    return WeakSupSeparator(spectral, net)


# ------------------------------------------------------------------ shapes
def test_mask_net_shapes_one_and_several_queries():
    net = tiny_net()
    log_mag = torch.randn(2, 1, 16, 24)
    e, tokens, mask = queries(n_queries=3)
    assert net(log_mag, e[:, 0], tokens[:, 0], mask[:, 0]).shape == (2, 1, 16, 24)
    assert net(log_mag, e, tokens, mask).shape == (2, 3, 16, 24)


def test_separator_shapes_and_views():
    separator = tiny_separator(tiny_net())
    condition = pack_text_condition(*queries(n_queries=3))
    mixture = torch.randn(2, 1000)
    assert separator(mixture, condition).shape == (2, 3, 1000)
    masks, mag, spec = separator.masks(mixture, condition)
    # 1000 samples are padded to 63 * 16 = 1008: 64 frames of 32 bins
    assert masks.shape == (2, 3, 32, 64) and mag.shape == (2, 32, 64)
    assert spec.shape == (2, 32, 64) and spec.is_complex()
    assert torch.equal(mag, spec.abs())
    assert 0 < masks.min() and masks.max() < 1


def test_paper_size():
    """SPEC section 3: 512 x 512 (131070 samples, STFT 1022 / 256), ngf 64,
    7 downs, attention at the 3 deepest levels with 8 heads."""
    net = WeakSupMaskNet()
    blocks = net.unet.attention
    assert len(blocks) == 3 and net.unet.first_attn_level == 4
    assert all(b.self_attn.att.num_heads == 8 for b in blocks)
    assert [b.self_norm.normalized_shape[0] for b in blocks] == [512, 512, 512]
    assert blocks[0].cross_attn.att.kdim == 768 and net.query_dim == 512
    spectral = SpectralMasking(n_fft=1022, hop_length=256, win_length=1022,
                               n_warped=None, frame_multiple=128)  # fmt: skip
    spec = spectral.stft(spectral.pad(torch.zeros(1, 131070)))
    assert spec.shape == (1, 512, 512)
    assert text_condition_size(512, 77, 768) == 512 + 77 * 769


# ------------------------------------------------------------ conditioning
def test_two_texts_give_two_masks():
    """Both conditioning paths act: the tokens (cross-attention) and the
    pooled embedding (late conditioning)."""
    net = tiny_net()
    log_mag = torch.randn(2, 1, 16, 8)
    e, tokens, mask = queries(seed=1)
    e2, tokens2, _ = queries(seed=2)
    with torch.no_grad():
        base = net(log_mag, e, tokens, mask).sigmoid()
        other_tokens = net(log_mag, e, tokens2, mask).sigmoid()
        other_embedding = net(log_mag, e2, tokens, mask).sigmoid()
    assert (base - other_tokens).abs().max() > 1e-3
    assert (base - other_embedding).abs().max() > 1e-3


def test_padding_tokens_change_nothing():
    net = tiny_net()
    log_mag = torch.randn(2, 1, 16, 8)
    e, tokens, mask = queries(real=2)
    with torch.no_grad():
        base = net(log_mag, e, tokens, mask)
        padded = tokens.clone()
        padded[..., 2:, :] = 1e3 * torch.randn_like(padded[..., 2:, :])
        assert torch.allclose(net(log_mag, e, padded, mask), base, atol=1e-6)
        real = tokens.clone()
        real[..., 1, :] += 1.0
        assert (net(log_mag, e, real, mask) - base).abs().max() > 1e-4


def test_queries_together_equal_queries_alone():
    """The query-free levels are shared by the queries of a mixture: the
    same masks as one query at a time."""
    net = tiny_net()
    log_mag = torch.randn(2, 1, 16, 8)
    e, tokens, mask = queries(n_queries=3, real=3)
    with torch.no_grad():
        together = net(log_mag, e, tokens, mask)
        alone = [net(log_mag, e[:, q], tokens[:, q], mask[:, q]) for q in range(3)]
    assert torch.allclose(together, torch.cat(alone, dim=1), atol=1e-5)


def test_every_parameter_learns():
    net = tiny_net().train()
    separator = tiny_separator(net)
    condition = pack_text_condition(*queries(n_queries=2))
    separator.masks(torch.randn(2, 1000), condition).masks.mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing
    assert all(p.grad.abs().sum() > 0 for p in net.unet.attention.parameters())


# ------------------------------------------------------------- the packing
def test_pack_unpack_round_trip():
    e, tokens, mask = queries(batch=3, n_queries=2, real=4)
    condition = pack_text_condition(e, tokens, mask)
    assert condition.shape == (3, 2, text_condition_size(D, S, DT))
    for n_tokens in (S, None):
        e2, tokens2, mask2 = unpack_text_condition(condition, D, n_tokens, DT)
        assert torch.equal(e2, e) and torch.equal(tokens2, tokens)
        assert mask2.dtype == torch.bool and torch.equal(mask2, mask)
    with pytest.raises(ValueError, match="has size 50, got 43"):
        unpack_text_condition(condition, D, 6, DT)
    with pytest.raises(ValueError, match="do not describe the same queries"):
        pack_text_condition(e, tokens[:, :1], mask)


# ---------------------------------------------------------------- bad input
def test_bad_inputs_are_clear_errors():
    net = tiny_net()
    e, tokens, mask = queries()
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.randn(2, 1, 12, 8), e, tokens, mask)
    with pytest.raises(ValueError, match="at least one real token"):
        net(torch.randn(2, 1, 16, 8), e, tokens, torch.zeros_like(mask))
    with pytest.raises(ValueError, match="text tokens must have width 6"):
        net(torch.randn(2, 1, 16, 8), e, tokens[..., :4], mask)
    with pytest.raises(ValueError, match="query embeddings must have size 8"):
        net(torch.randn(2, 1, 16, 8), e[..., :7], tokens, mask)
    separator = tiny_separator(net)
    with pytest.raises(ValueError, match=r"condition must be \[B, Q, C\]"):
        separator(torch.randn(2, 1000), pack_text_condition(e, tokens, mask)[:, 0])
    with pytest.raises(ValueError, match="heads dividing it"):
        TextAttentionBlock(6, token_dim=4, heads=4)


# ------------------------------------------------------- CLAP token sequence
@pytest.fixture(scope="module")
def clap(tmp_path_factory):
    texts = ["The sound of violin", "The sound of a dog barking loudly"]
    folder = build_tiny_tokenizer(tmp_path_factory.mktemp("tok"), texts)
    torch.manual_seed(0)
    return CLAPQueryEncoder(None, model_cfg=TINY_CLAP_CFG, tokenizer=folder)


def test_text_tokens_are_what_the_embedding_pools(clap):
    """laion_clap pools the first token (RoBERTa's pooler), then projects
    and L2-normalises: the same numbers as ``encode_text``."""
    texts = ["The sound of violin", "a dog barking loudly in the rain"]
    tokens, mask = clap.encode_text_tokens(texts)
    assert tokens.shape == (2, 77, clap.token_dim) and clap.n_tokens == 77
    lengths = [len(clap.tokenizer(t)["input_ids"]) for t in texts]
    assert mask.sum(dim=1).tolist() == lengths
    assert torch.all(tokens[~mask] == 0) and torch.all(tokens[mask].abs().sum(-1) > 0)
    pooled = clap.clap.text_branch.pooler(tokens)
    embedding = F.normalize(clap.clap.text_projection(pooled), dim=-1)
    assert torch.allclose(embedding, clap.encode_text(texts), atol=1e-5)
    assert not tokens.requires_grad
    with pytest.raises(ValueError, match="between 2 and 77"):
        clap.encode_text_tokens(texts, max_length=78)
    with pytest.raises(ValueError, match="empty text query"):
        clap.encode_text_tokens(["  "])
