"""Separator of weakly-supervised bi-modal separation (Mahmud et al., ICLR 2024).

A text query is the CLAP text embedding ``e`` (pooled, 512-d) and the CLAP
text tower's token sequence (``S`` tokens of width ``Dt``, with a mask of
the real ones). The mixture's ``log1p`` magnitude (linear frequency, no
warp: STFT 1022 / 256 gives 512 x 512 for 131070 samples at 16 kHz) goes
through a U-Net whose deepest levels attend to the tokens
(:class:`~speechbrain_textsep.models.attention_unet.CondAttentionUNet`), and
its ``K`` maps are combined with CLIPSep's late conditioning by ``e``:
``logit = sum_k alpha_k sigmoid(W e + b)_k S_k + beta``. The mask is the
sigmoid of the logit, applied to the mixture STFT with its phase.

So that a query stays one vector (the ``embed_query -> [C]`` contract of
the interfaces, and ``[B, Q, C]`` batches of queries), the three parts are
packed into ``C = D + S * Dt + S`` numbers (:func:`pack_text_condition`,
:func:`unpack_text_condition`).

Authors
 * speechbrain-textsep contributors
"""

from typing import NamedTuple

import torch
from torch import nn

from speechbrain_textsep.models.attention_unet import CondAttentionUNet
from speechbrain_textsep.models.clipsep import CLIPSep
from speechbrain_textsep.models.separator import analyze

__all__ = [
    "MaskViews",
    "WeakSupMaskNet",
    "WeakSupSeparator",
    "pack_text_condition",
    "text_condition_size",
    "text_conditions",
    "unpack_text_condition",
]


def text_condition_size(embedding_dim, n_tokens, token_dim):
    """Size ``C = D + S * Dt + S`` of a packed text condition.

    Example
    -------
    >>> text_condition_size(512, 77, 768)
    59725
    """
    return embedding_dim + n_tokens * token_dim + n_tokens


def pack_text_condition(embedding, tokens, mask):
    """One vector per query: ``[e, tokens (flattened), mask (0/1)]``.

    Arguments
    ---------
    embedding : torch.Tensor
        ``[..., D]`` pooled text embeddings.
    tokens : torch.Tensor
        ``[..., S, Dt]`` token sequences.
    mask : torch.Tensor
        ``[..., S]`` True (or 1) for the real tokens.

    Returns
    -------
    torch.Tensor
        ``[..., D + S * Dt + S]`` float conditions.

    Example
    -------
    >>> e, tokens = torch.randn(2, 4), torch.randn(2, 3, 5)
    >>> mask = torch.tensor([[True, True, False], [True, False, False]])
    >>> condition = pack_text_condition(e, tokens, mask)
    >>> condition.shape
    torch.Size([2, 22])
    >>> e2, tokens2, mask2 = unpack_text_condition(condition, 4, 3, 5)
    >>> torch.equal(e2, e), torch.equal(tokens2, tokens), torch.equal(mask2, mask)
    (True, True, True)
    """
    lead = embedding.shape[:-1]
    if tokens.shape[:-2] != lead or mask.shape != tokens.shape[:-1]:
        raise ValueError(
            f"embedding {tuple(embedding.shape)}, tokens {tuple(tokens.shape)} "
            f"and mask {tuple(mask.shape)} do not describe the same queries "
            "([..., D], [..., S, Dt], [..., S])"
        )
    dtype = embedding.dtype if embedding.is_floating_point() else torch.float32
    return torch.cat(
        [
            embedding.to(dtype),
            tokens.to(dtype).flatten(-2),
            mask.to(dtype),
        ],
        dim=-1,
    )


