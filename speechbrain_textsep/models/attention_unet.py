"""The conditional attention U-Net of weakly-supervised bi-modal separation.

Mahmud et al. (ICLR 2024) extend the Sound-of-Pixels U-Net of CLIPSep: every
encoder level is a 4x4 stride-2 convolution, BatchNorm, LeakyReLU(0.2) and a
residual block; every decoder level a bilinear x2 up-sampling, a residual
block, a 3x3 convolution, BatchNorm and ReLU (the outermost a bare 3x3
convolution to ``K`` maps). At the deepest ``attn_levels`` encoder levels a
block of self-attention + MLP over the time-frequency positions and
cross-attention + MLP to a text token sequence (the CLAP text tower's hidden
states) lets the query steer the features, so the network runs once per
query. Levels above the first attention level do not depend on the query:
they run once per mixture and are shared by its queries.

Authors
 * speechbrain-textsep contributors
"""

import torch
from speechbrain.nnet.attention import MultiheadAttention, PositionalwiseFeedForward
from torch import nn

from speechbrain_textsep.models.unet import init_clipsep_weights, unet_channels

__all__ = ["CondAttentionUNet", "ResBlock", "TextAttentionBlock"]


class ResBlock(nn.Module):
    """Residual block: ``n_layers`` 3x3 conv + BatchNorm, then LeakyReLU(0.2).

    Every layer but the last is followed by LeakyReLU(0.2); the input is
    added to the output of the last one before the final LeakyReLU. With
    ``n_layers=0`` the block is the identity.

    Arguments
    ---------
    channels : int
        Input and output channels.
    n_layers : int
        Convolution layers (1 in the paper).

    Example
    -------
    >>> block = ResBlock(4, n_layers=2)
    >>> block(torch.randn(2, 4, 8, 8)).shape
    torch.Size([2, 4, 8, 8])
    >>> x = torch.randn(1, 3, 4, 4)
    >>> torch.equal(ResBlock(3, n_layers=0)(x), x)
    True
    """

    def __init__(self, channels, n_layers=1):
        super().__init__()
        layers = []
        for i in range(n_layers):
            layers += [
                nn.Conv2d(channels, channels, kernel_size=3, padding=1),
                nn.BatchNorm2d(channels),
            ]
            if i < n_layers - 1:
                layers.append(nn.LeakyReLU(0.2))
        self.layers = nn.Sequential(*layers) if layers else None
        self.activation = nn.LeakyReLU(0.2)

    def forward(self, x):
        """``[B, C, H, W] -> [B, C, H, W]``."""
        if self.layers is None:
            return x
        return self.activation(x + self.layers(x))


