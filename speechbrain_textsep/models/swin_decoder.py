"""Conditioned Swin-transformer U-Net decoder of CLAPSep.

Authors
 * speechbrain-textsep contributors
"""

import torch
from torch import nn

from speechbrain_textsep.encoders.laion import clap_module
from speechbrain_textsep.models.film import FiLMSkip

__all__ = ["PatchExpand", "SwinDecoder", "init_transformer_weights", "unmerge_patches"]


def init_transformer_weights(module):
    """HTSAT/Swin initialisation: linear ``N(0, 0.02)`` truncated at +-2, zero
    biases, layer norms ``(1, 0)``. Use with ``module.apply``.

    Example
    -------
    >>> layer = nn.Linear(4, 4)
    >>> _ = nn.Sequential(layer).apply(init_transformer_weights)
    >>> bool(layer.bias.eq(0).all()), bool(layer.weight.abs().le(2).all())
    (True, True)
    """
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02, a=-2.0, b=2.0)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def unmerge_patches(x, height, width):
    """Inverse of the token gathering of HTSAT's ``PatchMerging``.

    ``PatchMerging`` concatenates, for every 2x2 group of tokens, the tokens
    at offsets (row, column) (0, 0), (1, 0), (0, 1), (1, 1) along the
    channels. This puts the four channel chunks of every token back at those
    offsets: ``[B, H * W, 4 C] -> [B, 2H * 2W, C]``.

    Arguments
    ---------
    x : torch.Tensor
        ``[B, height * width, 4 * C]`` tokens.
    height : int
        Rows of the input grid.
    width : int
        Columns of the input grid.

    Returns
    -------
    torch.Tensor
        ``[B, 4 * height * width, C]`` tokens of the ``2 height x 2 width`` grid.

    Example
    -------
    >>> x = torch.arange(8.0).view(1, 1, 8)  # one token, 4 chunks of 2
    >>> unmerge_patches(x, 1, 1)[0]  # grid order: (0,0) (0,1) (1,0) (1,1)
    tensor([[0., 1.],
            [4., 5.],
            [2., 3.],
            [6., 7.]])
    """
    batch, tokens, channels = x.shape
    if tokens != height * width or channels % 4:
        raise ValueError(
            f"expected [B, {height * width}, 4 * C] tokens, got {tuple(x.shape)}"
        )
    chunk = channels // 4
    # chunk index k = row offset + 2 * column offset
    x = x.reshape(batch, height, width, 2, 2, chunk)  # [B, H, W, col, row, C]
    x = x.permute(0, 1, 4, 2, 3, 5)  # [B, H, row, W, col, C]
    return x.reshape(batch, 4 * height * width, chunk)