def unpack_text_condition(condition, embedding_dim, n_tokens=None, token_dim=768):
    """Inverse of :func:`pack_text_condition`.

    Arguments
    ---------
    condition : torch.Tensor
        ``[..., C]`` packed conditions.
    embedding_dim : int
        ``D`` (512 for CLAP).
    n_tokens : int or None
        ``S``; None: deduced from ``C``.
    token_dim : int
        ``Dt`` (768 for roberta-base).

    Returns
    -------
    embedding : torch.Tensor
        ``[..., D]``.
    tokens : torch.Tensor
        ``[..., S, Dt]``.
    mask : torch.Tensor
        ``[..., S]`` bool.

    Example
    -------
    >>> condition = torch.zeros(3, 4 + 2 * 5 + 2)
    >>> [t.shape for t in unpack_text_condition(condition, 4, token_dim=5)]
    [torch.Size([3, 4]), torch.Size([3, 2, 5]), torch.Size([3, 2])]
    >>> unpack_text_condition(torch.zeros(3, 17), 4, token_dim=5)
    Traceback (most recent call last):
    ...
    ValueError: a text condition of size 17 does not hold a 4-d embedding and ...
    """
    size = condition.shape[-1]
    if n_tokens is None:
        n_tokens, rest = divmod(size - embedding_dim, token_dim + 1)
        if rest or n_tokens < 1:
            raise ValueError(
                f"a text condition of size {size} does not hold a "
                f"{embedding_dim}-d embedding and tokens of width {token_dim} "
                f"(size {embedding_dim} + S * {token_dim + 1})"
            )
    expected = text_condition_size(embedding_dim, n_tokens, token_dim)
    if size != expected:
        raise ValueError(
            f"a text condition of {n_tokens} tokens of width {token_dim} and a "
            f"{embedding_dim}-d embedding has size {expected}, got {size}"
        )
    split = [embedding_dim, n_tokens * token_dim, n_tokens]
    embedding, tokens, mask = condition.split(split, dim=-1)
    tokens = tokens.unflatten(-1, (n_tokens, token_dim))
    return embedding, tokens, mask > 0.5


def text_conditions(encoder, texts, n_tokens=None):
    """Packed conditions ``[N, C]`` of texts: what a text query is to the model.

    The CLAP text embedding (:meth:`CLAPQueryEncoder.encode_text`) and token
    sequence (:meth:`CLAPQueryEncoder.encode_text_tokens`), texts verbatim,
    packed by :func:`pack_text_condition`; no gradient.

    Arguments
    ---------
    encoder : speechbrain_textsep.encoders.clap.CLAPQueryEncoder
        The frozen CLAP.
    texts : str or list of str
        Texts (prompts, captions).
    n_tokens : int or None
        Tokens a text (None: the tokenizer's 77).

    Returns
    -------
    torch.Tensor
        ``[N, D + S * Dt + S]`` on the CLAP's device.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_textsep.encoders.clap import (
    ...     TINY_CLAP_CFG, CLAPQueryEncoder, build_tiny_tokenizer)
    >>> tok = build_tiny_tokenizer(tempfile.mkdtemp(), ["The sound of violin"])
    >>> clap = CLAPQueryEncoder(None, model_cfg=TINY_CLAP_CFG, tokenizer=tok)
    >>> text_conditions(clap, ["violin", "flute"], n_tokens=16).shape
    torch.Size([2, 1040])
    >>> text_condition_size(clap.embedding_dim, 16, clap.token_dim)
    1040
    """
    tokens, mask = encoder.encode_text_tokens(texts, max_length=n_tokens)
    return pack_text_condition(encoder.encode_text(texts), tokens, mask)


