"""CLAPSep: target sound extraction with LAION-CLAP (Ma et al., 2024).

The mixture (32 kHz) is resampled to 48 kHz and encoded by a LoRA-tuned copy
of CLAP's HTSAT audio encoder (:class:`HTSATFeatures`), which gives a
feature pyramid. A FiLM-conditioned Swin U-Net decoder (:class:`SwinDecoder`)
turns it into frames x 64 features; a transformer MaskNet reads them with the
linear magnitude of the mixture STFT (n_fft 1024, hop 320) and predicts a
sigmoid mask; the estimate is the masked magnitude with the mixture phase.
The condition is the concatenation of a positive and a negative CLAP
embedding (:func:`clapsep_condition`), a missing one being zeros.

Only the LoRA matrices, the biases of the LoRA-tuned layers, the decoder and
the MaskNet train; :meth:`CLAPSep.trainable_state_dict` holds exactly that,
and a model built from the same frozen CLAP loads it back.

Authors
 * speechbrain-textsep contributors
"""

import fractions

import torch
import torch.nn.functional as F
import torchaudio
from speechbrain.utils import checkpoints
from torch import nn

from speechbrain_textsep.models.htsat_features import HTSATFeatures, image_to_frames
from speechbrain_textsep.models.swin_decoder import (
    SwinDecoder,
    init_transformer_weights,
)
from speechbrain_textsep.processing.spectral import SpectralMasking, frames_for_length

__all__ = ["CLAPSep", "MaskNet", "clapsep_condition", "normalize_condition"]


def clapsep_condition(positive=None, negative=None, embedding_dim=512):
    """The condition ``c = [e_pos, e_neg]``; a missing query is zeros.

    The result is not normalised: :class:`CLAPSep` L2-normalises every
    condition it receives (see :func:`normalize_condition`). To leave out
    the positive or negative query of some items only, zero their rows.

    Arguments
    ---------
    positive : torch.Tensor or None
        ``[B, D]`` embeddings of what to extract, or None.
    negative : torch.Tensor or None
        ``[B, D]`` embeddings of what to suppress, or None.
    embedding_dim : int
        ``D`` (512 for CLAP), used when a query is missing.

    Returns
    -------
    torch.Tensor
        ``[B, 2 D]``.

    Example
    -------
    >>> e = torch.ones(3, 4)
    >>> clapsep_condition(positive=e, embedding_dim=4)[0]
    tensor([1., 1., 1., 1., 0., 0., 0., 0.])
    >>> clapsep_condition(negative=e, embedding_dim=4).shape
    torch.Size([3, 8])
    """
    if positive is None and negative is None:
        raise ValueError("CLAPSep needs a positive or a negative query (or both)")
    given = positive if positive is not None else negative
    if given.dim() != 2 or given.shape[-1] != embedding_dim:
        raise ValueError(
            f"query embeddings must be [batch, {embedding_dim}], "
            f"got {tuple(given.shape)}"
        )
    if positive is None:
        positive = torch.zeros_like(negative)
    if negative is None:
        negative = torch.zeros_like(positive)
    if positive.shape != negative.shape:
        raise ValueError(
            "positive and negative embeddings must have the same shape, got "
            f"{tuple(positive.shape)} and {tuple(negative.shape)}"
        )
    return torch.cat([positive, negative], dim=-1)


def normalize_condition(condition, eps=1e-12):
    """L2-normalises ``[B, 2 D]`` conditions; an all-zero row stays zero.

    This is the authors' training-time ``F.normalize`` of the concatenated
    positive and negative embeddings. Their validation and test code feeds
    the conditions without it (BUG): :class:`CLAPSep` normalises in its
    forward, so training and evaluation see the same conditions.

    Arguments
    ---------
    condition : torch.Tensor
        ``[B, 2 D]``.
    eps : float
        Smallest norm divided by (no NaN for a zero condition).

    Returns
    -------
    torch.Tensor
        ``[B, 2 D]`` with unit (or zero) rows.

    Example
    -------
    >>> normalize_condition(torch.tensor([[3.0, 0.0, 0.0, 4.0], [0.0] * 4]))
    tensor([[0.6000, 0.0000, 0.0000, 0.8000],
            [0.0000, 0.0000, 0.0000, 0.0000]])
    """
    return F.normalize(condition, dim=-1, eps=eps)


