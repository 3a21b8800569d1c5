"""Multi-level features of a LoRA-tuned copy of LAION-CLAP's HTSAT encoder.

CLAPSep (Ma et al., 2024) reuses the audio encoder of the frozen CLAP as the
encoder of its separation U-Net: a copy of the HTSAT Swin transformer, tuned
with LoRA, gives the patch embedding and the output of every Swin layer
(HTSAT-base: 64x64x128, 32x32x256, 16x16x512, 8x8x1024 and 8x8x1024 tokens).

:class:`HTSATFeatures` holds deep copies of the HTSAT modules it needs (the
spectrogram and log-mel front end, ``bn0``, the patch embedding and the Swin
layers) and calls them in order in its own ``forward``: no forward hooks, no
shared lists, so the features are safe for batches and threads. The
classification head of HTSAT (``norm``, ``tscam_conv``, ``head``) is not
copied. The given HTSAT instance is never modified.

Authors
 * speechbrain-textsep contributors
"""

import copy

import torch
import torch.nn.functional as F
from speechbrain.nnet.adapters import LoRA, replace_module
from torch import nn

from speechbrain_textsep.encoders.laion import clap_module

__all__ = ["HTSATFeatures", "build_htsat", "frames_to_image", "image_to_frames"]


def _is_a(obj, class_name):
    """``isinstance`` by class name: laion_clap's modules can be imported as
    ``clap_module`` or ``laion_clap.clap_module``, two copies of each class."""
    return any(cls.__name__ == class_name for cls in type(obj).__mro__)