class WeakSupMaskNet(CLIPSep):
    """Mask logits of text queries: attention U-Net + CLIPSep late conditioning.

    A :class:`~speechbrain_textsep.models.clipsep.CLIPSep` (its query
    projection, ``alpha``, ``beta`` and initialisation) whose U-Net is a
    :class:`~speechbrain_textsep.models.attention_unet.CondAttentionUNet`
    attending to the query's text tokens; the U-Net thus runs once per
    query (its levels above the first attention level once per mixture).

    Arguments
    ---------
    n_maps : int
        U-Net output maps ``K`` (32 in the paper).
    ngf : int
        Channels of the first U-Net level (64).
    levels : int
        Down-sampling levels (7).
    attn_levels : int
        Deepest levels with self- and cross-attention (3).
    heads : int
        Attention heads (8).
    query_dim : int
        Size ``D`` of the pooled text embedding (512 for CLAP).
    token_dim : int
        Width ``Dt`` of the text tokens (768 for roberta-base).
    res_layers : int
        Convolutions per residual block (1).
    mlp_ratio : float
        Hidden width of the attention MLPs in channels (2).

    Example
    -------
    >>> net = WeakSupMaskNet(n_maps=4, ngf=4, levels=3, attn_levels=2, heads=2,
    ...                      query_dim=8, token_dim=6)
    >>> log_mag = torch.randn(2, 1, 16, 8)
    >>> e, tokens = torch.randn(2, 8), torch.randn(2, 5, 6)
    >>> mask = torch.ones(2, 5, dtype=torch.bool)
    >>> net(log_mag, e, tokens, mask).shape
    torch.Size([2, 1, 16, 8])
    >>> net(log_mag, e[:, None].expand(2, 3, 8), tokens[:, None].expand(2, 3, 5, 6),
    ...     mask[:, None].expand(2, 3, 5)).shape
    torch.Size([2, 3, 16, 8])
    """

    def __init__(
        self,
        n_maps=32,
        ngf=64,
        levels=7,
        attn_levels=3,
        heads=8,
        query_dim=512,
        token_dim=768,
        res_layers=1,
        mlp_ratio=2.0,
    ):
        unet = CondAttentionUNet(
            out_channels=n_maps,
            ngf=ngf,
            levels=levels,
            attn_levels=attn_levels,
            heads=heads,
            token_dim=token_dim,
            res_layers=res_layers,
            mlp_ratio=mlp_ratio,
        )
        super().__init__(unet, query_dim=query_dim, n_maps=n_maps)

    @property
    def token_dim(self):
        """Width of the text tokens the model attends to."""
        return self.unet.token_dim

    def forward(self, log_mag, embedding, tokens, token_mask):
        """Mask logits of each query.

        Arguments
        ---------
        log_mag : torch.Tensor
            ``[B, 1, F, T]`` network input (``log1p`` magnitude).
        embedding : torch.Tensor
            ``[B, D]`` (one query each) or ``[B, Q, D]`` pooled embeddings.
        tokens : torch.Tensor
            ``[B, S, Dt]`` or ``[B, Q, S, Dt]`` text tokens.
        token_mask : torch.Tensor
            ``[B, S]`` or ``[B, Q, S]``, True for the real tokens.

        Returns
        -------
        torch.Tensor
            ``[B, Q, F, T]`` mask logits (``Q = 1`` for ``[B, D]`` queries).
        """
        if embedding.dim() == 2:
            embedding, tokens, token_mask = (
                embedding[:, None],
                tokens[:, None],
                token_mask[:, None],
            )
        if embedding.dim() != 3 or embedding.shape[:2] != tokens.shape[:2]:
            raise ValueError(
                f"embedding {tuple(embedding.shape)} and tokens "
                f"{tuple(tokens.shape)} must be [B, Q, D] and [B, Q, S, Dt]"
            )
        weights = self.project_queries(embedding).sigmoid()  # [B, Q, K]
        maps = self.unet(log_mag, tokens, token_mask.bool())  # [B, Q, K, F, T]
        return torch.einsum("bqk,bqkft->bqft", weights * self.map_scale, maps) + (
            self.map_bias
        )


class MaskViews(NamedTuple):
    """What :meth:`WeakSupSeparator.masks` computes (a tuple with names).

    Arguments
    ---------
    masks : torch.Tensor
        ``[B, Q, F, T]`` sigmoid masks in the network's domain.
    mag : torch.Tensor
        ``[B, F, T]`` mixture magnitude in that domain (``|X|``: linear
        frequency unless the front end warps it).
    spec : torch.Tensor
        ``[B, n_freq, T]`` complex mixture STFT (of the padded mixture).
    """

    masks: torch.Tensor
    mag: torch.Tensor
    spec: torch.Tensor