class MaskNet(nn.Module):
    """Transformer mask estimator over STFT frames.

    ``sigmoid(Linear(Transformer(LayerNorm(Linear([BN(|X|), H])))))``: the
    linear magnitude ``|X|`` is batch-normalised per frequency bin (momentum
    0.01, as the authors), concatenated with the decoder features ``H`` of
    every frame and projected to ``d_model``; a post-norm
    ``nn.TransformerEncoder`` (ReLU, no dropout) attends over the frames.

    Arguments
    ---------
    n_freq : int
        Frequency bins of ``|X|`` (513).
    feature_dim : int
        Decoder features per frame (64).
    d_model : int
        Transformer width (640).
    nhead : int
        Attention heads (8).
    num_layers : int
        Transformer layers (3).
    dim_feedforward : int
        Feed-forward width (2560).
    bn_momentum : float
        Momentum of the magnitude batch norm (0.01).

    Example
    -------
    >>> net = MaskNet(n_freq=9, feature_dim=4, d_model=8, nhead=2,
    ...               num_layers=1, dim_feedforward=16)
    >>> mask = net(torch.rand(2, 9, 5), torch.randn(2, 5, 4))
    >>> mask.shape, bool(((mask > 0) & (mask < 1)).all())
    (torch.Size([2, 9, 5]), True)
    """

    def __init__(
        self,
        n_freq=513,
        feature_dim=64,
        d_model=640,
        nhead=8,
        num_layers=3,
        dim_feedforward=2560,
        bn_momentum=0.01,
    ):
        super().__init__()
        self.n_freq = n_freq
        self.feature_dim = feature_dim
        self.spec_norm = nn.BatchNorm1d(n_freq, momentum=bn_momentum)
        self.input_proj = nn.Linear(n_freq + feature_dim, d_model)
        self.input_norm = nn.LayerNorm(d_model)
        layer = nn.TransformerEncoderLayer(
            d_model,
            nhead,
            dim_feedforward=dim_feedforward,
            dropout=0.0,
            batch_first=True,
        )
        self.transformer = nn.TransformerEncoder(
            layer, num_layers, enable_nested_tensor=False
        )
        self.output_proj = nn.Linear(d_model, n_freq)
        self.apply(init_transformer_weights)

    def forward(self, magnitude, features):
        """Mask of every time-frequency bin.

        Arguments
        ---------
        magnitude : torch.Tensor
            ``[B, n_freq, T]`` linear magnitude of the mixture.
        features : torch.Tensor
            ``[B, T, feature_dim]`` decoder features.

        Returns
        -------
        torch.Tensor
            ``[B, n_freq, T]`` mask in (0, 1).
        """
        spec = self.spec_norm(magnitude).transpose(1, 2)
        h = torch.cat([spec.to(features.dtype), features], dim=-1)
        h = self.transformer(self.input_norm(self.input_proj(h)))
        return torch.sigmoid(self.output_proj(h)).transpose(1, 2)


def _check_frame_period(encoder, hop_length, sample_rate):
    """Raises ValueError unless the STFT and HTSAT frame periods are equal."""
    encoder_period = fractions.Fraction(encoder.hop_length, encoder.sample_rate)
    if fractions.Fraction(hop_length, sample_rate) != encoder_period:
        raise ValueError(
            f"the STFT frame period ({hop_length}/{sample_rate} s) must equal "
            f"the HTSAT one ({encoder.hop_length}/"
            f"{encoder.sample_rate} s) so that their frames line up"
        )


def _resampler(sample_rate, target_rate):
    """Sinc resampler from ``sample_rate`` to ``target_rate`` (identity if equal)."""
    if sample_rate != target_rate:
        return torchaudio.transforms.Resample(sample_rate, target_rate)
    return nn.Identity()


def _decoder_for(encoder, condition_dim, **options):
    """The Swin U-Net decoder that mirrors the feature pyramid of ``encoder``.

    ``options`` are the remaining arguments of :class:`SwinDecoder`
    (``embed_dim``, ``depths``, ``num_heads``, ...); the patch geometry is
    the encoder's, so that the decoder's output image matches its input.
    """
    patch = encoder.patch_embed.proj
    return SwinDecoder(
        encoder.dims,
        encoder.grids,
        condition_dim=condition_dim,
        **options,
        patch_size=patch.kernel_size,
        patch_stride=patch.stride,
        out_channels=patch.in_channels,
    )


