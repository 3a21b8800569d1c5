"""Import of the authors' CLIPSep / CLIPSep-NIT checkpoints (sony/CLIPSep).

The authors' checkpoints cannot be downloaded here, so this file holds a
minimal re-implementation of their modules, written from the description of
their code: the same attribute names and layer order (hence the same
state_dict keys) and the same inference forward (input BatchNorm, warp with
``grid_sample``, recursive U-Net with in-place LeakyReLU, query projection,
``alpha``/``beta`` combination, NIT noise heads), and of their front end, in
numpy as their ``evaluate.py`` runs it: ``librosa.stft`` (0.9.2: centred,
zero padding, periodic Hann, float64 FFT stored as complex64), the warp and
unwarp with ``grid_sample`` on their float32 ``warpgrid``, the soft mask on
the mixture magnitude with the mixture phase, and ``librosa.istft`` (float64,
no ``length``: ``(T - 1) * hop`` samples) clipped to [-1, 1]. A tiny random
instance is saved as they save it (DataParallel state_dict +
``train-args.json``), imported, loaded with ``QuerySeparator.from_hparams``
and compared from the waveform: masks and waveforms agree to ~1e-6.
"""

import filecmp
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from speechbrain_textsep.convert import CheckpointImportError, import_clipsep_checkpoint
from speechbrain_textsep.convert.clipsep_checkpoint import clipsep_key_map
from speechbrain_textsep.encoders.clip import (
    PROMPT_ENSEMBLE,
    TINY_CLIP_CFG,
    CLIPQueryEncoder,
)
from speechbrain_textsep.inference import QuerySeparator
from speechbrain_textsep.models.clipsep import CLIPSep
from speechbrain_textsep.models.separator import analyze
from speechbrain_textsep.models.unet import AudioUNet
from speechbrain_textsep.processing.spectral import SpectralMasking

pytestmark = pytest.mark.integration

N_FFT, HOP, WIN, RATE = 1024, 256, 1024, 16000
QUERY_DIM = TINY_CLIP_CFG["embed_dim"]


# --------------------------------------------- the authors' model, re-written
class RefUNetLevel(nn.Module):
    """One level of their recursive U-Net; ``model`` has their layer order."""

    def __init__(self, outer, inner, submodule=None, in_ch=None, position="middle"):
        super().__init__()
        in_ch = outer if in_ch is None else in_ch
        up_in = inner if position == "innermost" else 2 * inner
        down = nn.Conv2d(in_ch, inner, kernel_size=4, stride=2, padding=1, bias=False)
        up = [
            nn.ReLU(True),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
        ]
        if position == "outermost":
            layers = [down, submodule, *up, nn.Conv2d(up_in, outer, 3, padding=1)]
        else:
            up_conv = nn.Conv2d(up_in, outer, 3, padding=1, bias=False)
            if position == "innermost":
                layers = [nn.LeakyReLU(0.2, True), down]
            else:
                layers = [nn.LeakyReLU(0.2, True), down, nn.BatchNorm2d(inner)]
                layers.append(submodule)
            layers += [*up, up_conv, nn.BatchNorm2d(outer)]
        self.outermost = position == "outermost"
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        out = self.model(x)  # the in-place LeakyReLU also rewrites x
        return out if self.outermost else torch.cat([x, out], 1)


class RefUNet(nn.Module):
    """Their U-Net: ``bn0`` then the levels, at least 5 whatever ``num_downs``."""

    def __init__(self, out_dim, num_downs, ngf):
        super().__init__()
        block = RefUNetLevel(8 * ngf, 8 * ngf, position="innermost")
        for _ in range(num_downs - 5):
            block = RefUNetLevel(8 * ngf, 8 * ngf, block)
        for mult in (4, 2, 1):
            block = RefUNetLevel(mult * ngf, 2 * mult * ngf, block)
        self.bn0 = nn.BatchNorm2d(1)
        self.unet_block = RefUNetLevel(out_dim, ngf, block, 1, "outermost")

    def forward(self, x):
        return self.unet_block(self.bn0(x))