def build_htsat(
    embed_dim=128,
    depths=(2, 2, 12, 2),
    num_heads=(4, 8, 16, 32),
    window_size=8,
    spec_size=256,
    patch_size=4,
    sample_rate=48000,
    mel_bins=64,
    n_fft=1024,
    hop_length=480,
    fmin=50,
    fmax=14000,
    num_classes=527,
):
    """A randomly initialised laion_clap ``HTSAT_Swin_Transformer``.

    The defaults are the geometry of the HTSAT-base audio encoder of the
    LAION-CLAP checkpoints CLAPSep uses (``create_htsat_model`` with
    ``model_name="base"``); smaller values build a tiny encoder for tests.
    The real encoder comes from the CLAP query encoder (its
    ``clap.audio_branch``), with the checkpoint weights.

    Arguments
    ---------
    embed_dim : int
        Patch embedding size (128 for HTSAT-base).
    depths : sequence of int
        Swin blocks per layer.
    num_heads : sequence of int
        Attention heads per layer.
    window_size : int
        Attention window (8).
    spec_size : int
        Side of the square "image" (256): ``spec_size // mel_bins`` chunks of
        ``spec_size`` frames stacked along the mel axis.
    patch_size : int
        Patch size and stride of the patch embedding (4).
    sample_rate : int
        Input sample rate (48000).
    mel_bins : int
        Log-mel bins (64).
    n_fft : int
        FFT size of the front end (1024).
    hop_length : int
        Hop of the front end (480: 100 frames per second at 48 kHz).
    fmin : int
        Lowest mel frequency (50 Hz).
    fmax : int
        Highest mel frequency (14000 Hz).
    num_classes : int
        Classes of the (unused) classification head (527).

    Returns
    -------
    torch.nn.Module
        A ``clap_module.htsat.HTSAT_Swin_Transformer``.

    Example
    -------
    >>> htsat = build_htsat(embed_dim=16, depths=(1, 1, 1, 1),
    ...                     num_heads=(1, 2, 4, 8))
    >>> htsat.patch_embed.grid_size, htsat.freq_ratio
    ((64, 64), 4)
    """
    clap = clap_module()
    config = clap.CLAPAudioCfp(
        model_type="HTSAT",
        model_name="custom",
        sample_rate=sample_rate,
        audio_length=spec_size * (spec_size // mel_bins),
        window_size=n_fft,
        hop_size=hop_length,
        fmin=fmin,
        fmax=fmax,
        class_num=num_classes,
        mel_bins=mel_bins,
        clip_samples=sample_rate * 10,
    )
    return clap.htsat.HTSAT_Swin_Transformer(
        spec_size=spec_size,
        patch_size=patch_size,
        patch_stride=(patch_size, patch_size),
        num_classes=num_classes,
        embed_dim=embed_dim,
        depths=list(depths),
        num_heads=list(num_heads),
        window_size=window_size,
        config=config,
    )


def frames_to_image(x, freq_ratio):
    """HTSAT's ``reshape_wav2img`` for an input that already has its size.

    ``[B, C, T, F]`` (frames x mel bins) becomes ``[B, C, r * F, T / r]``:
    the frames are cut into ``r = freq_ratio`` chunks stacked along the mel
    axis (1024 x 64 -> 256 x 256 for HTSAT).

    Arguments
    ---------
    x : torch.Tensor
        ``[B, C, T, F]`` with ``T`` a multiple of ``freq_ratio``.
    freq_ratio : int
        Number of chunks ``r``.

    Returns
    -------
    torch.Tensor
        ``[B, C, r * F, T / r]``.

    Example
    -------
    >>> frames_to_image(torch.zeros(2, 1, 1024, 64), 4).shape
    torch.Size([2, 1, 256, 256])
    """
    batch, channels, frames, feats = x.shape
    x = x.transpose(2, 3).reshape(
        batch, channels, feats, freq_ratio, frames // freq_ratio
    )
    return x.transpose(2, 3).reshape(
        batch, channels, freq_ratio * feats, frames // freq_ratio
    )


def image_to_frames(x, freq_ratio):
    """Inverse of :func:`frames_to_image`: ``[B, C, r * F, W] -> [B, C, r * W, F]``.

    Arguments
    ---------
    x : torch.Tensor
        ``[B, C, r * F, W]`` image.
    freq_ratio : int
        Number of chunks ``r``.

    Returns
    -------
    torch.Tensor
        ``[B, C, r * W, F]`` frames x features.

    Example
    -------
    >>> x = torch.randn(1, 1, 16, 4)
    >>> torch.equal(frames_to_image(image_to_frames(x, 4), 4), x)
    True
    """
    batch, channels, height, width = x.shape
    x = x.reshape(batch, channels, freq_ratio, height // freq_ratio, width)
    x = x.transpose(2, 3).reshape(
        batch, channels, height // freq_ratio, freq_ratio * width
    )
    return x.transpose(2, 3)


class HTSATFeatures(nn.Module):
    """Patch embedding and Swin-layer outputs of a LoRA-tuned HTSAT copy.

    The waveform (at the HTSAT rate, 48 kHz) goes through the copied HTSAT
    front end exactly as in HTSAT's own forward (power spectrogram, log-mel,
    ``bn0``, reshape to a ``spec_size x spec_size`` image), except that the
    power spectrogram is zero-padded to the ``spec_size * freq_ratio`` frames
    of the image (1001 -> 1024 frames for 10 s), as CLAPSep's authors do,
    instead of being interpolated. The front end runs in float32 (autocast
    off).

    LoRA (SpeechBrain's :class:`speechbrain.nnet.adapters.LoRA`) wraps the
    ``qkv`` and ``proj`` linear layers of every window-attention module; the
    LoRA matrices and the biases of these layers train, everything else is
    frozen. As in the authors' code, the copy always runs in evaluation mode
    (frozen ``bn0`` statistics, no stochastic depth), also while the model
    trains: :meth:`train` keeps it there.

    Arguments
    ---------
    htsat : torch.nn.Module
        A laion_clap ``HTSAT_Swin_Transformer`` (e.g. ``clap.audio_branch``
        of the CLAP query encoder, with its checkpoint already loaded). It is
        deep-copied, never modified.
    lora_rank : int
        LoRA rank (16). 0 disables LoRA (then only the biases train).
    lora_alpha : float
        LoRA scale numerator: the update is ``alpha / rank * B A x`` (1).

    Attributes
    ----------
    grids, dims : list
        ``(H, W)`` grid and channels of every feature map of :meth:`forward`.
    adapted_layers : list of str
        Names of the LoRA-tuned linear layers.
    frames : int
        Spectrogram frames of the HTSAT image (``spec_size * freq_ratio``).

    Example
    -------
    >>> htsat = build_htsat(embed_dim=16, depths=(1, 1, 1, 1),
    ...                     num_heads=(1, 2, 4, 8))
    >>> features = HTSATFeatures(htsat, lora_rank=4)
    >>> feats = features(torch.randn(1, 48000))
    >>> [tuple(f.shape) for f in feats]  # doctest: +NORMALIZE_WHITESPACE
    [(1, 4096, 16), (1, 1024, 32), (1, 256, 64), (1, 64, 128), (1, 64, 128)]
    >>> features.grids
    [(64, 64), (32, 32), (16, 16), (8, 8), (8, 8)]
    """

    def __init__(self, htsat, lora_rank=16, lora_alpha=1.0):
        super().__init__()
        if not _is_a(htsat, "HTSAT_Swin_Transformer"):
            raise TypeError(
                "HTSATFeatures needs a laion_clap HTSAT_Swin_Transformer (the "
                f"audio_branch of an HTSAT CLAP), got {type(htsat).__name__}"
            )
        if htsat.enable_fusion:
            raise ValueError(
                "HTSATFeatures does not support the feature-fusion HTSAT "
                "(enable_fusion=True); CLAPSep uses a CLAP without fusion"
            )
        if lora_rank < 0:
            raise ValueError(f"lora_rank must be >= 0, got {lora_rank}")
        config = htsat.config
        self.sample_rate = int(config.sample_rate)
        self.hop_length = int(config.hop_size)
        self.mel_bins = int(config.mel_bins)
        self.freq_ratio = int(htsat.freq_ratio)
        self.spec_size = int(htsat.spec_size)
        if self.spec_size % self.mel_bins:
            raise ValueError(
                f"HTSAT spec_size ({self.spec_size}) must be a multiple of its "
                f"mel bins ({self.mel_bins})"
            )
        self.frames = self.spec_size * self.freq_ratio

        self.spectrogram = copy.deepcopy(htsat.spectrogram_extractor)
        self.logmel = copy.deepcopy(htsat.logmel_extractor)
        self.bn0 = copy.deepcopy(htsat.bn0)
        self.patch_embed = copy.deepcopy(htsat.patch_embed)
        self.layers = copy.deepcopy(htsat.layers)
        self.absolute_pos_embed = (
            copy.deepcopy(htsat.absolute_pos_embed) if htsat.ape else None
        )
        for param in self.parameters():
            param.requires_grad = False

        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha
        self.adapted_layers = []
        targets = [
            f"{name}.{child}"
            for name, module in self.layers.named_modules()
            if _is_a(module, "WindowAttention")
            for child in ("qkv", "proj")
        ]
        for name in targets:
            linear = self.layers.get_submodule(name)
            if lora_rank > 0:
                replace_module(
                    self.layers, name, LoRA(linear, rank=lora_rank, alpha=lora_alpha)
                )
            if linear.bias is not None:
                linear.bias.requires_grad = True
            self.adapted_layers.append(f"layers.{name}")

        grid = tuple(htsat.patch_embed.grid_size)
        self.grids = [grid]
        self.dims = [int(htsat.patch_embed.embed_dim)]
        for layer in self.layers:
            h, w = layer.input_resolution
            dim = layer.dim
            if layer.downsample is not None:
                h, w, dim = h // 2, w // 2, dim * 2
            self.grids.append((h, w))
            self.dims.append(dim)
        self.train(False)

    def train(self, mode=True):
        """Keeps the copy in evaluation mode whatever ``mode`` (see the class)."""
        del mode
        return super().train(False)

    def frames_for_samples(self, n_samples):
        """Spectrogram frames of ``n_samples`` at the HTSAT rate (centred STFT)."""
        return 1 + n_samples // self.hop_length

    def log_mel(self, wav):
        """Normalised log-mel frames ``[B, 1, frames, mel]`` padded to the image.

        Arguments
        ---------
        wav : torch.Tensor
            ``[B, L]`` waveform at :attr:`sample_rate`.

        Returns
        -------
        torch.Tensor
            ``[B, 1, spec_size * freq_ratio, mel_bins]``.
        """
        with torch.autocast(device_type=wav.device.type, enabled=False):
            power = self.spectrogram(wav.float())  # [B, 1, T, n_fft // 2 + 1]
            n_frames = power.shape[2]
            if n_frames > self.frames:
                raise ValueError(
                    f"HTSAT takes at most {self.frames} frames "
                    f"({self.frames * self.hop_length - 1} samples at "
                    f"{self.sample_rate} Hz), got {n_frames} frames "
                    f"({wav.shape[-1]} samples)"
                )
            power = F.pad(power, (0, 0, 0, self.frames - n_frames))
            mel = self.logmel(power)
            return self.bn0(mel.transpose(1, 3)).transpose(1, 3)

    def forward(self, wav):
        """Multi-level features of a waveform.

        Arguments
        ---------
        wav : torch.Tensor
            ``[B, L]`` waveform at :attr:`sample_rate` (48 kHz), at most
            ``spec_size * freq_ratio`` frames long (10.24 s).

        Returns
        -------
        list of torch.Tensor
            ``[B, H_l * W_l, C_l]`` token maps: the patch embedding and the
            output of every Swin layer (after its patch merging), with the
            grids :attr:`grids` and sizes :attr:`dims`.
        """
        if wav.dim() != 2:
            raise ValueError(
                f"HTSATFeatures expects [batch, time], got {tuple(wav.shape)}"
            )
        image = frames_to_image(self.log_mel(wav), self.freq_ratio)
        h = self.patch_embed(image.to(self.patch_embed.proj.weight.dtype))
        features = [h]
        if self.absolute_pos_embed is not None:
            h = h + self.absolute_pos_embed
        for layer in self.layers:
            for block in layer.blocks:
                h, _ = block(h)
            if layer.downsample is not None:
                h = layer.downsample(h)
            features.append(h)
        return features
