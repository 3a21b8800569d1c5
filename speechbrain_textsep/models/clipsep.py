"""CLIPSep and CLIPSep-NIT: a query-conditioned mask U-Net (Dong et al., ICLR 2023).

The U-Net turns the mixture log-magnitude into ``K`` maps ``S_k``. A query
embedding ``e`` (CLIP image or text) becomes ``q = sigmoid(W e + b)`` and the
mask logit is ``sum_k alpha_k q_k S_k + beta``. Noise invariant training (NIT)
adds noise heads that map ``u = (z_1 + z_2) / 2``, the mean of the pre-sigmoid
query projections of the two queries of a mixture, to extra weight vectors
over the same maps; they are used by the training loss only.

Authors
 * speechbrain-textsep contributors
"""

import torch
from torch import nn


class CLIPSep(nn.Module):
    """Query-conditioned mask estimator.

    Arguments
    ---------
    unet : AudioUNet
        The audio network producing ``n_maps`` maps.
    query_dim : int
        Size of the query embedding (512 for CLIP ViT-B/32).
    n_maps : int
        Number of U-Net maps ``K`` (32).
    n_noise_heads : int
        Noise heads of CLIPSep-NIT (2), or 0 for plain CLIPSep.

    Example
    -------
    >>> from speechbrain_textsep.models.unet import AudioUNet
    >>> model = CLIPSep(AudioUNet(out_channels=8, ngf=8, levels=5), 16, 8)
    >>> log_mag = torch.randn(2, 1, 64, 32)
    >>> model(log_mag, torch.randn(2, 3, 16)).shape
    torch.Size([2, 3, 64, 32])
    """

    def __init__(self, unet, query_dim=512, n_maps=32, n_noise_heads=0):
        super().__init__()
        self.unet = unet
        self.query_proj = nn.Linear(query_dim, n_maps)
        self.map_scale = nn.Parameter(torch.ones(n_maps))
        self.map_bias = nn.Parameter(torch.zeros(1))
        self.noise_heads = nn.ModuleList(
            nn.Linear(n_maps, n_maps) for _ in range(n_noise_heads)
        )
        for linear in [self.query_proj, *self.noise_heads]:
            nn.init.normal_(linear.weight, 0.0, 1e-4)
            nn.init.zeros_(linear.bias)

    @property
    def query_dim(self):
        """Size of the query embeddings the model takes."""
        return self.query_proj.in_features

    def maps(self, log_mag):
        """U-Net maps ``[B, K, F, T]`` of a ``[B, 1, F, T]`` log-magnitude."""
        return self.unet(log_mag)

    def combine(self, maps, weights):
        """Mask logits ``sum_k alpha_k w_k S_k + beta``.

        Arguments
        ---------
        maps : torch.Tensor
            ``[B, K, F, T]`` U-Net maps.
        weights : torch.Tensor
            ``[B, Q, K]`` per-query weights in (0, 1).

        Returns
        -------
        torch.Tensor
            ``[B, Q, F, T]`` mask logits.
        """
        return torch.einsum("bqk,bkft->bqft", weights * self.map_scale, maps) + (
            self.map_bias
        )

    def project_queries(self, queries):
        """Pre-sigmoid query vectors ``z = W e + b``: ``[B, Q, D] -> [B, Q, K]``."""
        if queries.shape[-1] != self.query_dim:
            raise ValueError(
                f"query embeddings must have size {self.query_dim}, "
                f"got shape {tuple(queries.shape)}"
            )
        return self.query_proj(queries)

    def forward(self, log_mag, queries, with_noise=False):
        """Mask logits for each query (and of the noise heads, for NIT).

        Arguments
        ---------
        log_mag : torch.Tensor
            ``[B, 1, F, T]`` log-magnitude of the mixture (warped domain).
        queries : torch.Tensor
            ``[B, D]`` or ``[B, Q, D]`` query embeddings. With ``with_noise``,
            ``[B, N, D]``: the queries of the ``N`` sources of each mixture.
        with_noise : bool
            Also returns the noise-head logits (training of CLIPSep-NIT).

        Returns
        -------
        logits : torch.Tensor
            ``[B, F, T]`` or ``[B, Q, F, T]`` mask logits.
        noise_logits : torch.Tensor
            Only with ``with_noise``: ``[B, n_noise_heads, F, T]``.
        """
        single = queries.dim() == 2
        queries = queries.unsqueeze(1) if single else queries
        maps = self.maps(log_mag)
        z = self.project_queries(queries)
        logits = self.combine(maps, z.sigmoid())
        if not with_noise:
            return logits.squeeze(1) if single else logits
        if not self.noise_heads:
            raise RuntimeError("this CLIPSep has no noise heads (n_noise_heads=0)")
        u = z.mean(dim=1)
        noise_weights = torch.stack([head(u) for head in self.noise_heads], 1).sigmoid()
        return logits, self.combine(maps, noise_weights)
