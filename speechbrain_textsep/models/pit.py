"""PIT: the query-free baseline of CLIPSep (Yu et al., 2017 style).

The same audio U-Net as CLIPSep, whose ``K`` output maps go through a
``1x1`` convolution to one mask logit per source; there is no query, the
training loss is permutation invariant
(:func:`speechbrain_textsep.training.losses.pit_mask_loss`) and the
evaluation picks, for each target, the output that scores best against it
(an oracle post-selection, as in the paper). The authors' evaluation script
compares the first mask with its complement ``1 - m_1``; we compare the two
masks the model outputs, which is the permutation the model was trained on.

Authors
 * speechbrain-textsep contributors
"""

from torch import nn


class PITSep(nn.Module):
    """Query-free mask estimator: U-Net maps -> ``1x1`` conv -> ``n_sources`` masks.

    Arguments
    ---------
    unet : AudioUNet
        The audio network producing ``n_maps`` maps.
    n_maps : int
        Number of U-Net maps ``K`` (32).
    n_sources : int
        Number of output masks (2).

    Example
    -------
    >>> import torch
    >>> from speechbrain_textsep.models.unet import AudioUNet
    >>> model = PITSep(AudioUNet(out_channels=8, ngf=8, levels=5), n_maps=8)
    >>> model(torch.randn(3, 1, 64, 32)).shape
    torch.Size([3, 2, 64, 32])
    """

    #: The model takes no query; its outputs are not tied to any source.
    takes_queries = False

    def __init__(self, unet, n_maps=32, n_sources=2):
        super().__init__()
        if n_sources < 2:
            raise ValueError(f"PITSep needs at least 2 sources, got {n_sources}")
        self.unet = unet
        self.n_sources = n_sources
        self.head = nn.Conv2d(n_maps, n_sources, kernel_size=1)
        # The authors' initialisation of convolutions: N(0, 1e-3), zero bias.
        nn.init.normal_(self.head.weight, 0.0, 1e-3)
        nn.init.zeros_(self.head.bias)

    def forward(self, log_mag, queries=None):
        """Mask logits of every output.

        Arguments
        ---------
        log_mag : torch.Tensor
            ``[B, 1, F, T]`` log-magnitude of the mixture (warped domain).
        queries : None
            Must be None: PIT takes no query.

        Returns
        -------
        torch.Tensor
            ``[B, n_sources, F, T]`` mask logits.
        """
        if queries is not None:
            raise ValueError(
                "PITSep takes no query: it returns one mask per output, not "
                "per query (call it with the mixture only)"
            )
        return self.head(self.unet(log_mag))