class TextAttentionBlock(nn.Module):
    """Self-attention + MLP, then cross-attention to text tokens + MLP.

    Pre-norm residual blocks (LayerNorm, then SpeechBrain's
    ``MultiheadAttention`` / ``PositionalwiseFeedForward`` with GELU) over
    the ``H * W`` positions of a feature map. The cross-attention keys and
    values are the text tokens (width ``token_dim``); padding tokens are
    masked out, so their values never matter.

    Arguments
    ---------
    channels : int
        Channels of the feature map (a multiple of ``heads``).
    token_dim : int
        Width of the text tokens (768 for roberta-base).
    heads : int
        Attention heads (8 in the paper).
    mlp_ratio : float
        Hidden width of the MLPs, in multiples of ``channels`` (2).

    Example
    -------
    >>> block = TextAttentionBlock(8, token_dim=6, heads=2)
    >>> x, tokens = torch.randn(2, 8, 4, 4), torch.randn(2, 5, 6)
    >>> mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    >>> out = block(x, tokens, mask)
    >>> out.shape
    torch.Size([2, 8, 4, 4])
    >>> tokens[1, 2:] = 100.0  # padding: no effect
    >>> torch.allclose(block(x, tokens, mask), out, atol=1e-6)
    True
    """

    def __init__(self, channels, token_dim, heads=8, mlp_ratio=2.0):
        super().__init__()
        if channels % heads:
            raise ValueError(
                f"attention over {channels} channels needs a number of heads "
                f"dividing it, got heads={heads}"
            )
        hidden = max(1, int(channels * mlp_ratio))
        self.self_norm = nn.LayerNorm(channels)
        self.self_attn = MultiheadAttention(nhead=heads, d_model=channels)
        self.self_mlp_norm = nn.LayerNorm(channels)
        self.self_mlp = PositionalwiseFeedForward(
            hidden, input_size=channels, activation=nn.GELU
        )
        self.cross_norm = nn.LayerNorm(channels)
        self.cross_attn = MultiheadAttention(
            nhead=heads, d_model=channels, kdim=token_dim, vdim=token_dim
        )
        self.cross_mlp_norm = nn.LayerNorm(channels)
        self.cross_mlp = PositionalwiseFeedForward(
            hidden, input_size=channels, activation=nn.GELU
        )

    def forward(self, x, tokens, token_mask):
        """Attends over the positions of ``x``, then to the tokens.

        Arguments
        ---------
        x : torch.Tensor
            ``[B, C, H, W]`` features.
        tokens : torch.Tensor
            ``[B, S, token_dim]`` text tokens.
        token_mask : torch.Tensor
            ``[B, S]`` bool, True for the real tokens (at least one a row).

        Returns
        -------
        torch.Tensor
            ``[B, C, H, W]``.
        """
        h = x.flatten(2).transpose(1, 2)  # [B, H * W, C]
        n = self.self_norm(h)
        h = h + self.self_attn(n, n, n, return_attn_weights=False)
        h = h + self.self_mlp(self.self_mlp_norm(h))
        n = self.cross_norm(h)
        h = h + self.cross_attn(
            n,
            tokens.to(h.dtype),
            tokens.to(h.dtype),
            key_padding_mask=~token_mask,
            return_attn_weights=False,
        )
        h = h + self.cross_mlp(self.cross_mlp_norm(h))
        return h.transpose(1, 2).reshape(x.shape)