@checkpoints.register_checkpoint_hooks
class CLAPSep(nn.Module):
    """CLAPSep separator: ``(mixture [B, L], condition [B, 1024]) -> [B, L]``.

    The model takes 32 kHz mixtures of at most :attr:`max_samples` samples
    (10.24 s; longer recordings are windowed by the inference interface).
    Shorter ones are zero-padded to ``pad_seconds`` (10 s, the training
    length, as the authors pad their clips) and the estimate is trimmed back
    to the input length. The mixture is resampled to the HTSAT rate with
    ``torchaudio``'s sinc resampler (as the authors' data pipeline). The
    STFT, the HTSAT front end and the iSTFT run in float32, autocast off.

    The condition is always L2-normalised inside the forward (the authors'
    training normalises, their evaluation forgets to: BUG, see
    :func:`normalize_condition`); a zero half is a missing query and an
    all-zero condition gives no NaN. ``|Y| = relu(M |X|)`` with the mixture
    phase is ``M X`` here, since the sigmoid mask ``M`` is positive.

    Build the model after the CLAP checkpoint is loaded into ``htsat``: the
    encoder is a deep copy made at construction.

    Arguments
    ---------
    htsat : torch.nn.Module
        The frozen CLAP's ``HTSAT_Swin_Transformer`` (``clap.audio_branch``);
        deep-copied (see :class:`HTSATFeatures`), never modified.
    condition_dim : int
        Size of the condition (1024 = 2 x 512).
    sample_rate : int
        Rate of the mixtures (32000).
    n_fft : int
        STFT size of the MaskNet and of the output (1024, Hann window).
    hop_length : int
        STFT hop (320); ``hop_length / sample_rate`` must equal the HTSAT
        frame period (480 / 48000) so that the frames line up.
    pad_seconds : float or None
        Shorter inputs are zero-padded to this length (10 s); None: never.
    lora_rank : int
        LoRA rank (16).
    lora_alpha : float
        LoRA alpha (1).
    decoder_dim : int
        Channels of the finest decoder level (128).
    decoder_depths : sequence of int
        Swin blocks per decoder level, finest first (1, 1, 1, 1).
    decoder_heads : sequence of int
        Heads per decoder level, finest first (4, 8, 16, 32).
    decoder_window : int
        Window of the decoder blocks (8).
    mlp_ratio : float
        MLP width of the decoder blocks (4).
    drop_path_rate : float
        Decoder stochastic depth (0.1).
    masknet_dim : int
        Transformer width of the MaskNet (640).
    masknet_heads : int
        MaskNet heads (8).
    masknet_layers : int
        MaskNet layers (3).
    masknet_ff : int
        MaskNet feed-forward width (2560).

    Example
    -------
    >>> from speechbrain_textsep.models.htsat_features import build_htsat
    >>> htsat = build_htsat(embed_dim=16, depths=(1, 1, 1, 1),
    ...                     num_heads=(1, 2, 4, 8))
    >>> model = CLAPSep(htsat, condition_dim=16, pad_seconds=None,
    ...                 lora_rank=4, decoder_dim=16, decoder_heads=(1, 2, 4, 8),
    ...                 masknet_dim=32, masknet_heads=2, masknet_layers=1,
    ...                 masknet_ff=64).eval()
    >>> mixture = torch.randn(2, 16000)
    >>> condition = clapsep_condition(torch.randn(2, 8), embedding_dim=8)
    >>> with torch.no_grad():
    ...     model(mixture, condition).shape
    torch.Size([2, 16000])
    """

    def __init__(
        self,
        htsat,
        condition_dim=1024,
        sample_rate=32000,
        n_fft=1024,
        hop_length=320,
        pad_seconds=10.0,
        lora_rank=16,
        lora_alpha=1.0,
        decoder_dim=128,
        decoder_depths=(1, 1, 1, 1),
        decoder_heads=(4, 8, 16, 32),
        decoder_window=8,
        mlp_ratio=4.0,
        drop_path_rate=0.1,
        masknet_dim=640,
        masknet_heads=8,
        masknet_layers=3,
        masknet_ff=2560,
    ):
        super().__init__()
        self.encoder = HTSATFeatures(htsat, lora_rank=lora_rank, lora_alpha=lora_alpha)
        _check_frame_period(self.encoder, hop_length, sample_rate)
        self.condition_dim = condition_dim
        self.sample_rate = sample_rate
        self.spectral = SpectralMasking(
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=n_fft,
            n_warped=None,
            frame_multiple=1,
        )
        self.resampler = _resampler(sample_rate, self.encoder.sample_rate)
        self.pad_samples, self.max_samples = self._lengths(pad_seconds)
        self.decoder = _decoder_for(
            self.encoder,
            condition_dim=condition_dim,
            embed_dim=decoder_dim,
            depths=decoder_depths,
            num_heads=decoder_heads,
            window_size=decoder_window,
            mlp_ratio=mlp_ratio,
            drop_path_rate=drop_path_rate,
        )
        self.mask_net = MaskNet(
            n_freq=n_fft // 2 + 1,
            feature_dim=self.encoder.mel_bins,
            d_model=masknet_dim,
            nhead=masknet_heads,
            num_layers=masknet_layers,
            dim_feedforward=masknet_ff,
        )
        self._trained_keys = self._list_trained_keys()

    def _lengths(self, pad_seconds):
        """``(pad_samples, max_samples)``; the padding must fit the HTSAT input."""
        sample_rate = self.sample_rate
        pad_samples = 0 if pad_seconds is None else round(pad_seconds * sample_rate)
        max_samples = self._max_samples()
        if pad_samples > max_samples:
            raise ValueError(
                f"pad_seconds={pad_seconds} is longer than the HTSAT input "
                f"({max_samples} samples at {sample_rate} Hz)"
            )
        return pad_samples, max_samples

    def _list_trained_keys(self):
        """The state_dict keys that train (and are saved).

        The LoRA matrices and the biases of the LoRA-tuned layers, and
        everything of the decoder and the MaskNet.
        """
        return tuple(
            [
                f"encoder.{name}"
                for name, param in self.encoder.named_parameters()
                if param.requires_grad
            ]
            + [
                key
                for key in self.state_dict()
                if key.startswith(("decoder.", "mask_net."))
            ]
        )

    def _max_samples(self):
        """Longest mixture whose STFT and HTSAT frames fit the HTSAT image."""
        frames = self.encoder.frames
        length = frames * self.spectral.hop_length - 1
        ratio = fractions.Fraction(self.encoder.sample_rate, self.sample_rate)
        while length > 0 and (
            self.encoder.frames_for_samples(-(-length * ratio // 1)) > frames
        ):
            length -= 1
        return length

    @property
    def max_seconds(self):
        """Longest input in seconds (10.24 s minus one sample)."""
        return self.max_samples / self.sample_rate

    def _check_inputs(self, mixture, condition):
        """Clear errors for bad shapes and lengths."""
        if mixture.dim() != 2:
            raise ValueError(
                f"mixture must be [batch, time], got {tuple(mixture.shape)}"
            )
        if condition.dim() != 2 or condition.shape[-1] != self.condition_dim:
            raise ValueError(
                f"condition must be [batch, {self.condition_dim}] (positive and "
                f"negative embeddings), got {tuple(condition.shape)}"
            )
        if condition.shape[0] != mixture.shape[0]:
            raise ValueError(
                f"{condition.shape[0]} conditions for {mixture.shape[0]} mixtures"
            )
        length = mixture.shape[-1]
        if length < 1:
            raise ValueError("mixture is empty")
        if length > self.max_samples:
            raise ValueError(
                f"CLAPSep takes at most {self.max_samples} samples "
                f"({self.max_seconds:.4f} s at {self.sample_rate} Hz), got "
                f"{length}; separate longer inputs in windows (the inference "
                "interface does)"
            )

    def separate(self, mixture, condition):
        """Estimates and masks.

        Arguments
        ---------
        mixture : torch.Tensor
            ``[B, L]`` mixtures at :attr:`sample_rate`, ``L <= max_samples``.
        condition : torch.Tensor
            ``[B, condition_dim]`` conditions (:func:`clapsep_condition`).

        Returns
        -------
        estimate : torch.Tensor
            ``[B, L]`` float32 estimates.
        mask : torch.Tensor
            ``[B, n_fft // 2 + 1, frames]`` masks in (0, 1) on the STFT
            frames of the input (``1 + L // hop_length``).
        """
        self._check_inputs(mixture, condition)
        length = mixture.shape[-1]
        device_type = mixture.device.type
        with torch.autocast(device_type=device_type, enabled=False):
            wav = mixture.float()
            if length < self.pad_samples:
                wav = F.pad(wav, (0, self.pad_samples - length))
            spec = self.spectral.stft(wav)  # [B, F, T]
            magnitude = spec.abs()
            wav_encoder = self.resampler(wav)
        features = self.encoder(wav_encoder)
        condition = normalize_condition(condition.float())
        image = self.decoder(features, condition)
        frames = image_to_frames(image, self.encoder.freq_ratio)[:, 0]
        frames = frames[:, : spec.shape[-1]]  # [B, T, mel]
        mask = self.mask_net(magnitude, frames)
        with torch.autocast(device_type=device_type, enabled=False):
            mask = mask.float()
            estimate = self.spectral.istft(spec * mask, length)
        return estimate, mask[
            ..., : frames_for_length(length, self.spectral.hop_length)
        ]

    def forward(self, mixture, condition):
        """Separates the sound the condition describes.

        Arguments
        ---------
        mixture : torch.Tensor
            ``[B, L]`` mixtures at :attr:`sample_rate`, ``L <= max_samples``.
        condition : torch.Tensor
            ``[B, condition_dim]`` conditions (:func:`clapsep_condition`).

        Returns
        -------
        torch.Tensor
            ``[B, L]`` float32 estimates.
        """
        return self.separate(mixture, condition)[0]

    def masks(self, mixture, condition):
        """The ``[B, n_fft // 2 + 1, frames]`` masks (see :meth:`separate`)."""
        return self.separate(mixture, condition)[1]

    def trained_keys(self):
        """Names of the trained entries of the state dict (see the class)."""
        return list(self._trained_keys)

    def trainable_state_dict(self):
        """The trained part of the state dict: LoRA, biases, decoder, MaskNet.

        Returns
        -------
        dict
            Name -> tensor, a subset of :meth:`state_dict` that a model built
            from the same frozen CLAP loads with
            :meth:`load_trainable_state_dict`.
        """
        state = self.state_dict()
        return {key: state[key] for key in self._trained_keys}

    def load_trainable_state_dict(self, state_dict):
        """Loads what :meth:`trainable_state_dict` returned (keys must match).

        Arguments
        ---------
        state_dict : dict
            Name -> tensor.
        """
        expected = set(self._trained_keys)
        missing = sorted(expected - set(state_dict))
        unexpected = sorted(set(state_dict) - expected)
        if missing or unexpected:
            raise KeyError(
                "CLAPSep trainable state does not match this model: "
                f"{len(missing)} missing (e.g. {missing[:3]}), "
                f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}); was it "
                "saved from a model of the same configuration?"
            )
        self.load_state_dict(state_dict, strict=False)

    def parameter_counts(self):
        """Trainable, frozen and total parameter counts of this module.

        Returns
        -------
        dict
            ``trainable``, ``lora`` (LoRA matrices and tuned biases),
            ``frozen`` and ``total``.
        """
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.parameters())
        lora = sum(p.numel() for p in self.encoder.parameters() if p.requires_grad)
        return {
            "trainable": trainable,
            "lora": lora,
            "frozen": total - trainable,
            "total": total,
        }

    @checkpoints.mark_as_saver
    def _save(self, path):
        """Checkpointer hook: saves only :meth:`trainable_state_dict`."""
        torch.save(self.trainable_state_dict(), path)

    @checkpoints.mark_as_loader
    def _load(self, path, end_of_epoch=False):
        """Checkpointer hook: loads :meth:`trainable_state_dict`."""
        del end_of_epoch
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.load_trainable_state_dict(state)

    @checkpoints.mark_as_transfer
    def _transfer(self, path):
        """Pretrainer hook: loads :meth:`trainable_state_dict`."""
        self._load(path)
