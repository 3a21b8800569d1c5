"""The audio U-Net of Sound of Pixels, used by CLIPSep.

Authors
 * speechbrain-textsep contributors
"""

import torch
from torch import nn


def unet_channels(ngf, levels):
    """Channels after each encoder level: ``ngf * min(2 ** i, 8)``.

    Arguments
    ---------
    ngf : int
        Channels of the first level.
    levels : int
        Number of down-sampling levels.

    Returns
    -------
    list of int

    Example
    -------
    >>> unet_channels(64, 7)
    [64, 128, 256, 512, 512, 512, 512]
    """
    return [ngf * min(2**i, 8) for i in range(levels)]


def init_clipsep_weights(model):
    """CLIPSep's initialisation: conv N(0, 1e-3), BN weight N(1, 0.02), biases 0.

    Arguments
    ---------
    model : torch.nn.Module
        Every ``Conv2d`` and ``BatchNorm2d`` inside it is re-initialised.

    Example
    -------
    >>> conv = nn.Conv2d(1, 1, 3)
    >>> init_clipsep_weights(conv)
    >>> bool(conv.bias.eq(0).all()), bool(conv.weight.abs().max() < 0.01)
    (True, True)
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.normal_(module.weight, 0.0, 1e-3)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)


class AudioUNet(nn.Module):
    """Sound-of-Pixels U-Net: ``[B, 1, F, T]`` log-magnitude to ``[B, K, F, T]`` maps.

    Encoder level ``i`` halves both axes with a 4x4 stride-2 convolution
    (no bias): the outermost level is a bare convolution, the inner levels
    are LeakyReLU(0.2) -> conv -> BatchNorm, and the innermost has no norm.
    Decoder level ``i`` is ReLU -> bilinear x2 -> 3x3 conv -> BatchNorm and
    is concatenated after the encoder input of its level (``[skip, up]``);
    the outermost decoder is a 3x3 convolution with bias and no activation.
    ``F`` and ``T`` must be multiples of ``2 ** levels``.

    Arguments
    ---------
    out_channels : int
        Number of output maps ``K`` (32 in CLIPSep).
    ngf : int
        Channels of the first level (64 in the paper).
    levels : int
        Down-sampling levels (7 in the paper).
    in_channels : int
        Input channels (1: the log-magnitude).
    input_norm : bool
        Applies ``BatchNorm2d(in_channels)`` to the input, as the authors do.
    channels_last : bool
        Runs the convolutions in channels-last memory layout, which oneDNN
        (CPU) and cuDNN (tensor cores) run faster; the numbers are the same.

    Example
    -------
    >>> net = AudioUNet(out_channels=4, ngf=8, levels=5)
    >>> net(torch.randn(2, 1, 64, 32)).shape
    torch.Size([2, 4, 64, 32])
    >>> full = AudioUNet()
    >>> round(sum(p.numel() for p in full.parameters()) / 1e6, 1)
    30.3
    """

    def __init__(
        self,
        out_channels=32,
        ngf=64,
        levels=7,
        in_channels=1,
        input_norm=True,
        channels_last=True,
    ):
        super().__init__()
        self.channels_last = channels_last
        if levels < 2:
            raise ValueError(f"AudioUNet needs at least 2 levels, got {levels}")
        self.levels = levels
        channels = unet_channels(ngf, levels)
        inputs = [in_channels] + channels[:-1]
        self.input_norm = nn.BatchNorm2d(in_channels) if input_norm else nn.Identity()

        self.down = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(zip(inputs, channels)):
            conv = nn.Conv2d(
                c_in, c_out, kernel_size=4, stride=2, padding=1, bias=False
            )
            if i == 0:
                self.down.append(conv)
            elif i == levels - 1:
                self.down.append(nn.Sequential(nn.LeakyReLU(0.2), conv))
            else:
                self.down.append(
                    nn.Sequential(nn.LeakyReLU(0.2), conv, nn.BatchNorm2d(c_out))
                )

        self.up = nn.ModuleList()
        for i, (c_out, c_in) in enumerate(zip(inputs, channels)):
            # Every level but the innermost receives [skip, up] from below.
            c_in = c_in if i == levels - 1 else 2 * c_in
            if i == 0:
                layers = [
                    nn.ReLU(),
                    nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                    nn.Conv2d(c_in, out_channels, kernel_size=3, padding=1),
                ]
            else:
                layers = [
                    nn.ReLU(),
                    nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                    nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
                    nn.BatchNorm2d(c_out),
                ]
            self.up.append(nn.Sequential(*layers))
        self.reset_parameters()
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def reset_parameters(self):
        """Initialisation of the authors (:func:`init_clipsep_weights`)."""
        init_clipsep_weights(self)

    def forward(self, x):
        """Computes the ``K`` output maps.

        Arguments
        ---------
        x : torch.Tensor
            ``[B, in_channels, F, T]`` input, ``F`` and ``T`` multiples of
            ``2 ** levels``.

        Returns
        -------
        torch.Tensor
            ``[B, K, F, T]`` maps.
        """
        multiple = 2**self.levels
        if x.dim() != 4 or x.shape[-1] % multiple or x.shape[-2] % multiple:
            raise ValueError(
                f"AudioUNet expects [B, C, F, T] with F and T multiples of "
                f"{multiple}, got {tuple(x.shape)}"
            )
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        skips = [self.input_norm(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        h = self.up[-1](skips.pop())
        for up in reversed(self.up[:-1]):
            h = up(torch.cat([skips.pop(), h], dim=1))
        return h