class PatchExpand(nn.Module):
    """Doubles the grid and halves the channels: ``Linear(d -> 2d)``, pixel
    shuffle, ``LayerNorm(d / 2)``.

    The pixel shuffle is :func:`unmerge_patches`, the inverse of the
    encoder's patch merging (as in CLAPSep, rather than Swin-Unet's order).

    Arguments
    ---------
    input_resolution : tuple of int
        ``(H, W)`` grid of the input tokens.
    dim : int
        Input channels ``d`` (even).

    Example
    -------
    >>> expand = PatchExpand((8, 8), 64)
    >>> expand(torch.randn(2, 64, 64)).shape
    torch.Size([2, 256, 32])
    """

    def __init__(self, input_resolution, dim):
        super().__init__()
        if dim % 2:
            raise ValueError(f"PatchExpand needs an even dim, got {dim}")
        self.input_resolution = tuple(input_resolution)
        self.expand = nn.Linear(dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(dim // 2)

    def forward(self, x):
        """``[B, H * W, d] -> [B, 2H * 2W, d / 2]``."""
        return self.norm(unmerge_patches(self.expand(x), *self.input_resolution))


class SwinDecoder(nn.Module):
    """FiLM-conditioned Swin U-Net decoder over the HTSAT feature pyramid.

    With ``L`` encoder layers, the features are the patch embedding
    ``f_0`` and the layer outputs ``f_1 .. f_L`` (``f_L``, the bottleneck,
    has the grid of ``f_{L-1}``). Decoder level ``i`` has ``embed_dim * 2**i``
    channels on the grid of ``f_i``. Then::

        h = LayerNorm(FiLM(Linear(f_L), c))                  # bottleneck
        for i = L-1 .. 0:
            h = PatchExpand(h)            (not at i = L-1)
            h = SwinBlocks_i(h)           (depth_i blocks, shifted every other)
            h = LayerNorm(FiLM(Linear(f_i), c) + h)          # skip fusion
        image = ConvTranspose2d(LayerNorm(h))                # inverse patch embed

    which is the decoder of the authors' code (``HTSAT_Decoder``). The Swin
    blocks are laion_clap's own ``SwinTransformerBlock``. Stochastic depth
    grows linearly from 0 (finest level) to ``drop_path_rate`` (coarsest).

    Arguments
    ---------
    encoder_dims : list of int
        Channels of ``f_0 .. f_L``.
    encoder_grids : list of tuple
        ``(H, W)`` grids of ``f_0 .. f_L``.
    condition_dim : int
        Size of the condition (1024).
    embed_dim : int
        Channels of the finest decoder level (128).
    depths : sequence of int
        Swin blocks per level, finest first (1, 1, 1, 1).
    num_heads : sequence of int
        Heads per level, finest first (4, 8, 16, 32).
    window_size : int
        Attention window (8).
    mlp_ratio : float
        MLP width of the Swin blocks (4).
    drop_path_rate : float
        Largest stochastic-depth rate (0.1).
    patch_size : tuple of int
        Kernel of the inverse patch embedding (the encoder's patch size, 4).
    patch_stride : tuple of int
        Stride of the inverse patch embedding (4).
    out_channels : int
        Image channels (1).

    Example
    -------
    >>> dims, grids = [8, 16, 16], [(8, 8), (4, 4), (4, 4)]
    >>> decoder = SwinDecoder(dims, grids, condition_dim=6, embed_dim=8,
    ...                       depths=(1, 1), num_heads=(1, 2), window_size=4)
    >>> feats = [torch.randn(2, h * w, d) for d, (h, w) in zip(dims, grids)]
    >>> decoder(feats, torch.randn(2, 6)).shape
    torch.Size([2, 1, 32, 32])
    """

    def __init__(
        self,
        encoder_dims,
        encoder_grids,
        condition_dim=1024,
        embed_dim=128,
        depths=(1, 1, 1, 1),
        num_heads=(4, 8, 16, 32),
        window_size=8,
        mlp_ratio=4.0,
        drop_path_rate=0.1,
        patch_size=(4, 4),
        patch_stride=(4, 4),
        out_channels=1,
    ):
        super().__init__()
        n_levels = len(encoder_dims) - 1
        if len(encoder_grids) != n_levels + 1:
            raise ValueError(
                f"{len(encoder_dims)} encoder dims but {len(encoder_grids)} grids"
            )
        if len(depths) != n_levels or len(num_heads) != n_levels:
            raise ValueError(
                f"the decoder needs one depth and one head count per encoder "
                f"layer ({n_levels}), got depths={list(depths)} and "
                f"num_heads={list(num_heads)}"
            )
        self.grids = [tuple(g) for g in encoder_grids]
        for i in range(1, n_levels):
            h, w = self.grids[i - 1]
            if self.grids[i] != (h // 2, w // 2):
                raise ValueError(
                    f"encoder grids must halve at every level, got {self.grids}"
                )
        if self.grids[n_levels] != self.grids[n_levels - 1]:
            raise ValueError(
                "the last encoder layer must keep the grid of the one before "
                f"(HTSAT has no patch merging there), got {self.grids}"
            )
        self.n_levels = n_levels
        self.condition_dim = condition_dim
        dims = [embed_dim * 2**i for i in range(n_levels)]
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        swin_block = clap_module().htsat.SwinTransformerBlock

        self.bottleneck = FiLMSkip(encoder_dims[-1], dims[-1], condition_dim)
        self.expands = nn.ModuleList()
        self.blocks = nn.ModuleList()
        self.skips = nn.ModuleList()
        for i in range(n_levels):
            if i < n_levels - 1:
                self.expands.append(PatchExpand(self.grids[i + 1], dims[i + 1]))
            start = sum(depths[:i])
            self.blocks.append(
                nn.ModuleList(
                    swin_block(
                        dim=dims[i],
                        input_resolution=self.grids[i],
                        num_heads=num_heads[i],
                        window_size=window_size,
                        shift_size=0 if j % 2 == 0 else window_size // 2,
                        mlp_ratio=mlp_ratio,
                        drop_path=rates[start + j],
                    )
                    for j in range(depths[i])
                )
            )
            self.skips.append(FiLMSkip(encoder_dims[i], dims[i], condition_dim))
        self.out_norm = nn.LayerNorm(embed_dim)
        patch_size, patch_stride = tuple(patch_size), tuple(patch_stride)
        padding = tuple((k - s) // 2 for k, s in zip(patch_size, patch_stride))
        self.inverse_patch_embed = nn.ConvTranspose2d(
            embed_dim,
            out_channels,
            kernel_size=patch_size,
            stride=patch_stride,
            padding=padding,
        )
        self.apply(init_transformer_weights)

    def forward(self, features, condition):
        """Decodes the feature pyramid into an image.

        Arguments
        ---------
        features : list of torch.Tensor
            ``[B, H_l * W_l, C_l]`` features ``f_0 .. f_L``.
        condition : torch.Tensor
            ``[B, condition_dim]`` condition.

        Returns
        -------
        torch.Tensor
            ``[B, out_channels, H_img, W_img]`` (``[B, 1, 256, 256]`` for
            HTSAT-base).
        """
        if len(features) != self.n_levels + 1:
            raise ValueError(
                f"SwinDecoder expects {self.n_levels + 1} feature maps, "
                f"got {len(features)}"
            )
        h = self.bottleneck(features[-1], condition)
        for i in reversed(range(self.n_levels)):
            if i < self.n_levels - 1:
                h = self.expands[i](h)
            for block in self.blocks[i]:
                h, _ = block(h)
            h = self.skips[i](features[i], condition, h)
        h = self.out_norm(h)
        height, width = self.grids[0]
        image = h.transpose(1, 2).reshape(h.shape[0], h.shape[2], height, width)
        return self.inverse_patch_embed(image)