class RefInnerProd(nn.Module):
    """Their ``synth_net``: ``sum_k scale_k q_k S_k + bias``."""

    def __init__(self, channels):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, q, feat):
        batch, channels = feat.shape[:2]
        z = torch.bmm((q * self.scale).view(batch, 1, channels), feat.flatten(2))
        return z.view(batch, 1, *feat.shape[2:]) + self.bias


def ref_warp_grid(batch, rows, frames, warp):
    """Their ``warpgrid``: a float64 numpy grid cast to float32 ``[B, H, W, 2]``."""
    x, y = np.meshgrid(np.linspace(-1, 1, frames), np.linspace(-1, 1, rows))
    if warp:
        y = (np.power(21, (y + 1) / 2) - 11) / 10
    else:
        y = np.log(y * 10 + 11) / np.log(21) * 2 - 1
    grid = np.zeros((batch, rows, frames, 2))
    grid[..., 0], grid[..., 1] = x, y
    return torch.from_numpy(grid.astype(np.float32))


class RefCLIPSep(nn.Module):
    """Their ``CLIPSep`` (``nit=False``) or ``CLIPPITSepV4`` (``nit=True``)."""

    def __init__(self, layers, channels, ngf, query_dim, nit=False):
        super().__init__()
        self.sound_net = RefUNet(channels, layers, ngf)
        self.frame_net = nn.Linear(query_dim, channels)
        if nit:
            self.pit_nets = nn.ModuleList(
                nn.Linear(channels, channels) for _ in range(2)
            )
        self.synth_net = RefInnerProd(channels)
        self.nit = nit

    def logits(self, mag_mix, query):
        """Mask logits of the query and, for NIT, of the two noise heads."""
        z = self.frame_net(query)
        mag = mag_mix + 1e-10
        grid = ref_warp_grid(mag.shape[0], 256, mag.shape[3], warp=True)
        mag = F.grid_sample(mag, grid, align_corners=True)
        feat = self.sound_net(torch.log(mag))
        logit = self.synth_net(torch.sigmoid(z), feat)
        if not self.nit:
            return logit, []
        return logit, [self.synth_net(torch.sigmoid(h(z)), feat) for h in self.pit_nets]

    def infer(self, mag_mix, query):
        """Sigmoid masks ``[B, 1, 256, T]`` of the query (noise heads left out)."""
        return self.logits(mag_mix, query)[0].sigmoid()


HANN = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)  # periodic, float64