class CondAttentionUNet(nn.Module):
    """U-Net with text attention at its deepest levels (see the module).

    ``[B, 1, F, T]`` log-magnitude and ``Q`` token sequences per mixture to
    ``[B, Q, K, F, T]`` maps. ``F`` and ``T`` must be multiples of
    ``2 ** levels``. Channels are ``ngf * min(2 ** i, 8)`` as in CLIPSep's
    U-Net. Initialisation as CLIPSep's: convolutions N(0, 1e-3), BatchNorm
    weights N(1, 0.02); the attention blocks keep PyTorch's defaults.

    Arguments
    ---------
    out_channels : int
        Output maps ``K`` (32 in the paper).
    ngf : int
        Channels of the first level (64 in the paper).
    levels : int
        Down-sampling levels (7 in the paper).
    attn_levels : int
        Deepest levels with a :class:`TextAttentionBlock` (3 in the paper;
        0: the text tokens are not used).
    heads : int
        Attention heads (8).
    token_dim : int
        Width of the text tokens (768: roberta-base).
    res_layers : int
        Convolutions of each residual block (1 in the paper).
    mlp_ratio : float
        Hidden width of the attention MLPs in multiples of the channels (2).
    in_channels : int
        Input channels (1).

    Example
    -------
    >>> net = CondAttentionUNet(out_channels=3, ngf=4, levels=3, attn_levels=2,
    ...                         heads=2, token_dim=6)
    >>> tokens, mask = torch.randn(2, 4, 5, 6), torch.ones(2, 4, 5, dtype=torch.bool)
    >>> net(torch.randn(2, 1, 16, 8), tokens, mask).shape
    torch.Size([2, 4, 3, 16, 8])
    """

    def __init__(
        self,
        out_channels=32,
        ngf=64,
        levels=7,
        attn_levels=3,
        heads=8,
        token_dim=768,
        res_layers=1,
        mlp_ratio=2.0,
        in_channels=1,
    ):
        super().__init__()
        if levels < 2:
            raise ValueError(f"the U-Net needs at least 2 levels, got {levels}")
        if not 0 <= attn_levels <= levels:
            raise ValueError(
                f"attn_levels must be between 0 and levels ({levels}), got "
                f"{attn_levels}"
            )
        self.levels = levels
        self.token_dim = token_dim
        self.first_attn_level = levels - attn_levels
        channels = unet_channels(ngf, levels)
        inputs = [in_channels] + channels[:-1]
        self.input_norm = nn.BatchNorm2d(in_channels)
        self.down = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2),
                ResBlock(c_out, res_layers),
            )
            for c_in, c_out in zip(inputs, channels)
        )
        self.attention = nn.ModuleList(
            TextAttentionBlock(channels[i], token_dim, heads, mlp_ratio)
            for i in range(self.first_attn_level, levels)
        )
        self.up = nn.ModuleList()
        for i, (c_out, c_in) in enumerate(zip(inputs, channels)):
            c_in = c_in if i == levels - 1 else 2 * c_in  # [skip, up] below
            layers = [
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                ResBlock(c_in, res_layers),
            ]
            if i == 0:
                layers.append(nn.Conv2d(c_in, out_channels, kernel_size=3, padding=1))
            else:
                layers += [
                    nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
                    nn.BatchNorm2d(c_out),
                    nn.ReLU(),
                ]
            self.up.append(nn.Sequential(*layers))
        self.reset_parameters()

    def reset_parameters(self):
        """CLIPSep's initialisation of the convolutions and BatchNorms."""
        init_clipsep_weights(self)

    def check_input(self, x, tokens, token_mask):
        """Raises ValueError on shapes the network cannot take."""
        multiple = 2**self.levels
        if x.dim() != 4 or x.shape[-1] % multiple or x.shape[-2] % multiple:
            raise ValueError(
                f"the U-Net expects [B, C, F, T] with F and T multiples of "
                f"{multiple}, got {tuple(x.shape)}"
            )
        batch = x.shape[0]
        if tokens.dim() != 4 or tokens.shape[0] != batch:
            raise ValueError(
                f"tokens must be [B, Q, S, {self.token_dim}] with B = {batch}, "
                f"got {tuple(tokens.shape)}"
            )
        if tokens.shape[-1] != self.token_dim:
            raise ValueError(
                f"text tokens must have width {self.token_dim}, got {tokens.shape[-1]}"
            )
        if token_mask.shape != tokens.shape[:3]:
            raise ValueError(
                f"token_mask must be {tuple(tokens.shape[:3])}, got "
                f"{tuple(token_mask.shape)}"
            )
        if not token_mask.any(dim=-1).all():
            raise ValueError("every token sequence needs at least one real token")

    def forward(self, x, tokens, token_mask):
        """Maps of every query.

        Arguments
        ---------
        x : torch.Tensor
            ``[B, 1, F, T]`` input (log-magnitude).
        tokens : torch.Tensor
            ``[B, Q, S, token_dim]`` text tokens of ``Q`` queries per input.
        token_mask : torch.Tensor
            ``[B, Q, S]`` bool, True for the real tokens.

        Returns
        -------
        torch.Tensor
            ``[B, Q, K, F, T]`` maps.
        """
        self.check_input(x, tokens, token_mask)
        batch, n_queries = tokens.shape[:2]
        skips = [self.input_norm(x)]
        for down in self.down[: self.first_attn_level]:
            skips.append(down(skips[-1]))
        # From here on everything depends on the query: one row per query.
        skips = [s.repeat_interleave(n_queries, dim=0) for s in skips]
        tokens = tokens.flatten(0, 1)
        token_mask = token_mask.flatten(0, 1).bool()
        for down, attend in zip(self.down[self.first_attn_level :], self.attention):
            skips.append(attend(down(skips[-1]), tokens, token_mask))
        h = self.up[-1](skips.pop())
        for up in reversed(self.up[:-1]):
            h = up(torch.cat([skips.pop(), h], dim=1))
        return h.unflatten(0, (batch, n_queries))
