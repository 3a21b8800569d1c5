"""Feature-wise linear modulation (FiLM) of token maps by a query embedding.

Authors
 * speechbrain-textsep contributors
"""

import torch
from torch import nn

__all__ = ["FiLM", "FiLMSkip"]


class FiLM(nn.Module):
    """``gamma(c) * h + beta(c)``, with ``gamma`` and ``beta`` two linear layers.

    Arguments
    ---------
    condition_dim : int
        Size of the condition ``c`` (1024 in CLAPSep: positive and negative
        CLAP embeddings).
    channels : int
        Channels ``C`` of the modulated features.

    Example
    -------
    >>> film = FiLM(condition_dim=6, channels=4)
    >>> h, c = torch.randn(2, 10, 4), torch.randn(2, 6)
    >>> film(h, c).shape
    torch.Size([2, 10, 4])
    >>> film.set_identity()
    >>> torch.equal(film(h, c), h)
    True
    """

    def __init__(self, condition_dim, channels):
        super().__init__()
        self.gamma = nn.Linear(condition_dim, channels)
        self.beta = nn.Linear(condition_dim, channels)

    def set_identity(self):
        """Sets ``gamma(c) = 1`` and ``beta(c) = 0`` for every ``c``."""
        with torch.no_grad():
            self.gamma.weight.zero_()
            self.gamma.bias.fill_(1.0)
            self.beta.weight.zero_()
            self.beta.bias.zero_()

    def forward(self, h, condition):
        """Modulates ``h``.

        Arguments
        ---------
        h : torch.Tensor
            ``[B, N, C]`` token features.
        condition : torch.Tensor
            ``[B, condition_dim]`` condition.

        Returns
        -------
        torch.Tensor
            ``[B, N, C]``.
        """
        condition = condition[:, None]
        return self.gamma(condition) * h + self.beta(condition)


class FiLMSkip(nn.Module):
    """Conditioned skip connection of the CLAPSep decoder.

    ``LayerNorm(FiLM(Linear(skip), c) + h)``: the encoder features are
    projected to the decoder width, modulated by the condition, added to the
    decoder features ``h`` (when given) and normalised. Without ``h`` it is
    the FiLM of the bottleneck.

    Arguments
    ---------
    in_dim : int
        Channels of the encoder features.
    out_dim : int
        Channels of the decoder at this level.
    condition_dim : int
        Size of the condition.

    Example
    -------
    >>> skip = FiLMSkip(in_dim=8, out_dim=4, condition_dim=6)
    >>> skip(torch.randn(2, 10, 8), torch.randn(2, 6), torch.randn(2, 10, 4)).shape
    torch.Size([2, 10, 4])
    """

    def __init__(self, in_dim, out_dim, condition_dim):
        super().__init__()
        self.proj = nn.Linear(in_dim, out_dim)
        self.film = FiLM(condition_dim, out_dim)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, skip, condition, h=None):
        """Fuses the skip features (and ``h``).

        Arguments
        ---------
        skip : torch.Tensor
            ``[B, N, in_dim]`` encoder features.
        condition : torch.Tensor
            ``[B, condition_dim]``.
        h : torch.Tensor or None
            ``[B, N, out_dim]`` decoder features, or None.

        Returns
        -------
        torch.Tensor
            ``[B, N, out_dim]``.
        """
        out = self.film(self.proj(skip), condition)
        return self.norm(out if h is None else out + h)