def ref_stft(wav):
    """``librosa.stft`` 0.9.2 of ``[B, L]`` float32 audio: ``[B, F, T]`` complex64."""
    padded = np.pad(wav, [(0, 0), (N_FFT // 2, N_FFT // 2)], mode="constant")
    starts = HOP * np.arange(1 + wav.shape[-1] // HOP)
    frames = padded[:, starts[:, None] + np.arange(N_FFT)]  # [B, T, n_fft]
    return np.fft.rfft(HANN * frames, axis=-1).transpose(0, 2, 1).astype(np.complex64)


def ref_istft(spec):
    """``librosa.istft`` 0.9.2 without ``length``, clipped as their ``utils``."""
    chunks = HANN[:, None] * np.fft.irfft(spec, n=N_FFT, axis=-2)  # [B, n_fft, T]
    frames = spec.shape[-1]
    wav = np.zeros((spec.shape[0], N_FFT + HOP * (frames - 1)))
    window_sum = np.zeros(wav.shape[-1])
    for t in range(frames):
        wav[:, t * HOP : t * HOP + N_FFT] += chunks[..., t]
        window_sum[t * HOP : t * HOP + N_FFT] += HANN**2
    nonzero = window_sum > np.finfo(window_sum.dtype).tiny
    wav[:, nonzero] /= window_sum[nonzero]
    wav = wav[:, N_FFT // 2 : -(N_FFT // 2)]
    return np.clip(wav, -1.0, 1.0).astype(np.float32)


def ref_mixture(sources):
    """Their evaluation batch: ``|X|``, ``angle(X)`` of ``X = sum_n STFT(s_n / N)``."""
    spec = sum(ref_stft(source.numpy() / len(sources)) for source in sources)
    return torch.from_numpy(np.abs(spec))[:, None], np.angle(spec)


def ref_separate(model, mag_mix, phase_mix, query):
    """Their ``evaluate.py`` soft-mask path: warped masks and waveforms."""
    mask = model.infer(mag_mix, query)  # [B, 1, 256, T]
    grid = ref_warp_grid(mask.shape[0], N_FFT // 2 + 1, mask.shape[-1], warp=False)
    linear = F.grid_sample(mask, grid, align_corners=True).numpy()
    pred_mag = mag_mix.numpy()[:, 0] * linear[:, 0]
    wav = ref_istft(pred_mag.astype(np.complex128) * np.exp(1j * phase_mix))
    return mask[:, 0], torch.from_numpy(wav)


def ref_log_mag(mag_mix):
    """Their network input: log of the ``grid_sample``-warped ``|X| + 1e-10``."""
    grid = ref_warp_grid(mag_mix.shape[0], 256, mag_mix.shape[-1], warp=True)
    return torch.log(F.grid_sample(mag_mix + 1e-10, grid, align_corners=True))


def test_reference_front_end_inverts():
    # The numpy STFT/ISTFT pair gives the input back (trimmed to (T - 1) * hop).
    wav = 0.1 * torch.randn(2, 4000)  # within [-1, 1]: no clipping
    spec = ref_stft(wav.numpy())
    assert spec.shape == (2, N_FFT // 2 + 1, 1 + 4000 // HOP)
    back = ref_istft(spec.astype(np.complex128))
    assert back.shape == (2, (spec.shape[-1] - 1) * HOP)
    assert np.abs(back - wav.numpy()[:, : back.shape[-1]]).max() < 1e-5


def randomize_(model, seed):
    """Random weights and BatchNorm statistics far from the init, for a real test."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                tensor.fill_(1000)
            elif name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0, generator=gen)
            elif name.endswith(("running_mean", "bias")):
                tensor.normal_(0.0, 0.3, generator=gen)
            elif tensor.dim() > 1:  # conv / linear weights: unit-gain fan-in
                fan_in = tensor[0].numel()
                tensor.normal_(0.0, 1.5 / math.sqrt(fan_in), generator=gen)
            else:  # BN weights, synth scale
                tensor.normal_(1.0, 0.5, generator=gen)
        model.sound_net.bn0.running_mean.fill_(-4.0)  # log-magnitudes
        model.sound_net.bn0.running_var.fill_(4.0)
    return model.eval()


def calibrate_(model, mag_mix, query):
    """Rescales ``synth_net`` so that the mask logits have mean 0 and std 2."""
    with torch.no_grad():
        logit = model.logits(mag_mix, query)[0] - model.synth_net.bias
        gain = 2.0 / logit.std()
        model.synth_net.scale.mul_(gain)
        model.synth_net.bias.copy_(-gain * logit.mean())
    return model


def authors_train_args(**changes):
    """A ``train-args.json`` as their train.py writes it (all argparse keys)."""
    args = {
        "out_dir": "/data/exp/vggsound/clipsep",
        "train_list": "data/vggsound/train.csv",
        "val_list": "data/vggsound/val.csv",
        "n_validation": None,
        "weights": None,
        "batch_size": 32,
        "drop_closest": None,
        "drop_closest_steps": 10000,
        "repeat": None,
        "frame_margin": None,
        "audio_only": False,
        "audio_len": 65535,
        "audio_rate": RATE,
        "n_fft": N_FFT,
        "hop_len": HOP,
        "win_len": WIN,
        "img_size": 224,
        "fps": 1,
        "train_mode": "image",
        "image_model": "clip",
        "n_mix": 2,
        "fusion": "late",
        "channels": 32,
        "layers": 7,
        "frames": 3,
        "stride_frames": 1,
        "binary_mask": True,
        "loss": "bce",
        "weighted_loss": True,
        "log_freq": True,
        "n_labels": None,
        "label_map_filename": None,
        "bert_embeddings": None,
        "reg_coef": 0,
        "reg_epsilon": 0.1,
        "reg2_coef": 0.1,
        "reg2_epsilon": 0.25,
        "steps": 200000,
        "valid_steps": 10000,
        "lr": 0.001,
        "lr_warmup_steps": 5000,
        "lr_decay_steps": 100000,
        "lr_decay_multiplier": 0.1,
        "grad_norm_clip": 1.0,
        "pit_warmup_steps": 0,
        "seed": 1234,
        "gpus": 1,
        "workers": 8,
        "quiet": False,
    }
    args.update(changes)
    return args


def save_authors_checkpoint(folder, model, **arg_changes):
    """``best_model.pt`` (DataParallel state_dict) and ``train-args.json``."""
    os.makedirs(folder, exist_ok=True)
    checkpoint = os.path.join(folder, "best_model.pt")
    torch.save(nn.DataParallel(model).state_dict(), checkpoint)
    train_args = os.path.join(folder, "train-args.json")
    with open(train_args, "w") as f:
        json.dump(authors_train_args(**arg_changes), f)
    return checkpoint, train_args


@pytest.fixture(scope="module")
def tiny_clip():
    torch.manual_seed(0)
    return CLIPQueryEncoder(model_cfg=TINY_CLIP_CFG, pretrained=None)


def import_and_load(tmp_path, model, tiny_clip, **arg_changes):
    checkpoint, train_args = save_authors_checkpoint(
        tmp_path / "authors", model, **arg_changes
    )
    out = import_clipsep_checkpoint(
        checkpoint, train_args, tmp_path / "model", query_encoder=tiny_clip
    )
    separator = QuerySeparator.from_hparams(
        source=out, savedir=str(tmp_path / "savedir")
    )
    return separator


# --------------------------------------------------------------------- tests
def test_key_map_covers_our_model_and_their_keys():
    for levels in (5, 7):
        ours = CLIPSep(AudioUNet(out_channels=4, ngf=2, levels=levels), 8, 4)
        mapping = clipsep_key_map(levels)
        assert sorted(mapping.values()) == sorted(ours.state_dict())
        theirs = RefCLIPSep(levels, 4, 2, 8).state_dict()
        assert sorted(mapping) == sorted(theirs)


def make_sources(length=65535, seed=1):
    """Two sources that start at full level (the STFT padding matters there):
    a harmonic tone (near-empty bins next to loud ones) and white noise, on
    the 16-bit grid of audio files, so that the mixture ``sum_n s_n / N`` is
    exact in float32 and their sum of source STFTs is the mixture's STFT."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / RATE
    tone = sum(torch.sin(2 * math.pi * 220 * k * t) / k for k in range(1, 8))
    tone = 0.3 * tone + 1e-3 * torch.randn(length, generator=gen)
    noise = 0.2 * torch.randn(length, generator=gen)
    tone, noise = ((x * 32768).round() / 32768 for x in (tone, noise))
    return [torch.stack([tone, noise]), torch.stack([noise, tone])]


@pytest.mark.parametrize(
    "layers, nit, image_model",
    [(5, False, "clip"), (7, True, "clipsepnit")],
)
def test_import_reproduces_the_authors_masks(
    tmp_path, tiny_clip, layers, nit, image_model
):
    # 65535-sample inputs (their clip length): 256 frames, no padding either side
    sources = make_sources()
    mixture = sum(source / len(sources) for source in sources)
    mag_mix, phase_mix = ref_mixture(sources)
    query = tiny_clip.encode_text(["violin", "dog barking"], ensemble=PROMPT_ENSEMBLE)
    ref = randomize_(RefCLIPSep(layers, 8, 4, QUERY_DIM, nit=nit), seed=layers)
    calibrate_(ref, mag_mix, query)
    separator = import_and_load(
        tmp_path, ref, tiny_clip, layers=layers, channels=8, image_model=image_model
    )
    hparams = separator.hparams
    assert (hparams.levels, hparams.ngf, hparams.n_maps) == (layers, 4, 8)
    assert (hparams.n_fft, hparams.hop_length, hparams.n_warped) == (N_FFT, HOP, 256)
    sep = separator.mods.separator
    spectral = sep.spectral
    assert (spectral.pad_mode, spectral.warp_grid, spectral.stft_dtype) == (
        "constant",
        "float32_grid_sample",
        "float64",
    )
    assert not sep.mask_net.noise_heads

    assert torch.equal(separator.encode_text(["violin", "dog barking"]), query)
    with torch.no_grad():
        ref_mask, ref_wav = ref_separate(ref, mag_mix, phase_mix, query)
        # The key map alone: the imported network on their network input.
        ours_on_theirs = sep.mask_net(ref_log_mag(mag_mix), query[:, None])
        same_input_diff = (ours_on_theirs[:, 0].sigmoid() - ref_mask).abs().max()
        masks = {}
        for name, spectral in {
            "imported": sep.spectral,
            "reflect padding": SpectralMasking(pad_mode="reflect"),
            "exact warp": SpectralMasking(pad_mode="constant", stft_dtype="float64"),
            "float32 FFT": SpectralMasking(
                pad_mode="constant", warp_grid="float32_grid_sample"
            ),
        }.items():
            log_mag = analyze(spectral, mixture)["log_mag"]
            masks[name] = sep.mask_net(log_mag, query[:, None])[:, 0].sigmoid()
        wav_out = separator.separate_batch(mixture, query)

    assert ref_mask.std() > 0.2  # the masks are far from constant
    diffs = {name: (mask - ref_mask).abs().max().item() for name, mask in masks.items()}
    # their istft returns (T - 1) * hop samples; the rest is ours only
    assert ref_wav.shape[-1] == 65280
    wav_diff = (wav_out[:, : ref_wav.shape[-1]] - ref_wav).abs().max().item()
    print(f"max |diff| to the authors' pipeline: masks {same_input_diff:.1e} (same")
    print(f"network input), masks {diffs} from the waveform, waveforms {wav_diff:.1e}")
    assert same_input_diff < 1e-5
    assert diffs["imported"] < 1e-4
    assert wav_diff < 1e-4
    # The test sees the old front end: torch.stft's reflect padding fails it.
    assert diffs["reflect padding"] > 5e-4


def small_checkpoint(tmp_path, nit=False, query_dim=QUERY_DIM, edit=None, **args):
    """A tiny authors' checkpoint (5 levels, ngf 2, 4 maps), state_dict edited."""
    torch.manual_seed(2)
    model = RefCLIPSep(5, 4, 2, query_dim, nit=nit)
    args = {"layers": 5, "channels": 4, **args}
    checkpoint, train_args = save_authors_checkpoint(tmp_path, model, **args)
    if edit is not None:
        state = torch.load(checkpoint, weights_only=True)
        edit(state)
        torch.save(state, checkpoint)
    return checkpoint, train_args


def test_default_query_encoder_is_openai_vit_b_32(tmp_path):
    checkpoint, train_args = small_checkpoint(
        tmp_path, nit=True, query_dim=512, image_model="clipsepnit"
    )
    out = import_clipsep_checkpoint(checkpoint, train_args, tmp_path / "model")
    assert out == str(tmp_path / "model")
    assert sorted(os.listdir(out)) == ["README.md", "hyperparams.yaml", "mask_net.ckpt"]
    card = open(os.path.join(out, "README.md")).read()
    assert "open_clip ViT-B-32 / openai" in card and "sony/CLIPSep" in card
    with open(os.path.join(out, "hyperparams.yaml")) as f:
        text = f.read()
    # The scalar settings (the YAML has !new: tags below them).
    head = yaml.safe_load(text.split("spectral:")[0])
    assert head["clip_model"] == "ViT-B-32" and head["clip_pretrained"] == "openai"
    assert head["query_encoder_in_folder"] is False and head["clip_model_cfg"] == {}
    assert (head["query_dim"], head["n_maps"], head["levels"], head["ngf"]) == (
        512,
        4,
        5,
        2,
    )
    assert head["sample_rate"] == RATE and head["win_length"] == WIN
    state = torch.load(os.path.join(out, "mask_net.ckpt"), weights_only=True)
    assert not any(key.startswith("noise_heads") for key in state)
    assert torch.equal(
        state["query_proj.weight"],
        torch.load(checkpoint, weights_only=True)["module.frame_net.weight"],
    )


def test_checkpoint_without_data_parallel_prefix(tmp_path, tiny_clip):
    def strip(state):
        for key in list(state):
            state[key[len("module.") :]] = state.pop(key)

    checkpoint, train_args = small_checkpoint(tmp_path, edit=strip)
    out = import_clipsep_checkpoint(
        checkpoint, train_args, tmp_path / "model", query_encoder=tiny_clip
    )
    assert os.path.isfile(os.path.join(out, "query_encoder.ckpt"))


UNET = "module.sound_net.unet_block.model"


@pytest.mark.parametrize(
    "edit, nit, image_model, message",
    [
        (
            lambda s: s.update({"module.frame_net.extra": torch.zeros(1)}),
            False,
            "clip",
            "1 key(s) that are not part of the authors' 5-level CLIPSep: "
            "frame_net.extra",
        ),
        (
            lambda s: s.pop(f"{UNET}.1.model.2.running_var"),
            False,
            "clip",
            "lacks 1 key(s) of the authors' 5-level CLIPSep: "
            "sound_net.unet_block.model.1.model.2.running_var",
        ),
        (  # a CLIPSep-NIT checkpoint with CLIPSep train-args
            None,
            True,
            "clip",
            "4 key(s) that are not part of the authors' 5-level CLIPSep: "
            "pit_nets.0.bias, pit_nets.0.weight",
        ),
        (  # a CLIPSep checkpoint with CLIPSep-NIT train-args
            None,
            False,
            "clipsepnit",
            "lacks 4 key(s) of the authors' 5-level CLIPSep-NIT: pit_nets.0.bias",
        ),
        (
            lambda s: s.update({f"{UNET}.4.bias": torch.zeros(3)}),
            False,
            "clip",
            "unet.up.0.2.bias (3,) (expected (4,))",
        ),
        (
            lambda s: s.update({"module.step": torch.tensor(3), "optimizer": 1}),
            False,
            "clip",
            "is not a state_dict",
        ),
    ],
    ids=[
        "unexpected-key",
        "missing-key",
        "nit-checkpoint-clip-args",
        "clip-checkpoint-nit-args",
        "wrong-shape",
        "not-a-state-dict",
    ],
)
def test_bad_checkpoints_are_refused(
    tmp_path, tiny_clip, edit, nit, image_model, message
):
    checkpoint, train_args = small_checkpoint(
        tmp_path, nit=nit, edit=edit, image_model=image_model
    )
    with pytest.raises(CheckpointImportError, match=re.escape(message)):
        import_clipsep_checkpoint(
            checkpoint, train_args, tmp_path / "model", query_encoder=tiny_clip
        )
    assert not os.path.exists(tmp_path / "model")


@pytest.mark.parametrize(
    "args, message",
    [
        ({"fusion": "early"}, "fusion 'early' \\(CLIPSepV2\\) is not implemented"),
        ({"fusion": "middle"}, "fusion 'middle' \\(CLIPSepV3\\) is not implemented"),
        ({"image_model": "sop"}, "image_model 'sop' is not supported"),
        ({"image_model": "label_only"}, "image_model 'label_only' is not supported"),
        ({"binary_mask": False}, "binary_mask is false"),
        ({"log_freq": False}, "log_freq is false"),
        ({"n_fft": "1024"}, "'n_fft' must be a positive integer"),
        ({"win_len": 2048}, "win_len 2048 is larger than n_fft 1024"),
        ({"layers": 9}, "does not fit the 256 frequency rows"),
        ({"layers": 6}, "a 5-level U-Net but train-args.json says 6 levels"),
        ({"channels": 32}, "4 U-Net maps but train-args.json says channels 32"),
    ],
)
def test_unsupported_train_args_are_refused(tmp_path, tiny_clip, args, message):
    checkpoint, train_args = small_checkpoint(tmp_path, **args)
    with pytest.raises(CheckpointImportError, match=message):
        import_clipsep_checkpoint(
            checkpoint, train_args, tmp_path / "model", query_encoder=tiny_clip
        )


def test_layers_below_five_build_five_levels(tmp_path, tiny_clip):
    # The authors' U-Net has at least 5 levels whatever `layers` says.
    checkpoint, train_args = small_checkpoint(tmp_path, layers=4)
    out = import_clipsep_checkpoint(
        checkpoint, train_args, tmp_path / "model", query_encoder=tiny_clip
    )
    with open(os.path.join(out, "hyperparams.yaml")) as f:
        assert yaml.safe_load(f.read().split("spectral:")[0])["levels"] == 5


def test_missing_train_args_and_query_size(tmp_path, tiny_clip):
    checkpoint, train_args = small_checkpoint(tmp_path)
    with open(train_args) as f:
        args = json.load(f)
    del args["hop_len"]
    with pytest.raises(CheckpointImportError, match="train-args.json has no 'hop_len'"):
        import_clipsep_checkpoint(checkpoint, args, tmp_path / "model")
    with pytest.raises(FileNotFoundError, match="train-args.json not found"):
        import_clipsep_checkpoint(checkpoint, tmp_path / "nowhere.json", tmp_path)
    # The checkpoint takes 32-d queries: not OpenAI's 512-d ViT-B/32 by default
    with pytest.raises(CheckpointImportError, match="takes 32-d queries"):
        import_clipsep_checkpoint(checkpoint, train_args, tmp_path / "model")
    other = small_checkpoint(tmp_path / "other", query_dim=16)[0]
    with pytest.raises(CheckpointImportError, match="gives 32-d embeddings"):
        import_clipsep_checkpoint(
            other, train_args, tmp_path / "model", query_encoder=tiny_clip
        )


def test_textsep_import_command(tmp_path):
    checkpoint, train_args = small_checkpoint(
        tmp_path, nit=True, query_dim=512, image_model="clipsepnit"
    )
    textsep = os.path.join(os.path.dirname(sys.executable), "textsep")
    command = [textsep, "import", "clipsep", "--checkpoint", str(checkpoint)]
    out = str(tmp_path / "model")
    result = subprocess.run(
        command + ["--train-args", str(train_args), "--out", out],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == [out]
    expected = import_clipsep_checkpoint(checkpoint, train_args, tmp_path / "ref")
    for name in ("hyperparams.yaml", "mask_net.ckpt"):
        assert filecmp.cmp(os.path.join(out, name), os.path.join(expected, name))
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    result = subprocess.run(
        [textsep, "import", "clipsep", "--checkpoint", str(broken)]
        + ["--train-args", str(train_args), "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "broken.pt" in result.stderr