class WeakSupSeparator(nn.Module):
    """Waveforms and packed text conditions in, one estimate per query out.

    Arguments
    ---------
    spectral : speechbrain_textsep.processing.spectral.SpectralMasking
        STFT and masking (paper: ``n_fft=1022, hop_length=256,
        win_length=1022, n_warped=None``, ``frame_multiple = 2 ** levels``).
    mask_net : WeakSupMaskNet
        The mask network.

    Example
    -------
    >>> from speechbrain_textsep.processing.spectral import SpectralMasking
    >>> spectral = SpectralMasking(n_fft=62, hop_length=16, win_length=62,
    ...                            n_warped=None, frame_multiple=8)
    >>> net = WeakSupMaskNet(n_maps=4, ngf=4, levels=3, attn_levels=2, heads=2,
    ...                      query_dim=8, token_dim=6)
    >>> separator = WeakSupSeparator(spectral, net)
    >>> condition = pack_text_condition(
    ...     torch.randn(2, 3, 8), torch.randn(2, 3, 5, 6),
    ...     torch.ones(2, 3, 5, dtype=torch.bool))
    >>> separator(torch.randn(2, 1000), condition).shape
    torch.Size([2, 3, 1000])
    >>> views = separator.masks(torch.randn(2, 1000), condition)
    >>> views.masks.shape, views.mag.shape
    (torch.Size([2, 3, 32, 64]), torch.Size([2, 32, 64]))
    """

    def __init__(self, spectral, mask_net):
        super().__init__()
        self.spectral = spectral
        self.mask_net = mask_net

    def unpack(self, condition):
        """``(embedding, tokens, mask)`` of ``[..., C]`` conditions."""
        return unpack_text_condition(
            condition,
            self.mask_net.query_dim,
            token_dim=self.mask_net.token_dim,
        )

    def masks(self, mixture, condition):
        """Sigmoid masks of every query, and the mixture's spectral views.

        Arguments
        ---------
        mixture : torch.Tensor
            ``[B, L]`` mixtures.
        condition : torch.Tensor
            ``[B, Q, C]`` packed text conditions (:func:`pack_text_condition`).

        Returns
        -------
        MaskViews
            ``(masks [B, Q, F, T], mag [B, F, T], spec [B, n_freq, T])``.
        """
        if mixture.dim() != 2:
            raise ValueError(
                f"mixture must be [batch, time], got {tuple(mixture.shape)}"
            )
        if condition.dim() != 3 or condition.shape[0] != mixture.shape[0]:
            raise ValueError(
                f"condition must be [B, Q, C] with B = {mixture.shape[0]}, got "
                f"{tuple(condition.shape)}"
            )
        embedding, tokens, token_mask = self.unpack(condition.float())
        autocast_off = torch.autocast(device_type=mixture.device.type, enabled=False)
        with autocast_off:
            views = analyze(self.spectral, mixture.float())
        log_mag = torch.log1p(views["mag"])[:, None]
        logits = self.mask_net(log_mag, embedding, tokens, token_mask)
        return MaskViews(logits.float().sigmoid(), views["mag"], views["spec"])

    def reconstruct(self, masks, spec, length):
        """Waveforms ``[B, Q, length]`` of masks applied with the mixture phase.

        Arguments
        ---------
        masks : torch.Tensor
            ``[B, Q, F, T]`` masks (e.g. :attr:`MaskViews.masks`).
        spec : torch.Tensor
            ``[B, n_freq, T]`` mixture STFT (:attr:`MaskViews.spec`).
        length : int
            Samples to keep (the unpadded mixture length).

        Returns
        -------
        torch.Tensor
        """
        with torch.autocast(device_type=spec.device.type, enabled=False):
            return self.spectral.apply_mask(masks, spec[:, None], length)

    def forward(self, mixture, condition):
        """Soft-mask estimates ``[B, Q, L]`` of ``[B, L]`` mixtures.

        Arguments
        ---------
        mixture : torch.Tensor
            ``[B, L]`` mixtures.
        condition : torch.Tensor
            ``[B, Q, C]`` packed text conditions.

        Returns
        -------
        torch.Tensor
        """
        views = self.masks(mixture, condition)
        return self.reconstruct(views.masks, views.spec, mixture.shape[-1])
