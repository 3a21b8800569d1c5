"""Import of the authors' CLIPSep / CLIPSep-NIT checkpoints (sony/CLIPSep).

The authors' checkpoints cannot be downloaded here, so this file holds a
minimal re-implementation of their modules, written from the description of
their code: the same attribute names and layer order (hence the same
state_dict keys) and the same inference forward (input BatchNorm, warp with
``grid_sample``, recursive U-Net with in-place LeakyReLU, query projection,
``alpha``/``beta`` combination, NIT noise heads). A tiny random instance is
saved as they save it (DataParallel state_dict + ``train-args.json``),
imported, loaded with ``QuerySeparator.from_hparams`` and compared: on the
same network input the masks agree to ~1e-6; from the waveform the float32
``grid_sample`` warp of the reference (vs the exact interpolation matrix of
``SpectralMasking``) adds up to a few 1e-5 on these inputs.
"""

import filecmp
import json
import math
import os
import re
import subprocess
import sys

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
    """Their sampling grid (float64 formula, float32 grid)."""
    x = torch.linspace(-1, 1, frames, dtype=torch.float64)
    y = torch.linspace(-1, 1, rows, dtype=torch.float64)
    if warp:
        y = (torch.pow(21.0, (y + 1) / 2) - 11) / 10
    else:
        y = torch.log(y * 10 + 11) / math.log(21) * 2 - 1
    grid = torch.stack(torch.broadcast_tensors(x[None, :], y[:, None]), -1)
    return grid.float()[None].expand(batch, -1, -1, -1)


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


def ref_log_mag(wav):
    """Their network input: log of the grid_sample-warped ``|STFT| + 1e-10``."""
    window = torch.hann_window(WIN)
    spec = torch.stft(wav, N_FFT, HOP, WIN, window, center=True, return_complex=True)
    mag = spec.abs()[:, None] + 1e-10
    grid = ref_warp_grid(mag.shape[0], 256, mag.shape[3], warp=True)
    return torch.log(F.grid_sample(mag, grid, align_corners=True))


def ref_separate(model, wav, query):
    """Their pipeline on ``[B, L]`` audio: masks and soft-mask estimates."""
    window = torch.hann_window(WIN)
    spec = torch.stft(wav, N_FFT, HOP, WIN, window, center=True, return_complex=True)
    mask = model.infer(spec.abs()[:, None], query)
    grid = ref_warp_grid(wav.shape[0], N_FFT // 2 + 1, spec.shape[-1], warp=False)
    linear = F.grid_sample(mask, grid, align_corners=True)[:, 0]
    wav_out = torch.istft(spec * linear, N_FFT, HOP, WIN, window, length=wav.shape[-1])
    return mask[:, 0], wav_out


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


def calibrate_(model, wav, query):
    """Rescales ``synth_net`` so that the mask logits have mean 0 and std 2."""
    with torch.no_grad():
        window = torch.hann_window(WIN)
        spec = torch.stft(wav, N_FFT, HOP, WIN, window, return_complex=True)
        logit = model.logits(spec.abs()[:, None], query)[0] - model.synth_net.bias
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


@pytest.mark.parametrize(
    "layers, nit, image_model",
    [(5, False, "clip"), (7, True, "clipsepnit")],
)
def test_import_reproduces_the_authors_masks(
    tmp_path, tiny_clip, layers, nit, image_model
):
    torch.manual_seed(1)
    frames = 2**layers  # a length that needs no padding: same input for both
    wav = 0.3 * torch.randn(2, (frames - 1) * HOP)
    query = tiny_clip.encode_text(["violin", "dog barking"], ensemble=PROMPT_ENSEMBLE)
    ref = randomize_(RefCLIPSep(layers, 8, 4, QUERY_DIM, nit=nit), seed=layers)
    calibrate_(ref, wav, query)
    separator = import_and_load(
        tmp_path, ref, tiny_clip, layers=layers, channels=8, image_model=image_model
    )
    hparams = separator.hparams
    assert (hparams.levels, hparams.ngf, hparams.n_maps) == (layers, 4, 8)
    assert (hparams.n_fft, hparams.hop_length, hparams.n_warped) == (N_FFT, HOP, 256)
    assert not separator.mods.separator.mask_net.noise_heads

    assert torch.equal(separator.encode_text(["violin", "dog barking"]), query)
    with torch.no_grad():
        ref_mask, ref_wav = ref_separate(ref, wav, query)
        sep = separator.mods.separator
        views = analyze(sep.spectral, wav)
        # The imported network on the reference's own input: the key map
        # alone, tightly (the front ends differ by float32 rounding, below).
        ref_input = ref_log_mag(wav)
        same_input_diff = (
            (sep.mask_net(ref_input, query[:, None])[:, 0].sigmoid() - ref_mask)
            .abs()
            .max()
            .item()
        )
        views = analyze(sep.spectral, wav)
        mask = sep.mask_net(views["log_mag"], query[:, None])[:, 0].sigmoid()
        wav_out = separator.separate_batch(wav, query)

    assert ref_mask.std() > 0.2  # the masks are far from constant
    mask_diff = (mask - ref_mask).abs().max().item()
    wav_diff = (wav_out - ref_wav).abs().max().item()
    print(f"max |diff|: masks {same_input_diff:.1e} (same network input), ", end="")
    print(f"masks {mask_diff:.1e}, waveforms {wav_diff:.1e}")
    assert same_input_diff < 1e-5
    assert mask_diff < 1e-4
    assert wav_diff < 1e-4


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
    assert sorted(os.listdir(out)) == ["hyperparams.yaml", "mask_net.ckpt"]
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
