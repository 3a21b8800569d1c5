"""Import of the authors' CLAPSep checkpoint (Aisaka0v0/CLAPSep).

The reference is a re-implementation, at a tiny size, of the authors' module
tree and forward (``model/CLAPSep.py``: the LoRA'd HTSAT copy with forward
hooks and the spectrogram-padding hook, ``model/CLAPSep_decoder.py``:
``HTSAT_Decoder`` with their PatchExpand and reversed layer lists, torchlibrosa
STFT / ISTFT and ``relu(mag * mask)`` with the mixture phase), written from
their code with their attribute names so that its ``state_dict`` has their
keys. A Lightning-style checkpoint of it is imported and our CLAPSep must
give the same estimate.
"""

import argparse
import copy
import os

import pytest
import torch
import torch.nn.functional as F
import torchaudio
from torch import nn
from torchlibrosa.stft import ISTFT, STFT, magphase

from speechbrain_textsep.convert.clapsep_checkpoint import (
    CheckpointImportError,
    import_clapsep_checkpoint,
    load_clapsep_checkpoint_state,
)
from speechbrain_textsep.encoders.clap import (
    TINY_CLAP_CFG,
    CLAPQueryEncoder,
    build_tiny_tokenizer,
)
from speechbrain_textsep.encoders.laion import clap_module
from speechbrain_textsep.models.clapsep import CLAPSep, clapsep_condition

pytestmark = pytest.mark.integration

RANK = 4
DEC_DIM = 16
DEC_HEADS = [1, 2, 4, 8]  # finest level first, as their num_heads
D_ATTN = 32  # their MaskNet: nhead=8 hard-coded, ff = 4 * d_attn
N_MASKER = 2


# ------------------------------------------------- the authors' modules ---
class LoraLinear(nn.Linear):
    """loralib ``lora.Linear`` (merge_weights=False): ``lora_A`` [r, in],
    ``lora_B`` [out, r], scaling ``lora_alpha / r`` with lora_alpha = 1."""

    def __init__(self, linear, r):
        super().__init__(linear.in_features, linear.out_features)
        self.weight = linear.weight
        self.bias = linear.bias
        self.lora_A = nn.Parameter(torch.zeros(r, linear.in_features))
        self.lora_B = nn.Parameter(torch.zeros(linear.out_features, r))
        self.scaling = 1.0 / r

    def forward(self, x):
        out = F.linear(x, self.weight, self.bias)
        return out + (x @ self.lora_A.t() @ self.lora_B.t()) * self.scaling


class FiLMA(nn.Module):
    def __init__(self, dim_in, hidden_dim):
        super().__init__()
        self.beta = nn.Linear(dim_in, hidden_dim)
        self.gamma = nn.Linear(dim_in, hidden_dim)

    def forward(self, hidden_state, embed):
        embed = embed.unsqueeze(1)
        return self.gamma(embed) * hidden_state + self.beta(embed)


class SkipTrans(nn.Module):
    def __init__(self, in_features, out_features, embed_dim):
        super().__init__()
        self.skip_conv = FiLMA(embed_dim, out_features)
        self.feature_proj = nn.Linear(in_features, out_features)
        self.norm = nn.LayerNorm(out_features)

    def forward(self, skip, embed, x=None):
        out = self.skip_conv(self.feature_proj(skip), embed)
        return self.norm(out) if x is None else self.norm(out + x)


class PatchExpandA(nn.Module):
    """Their PatchExpand (chunk order x0, x2, x1, x3, then pixel shuffle)."""

    def __init__(self, input_resolution, dim):
        super().__init__()
        self.input_resolution = input_resolution
        self.expand = nn.Linear(dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(dim // 2)

    def forward(self, x):
        H, W = self.input_resolution
        x = self.expand(x)
        B, L, C = x.shape
        x = x.view(B, H, W, C)
        x0, x2, x1, x3 = x.chunk(4, dim=-1)
        x = torch.stack((x0, x1, x2, x3), dim=-1)
        x = torch.chunk(x, C // 4, dim=-2)
        x = torch.concat(x, dim=-1).squeeze(-2)
        x = x.permute(0, 3, 1, 2)  # b h w c -> b c h w
        x = F.pixel_shuffle(x, 2)
        x = x.permute(0, 2, 3, 1)  # b c h w -> b h w c
        return self.norm(x.reshape(B, -1, C // 4))


class BasicLayerDec(nn.Module):
    def __init__(self, dim, input_resolution, num_heads, upsample):
        super().__init__()
        block = clap_module().htsat.SwinTransformerBlock
        self.blocks = nn.ModuleList(
            [
                block(
                    dim=dim,
                    input_resolution=input_resolution,
                    num_heads=num_heads,
                    window_size=8,
                    shift_size=0,
                    mlp_ratio=4.0,
                    norm_before_mlp="ln",
                )
            ]
        )
        res = (input_resolution[0] // 2, input_resolution[1] // 2)
        self.downsample = PatchExpandA(res, dim * 2) if upsample else None

    def forward(self, x):
        if self.downsample is not None:
            x = self.downsample(x)
        for blk in self.blocks:
            x, attn = blk(x)
        return x, attn


class InversePatchEmbed(nn.Module):
    def __init__(self, embed_dim, grid):
        super().__init__()
        self.grid_size = grid
        self.proj = nn.ConvTranspose2d(embed_dim, 1, kernel_size=4, stride=4)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x):
        x = self.norm(x)
        x = x.transpose(1, 2).unflatten(2, self.grid_size).contiguous()
        return self.proj(x)


class HTSATDecoder(nn.Module):
    """Their HTSAT_Decoder (phase=False, conv=False) at a tiny size."""

    def __init__(self, lan_embed_dim, embed_dim, encoder_embed_dim):
        super().__init__()
        self.freq_ratio = 4
        self.inverse_patch_embed = InversePatchEmbed(embed_dim, (64, 64))
        self.layers = nn.ModuleList()
        self.skip = nn.ModuleList()
        for i in range(4):
            self.layers.append(
                BasicLayerDec(
                    embed_dim * 2**i, (64 // 2**i, 64 // 2**i), DEC_HEADS[i], i < 3
                )
            )
            self.skip.append(
                SkipTrans(encoder_embed_dim * 2**i, embed_dim * 2**i, lan_embed_dim)
            )
        self.layers = self.layers[::-1]
        self.skip = self.skip[::-1]
        d_spec = 64 * 8 + 1
        self.spec_norm = nn.BatchNorm2d(d_spec, momentum=0.01)
        layer = nn.TransformerEncoderLayer(
            d_model=D_ATTN,
            nhead=8,
            dim_feedforward=4 * D_ATTN,
            batch_first=True,
            dropout=0,
        )
        self.mask_net = nn.Sequential(
            nn.Linear(64 + d_spec, D_ATTN),
            nn.LayerNorm(D_ATTN),
            nn.TransformerEncoder(layer, num_layers=N_MASKER),
            nn.Linear(D_ATTN, d_spec),
        )
        self.film = SkipTrans(encoder_embed_dim * 8, embed_dim * 8, lan_embed_dim)

    def forward(self, hidden_state, skip_features, embed):
        skip_features = skip_features[::-1]
        spec = skip_features[-1]
        h = self.film(hidden_state, embed)
        for layer, f, skip in zip(self.layers, skip_features, self.skip):
            h = layer(h)[0]
            h = skip(skip=f, embed=embed, x=h)
        h = self.reshape_img2wav(self.inverse_patch_embed(h)).squeeze(1)
        h = h[:, : spec.size(2), :]
        spec = self.spec_norm(spec.transpose(1, 3)).transpose(1, 3).squeeze(1)
        h = torch.concat([spec, h], dim=-1)
        return torch.sigmoid(self.mask_net(h).unsqueeze(1))

    def reshape_img2wav(self, x):
        x = x.reshape(
            x.shape[0],
            x.shape[1],
            self.freq_ratio,
            x.shape[2] // self.freq_ratio,
            x.shape[3],
        )
        x = x.permute(0, 1, 3, 2, 4).contiguous()
        x = x.reshape(x.shape[0], x.shape[1], x.shape[2], x.shape[3] * x.shape[4])
        return x.permute(0, 1, 3, 2).contiguous()


class AuthorsCLAPSep(nn.Module):
    """Their LightningModule's modules and test-time forward (condition
    normalised as in their training ``cal_loss``)."""

    def __init__(self, clap, decoder):
        super().__init__()
        self.clap_model = clap
        self.audio_branch = copy.deepcopy(clap.audio_branch)
        for module in list(self.audio_branch.modules()):
            if type(module).__name__ == "WindowAttention":
                for child in ("qkv", "proj"):
                    setattr(module, child, LoraLinear(getattr(module, child), RANK))
        self.decoder_model = decoder
        kw = dict(
            n_fft=1024,
            hop_length=320,
            win_length=1024,
            window="hann",
            center=True,
            pad_mode="reflect",
            freeze_parameters=True,
        )
        self.stft = STFT(**kw)
        self.istft = ISTFT(**kw)
        self.features = []

        def pad(_, __, out):
            return F.pad(out, (0, 0, 0, 1024 - out.size(2)))

        def keep(_, __, out):
            self.features.append(out)

        def keep_first(_, __, out):
            self.features.append(out[0])

        self.audio_branch.spectrogram_extractor.register_forward_hook(pad)
        self.audio_branch.patch_embed.register_forward_hook(keep)
        for module in self.audio_branch.layers:
            module.register_forward_hook(keep_first)

    def forward(self, mixed, embed_pos, embed_neg):
        real, imag = self.stft(mixed)
        mag, cos, sin = magphase(real, imag)
        del self.features[:]
        self.features.append(mag)
        # their dataset resamples with torchaudio (AT.Resample(32000, 48000))
        resampled = torchaudio.functional.resample(mixed, 32000, 48000)
        self.audio_branch({"waveform": resampled})
        embed = F.normalize(torch.concat([embed_pos, embed_neg], dim=-1), dim=-1)
        mask = self.decoder_model(
            hidden_state=self.features[-1],
            skip_features=self.features[:-1],
            embed=embed,
        )
        mag_y = F.relu(mag * mask)
        del self.features[:]
        return self.istft(mag_y * cos, mag_y * sin, length=mixed.size(-1))


# ----------------------------------------------------------------- setup ---
@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clapsep_import")
    yield (*write_authors_checkpoint(folder), folder)


def write_authors_checkpoint(folder):
    """A tiny CLAPSep of the authors' layout with random trained weights,
    saved as their Lightning checkpoint; returns (CLAP encoder, authors'
    model, state_dict, checkpoint path)."""
    torch.manual_seed(0)
    tok = build_tiny_tokenizer(str(folder / "tok"), ["The sound of a dog"])
    encoder = CLAPQueryEncoder(None, model_cfg=TINY_CLAP_CFG, tokenizer=tok)
    decoder = HTSATDecoder(1024, DEC_DIM, TINY_CLAP_CFG["htsat"]["embed_dim"])
    authors = AuthorsCLAPSep(encoder.clap, decoder).eval()
    # Random trained weights everywhere (also LoRA B and BatchNorm statistics),
    # so that any mapping slip changes the output.
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in authors.decoder_model.state_dict().items():
            if tensor.is_floating_point() and "relative_position_index" not in name:
                noise = torch.randn(tensor.shape, generator=generator)
                if name.endswith("running_var"):
                    tensor.copy_(0.5 + noise.abs())
                elif name.endswith(("norm.weight", "norm1.weight", "norm2.weight")):
                    tensor.copy_(1 + 0.1 * noise)
                else:
                    tensor.copy_(0.2 * noise)
        for name, param in authors.audio_branch.named_parameters():
            if name.endswith(("lora_A", "lora_B")) or (
                name.endswith("bias") and ".attn." in name
            ):
                param.copy_(
                    param + 0.05 * torch.randn(param.shape, generator=generator)
                )
    state = {k: v.clone() for k, v in authors.state_dict().items()}
    ckpt = {
        "epoch": 149,
        "global_step": 231000,
        "pytorch-lightning_version": "2.1.3",
        "state_dict": state,
        "optimizer_states": [],
        "lr_schedulers": [{"factor": 0.3, "patience": 5}],
    }
    path = folder / "epoch=149-step=231000.ckpt"
    torch.save(ckpt, path)
    return encoder, authors, state, str(path)


def test_keys_are_the_authors(setup):
    _, _, state, _, _ = setup
    for key in (
        "clap_model.logit_scale_a",
        "audio_branch.layers.0.blocks.0.attn.qkv.lora_A",
        "audio_branch.layers.3.blocks.0.attn.proj.lora_B",
        "decoder_model.layers.1.downsample.expand.weight",
        "decoder_model.skip.0.skip_conv.gamma.weight",
        "decoder_model.film.feature_proj.weight",
        "decoder_model.mask_net.2.layers.1.linear1.weight",
        "decoder_model.spec_norm.running_var",
        "decoder_model.inverse_patch_embed.proj.weight",
        "stft.conv_real.weight",
    ):
        assert key in state, key
    assert "decoder_model.layers.0.downsample.expand.weight" not in state


def test_import_reproduces_the_authors_forward(setup):
    encoder, authors, _, path, folder = setup
    report = import_clapsep_checkpoint(path, folder / "out", query_encoder=encoder)
    config = report["config"]
    assert config["decoder_dim"] == DEC_DIM
    assert config["decoder_heads"] == DEC_HEADS
    assert config["lora_rank"] == RANK
    assert config["masknet_layers"] == N_MASKER
    assert report["lightning"]["global_step"] == 231000
    assert report["frozen_verified"] and report["n_frozen_checked"] > 0

    trained = torch.load(report["checkpoint"], weights_only=True)
    model = CLAPSep(encoder.audio_branch, pad_seconds=None, **config).eval()
    model.load_trainable_state_dict(trained)

    mixture = 0.3 * torch.randn(2, 32000, generator=torch.Generator().manual_seed(2))
    pos = F.normalize(torch.randn(2, 512), dim=-1)
    neg = F.normalize(torch.randn(2, 512), dim=-1)
    with torch.no_grad():
        ref = authors(mixture, pos, neg)
        ours = model(mixture, clapsep_condition(pos, neg))
        ref_pos = authors(mixture, pos, torch.zeros_like(neg))
        ours_pos = model(mixture, clapsep_condition(pos, None))
    assert ref.shape == ours.shape == (2, 32000)
    assert (ref - ours).abs().max() < 1e-5  # measured: 3e-7
    assert (ref_pos - ours_pos).abs().max() < 1e-5
    # the negative query changes the output by far more than the mismatch
    assert (ref - ref_pos).abs().max() > 5e-4


def test_weights_only_refusal_and_trust(setup, tmp_path):
    encoder, _, state, _, _ = setup
    path = tmp_path / "with_hparams.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": argparse.Namespace(a=1)}, path)
    with pytest.raises(CheckpointImportError, match="trust_checkpoint=True"):
        import_clapsep_checkpoint(path, tmp_path / "out", query_encoder=encoder)
    report = import_clapsep_checkpoint(
        path, tmp_path / "out", query_encoder=encoder, trust_checkpoint=True
    )
    assert os.path.isfile(report["checkpoint"])


def test_errors_name_the_keys(setup, tmp_path):
    encoder, _, state, _, _ = setup
    bad = dict(state)
    bad["decoder_model.phase_net.0.weight"] = torch.zeros(1)
    torch.save({"state_dict": bad}, tmp_path / "a.ckpt")
    with pytest.raises(CheckpointImportError, match="phase_net"):
        import_clapsep_checkpoint(tmp_path / "a.ckpt", tmp_path, query_encoder=encoder)

    bad = {k: v for k, v in state.items() if "skip.2.norm.bias" not in k}
    torch.save({"state_dict": bad}, tmp_path / "b.ckpt")
    with pytest.raises(CheckpointImportError, match=r"decoder\.skips\.1\.norm\.bias"):
        import_clapsep_checkpoint(tmp_path / "b.ckpt", tmp_path, query_encoder=encoder)

    bad = dict(state)
    key = "audio_branch.layers.0.blocks.0.mlp.fc1.weight"
    bad[key] = bad[key] + 1.0
    torch.save({"state_dict": bad}, tmp_path / "c.ckpt")
    with pytest.raises(CheckpointImportError, match="layers.0.blocks.0.mlp.fc1"):
        import_clapsep_checkpoint(tmp_path / "c.ckpt", tmp_path, query_encoder=encoder)
    import_clapsep_checkpoint(
        tmp_path / "c.ckpt", tmp_path, query_encoder=encoder, verify_frozen=False
    )


def test_trainable_subset_checkpoint(setup, tmp_path):
    """Their commented-out on_save_checkpoint filter: a plain trained subset."""
    encoder, _, state, _, _ = setup
    subset = {
        k: v
        for k, v in state.items()
        if any(
            s in k for s in ("lora", "attn.qkv.bias", "attn.proj.bias", "decoder_model")
        )
    }
    torch.save(subset, tmp_path / "best_model.ckpt")
    loaded, meta = load_clapsep_checkpoint_state(tmp_path / "best_model.ckpt")
    assert meta == {} and len(loaded) == len(subset)
    report = import_clapsep_checkpoint(
        tmp_path / "best_model.ckpt", tmp_path / "out", query_encoder=encoder
    )
    assert not report["frozen_verified"]
    full = torch.load(report["checkpoint"], weights_only=True)
    assert sorted(full) == sorted(
        CLAPSep(encoder.audio_branch, **report["config"]).trained_keys()
    )


def test_textsep_import_and_separate_with_negative_queries(setup, tmp_path):
    """`textsep import clapsep` writes a folder that textsep separates with."""
    import subprocess
    import sys

    import soundfile as sf

    from speechbrain_textsep.inference import CLAPSepSeparator, Query

    encoder, _, _, path, _ = setup
    clap_folder = str(tmp_path / "clap")
    encoder.save_pretrained_dir(clap_folder)
    textsep = os.path.join(os.path.dirname(sys.executable), "textsep")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    out = str(tmp_path / "model")
    result = subprocess.run(
        [textsep, "import", "clapsep", "--checkpoint", path]
        + ["--clap-source", clap_folder, "--out", out],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    separator = CLAPSepSeparator.from_hparams(source=out)
    mixture = 0.3 * torch.randn(1, 40000, generator=torch.Generator().manual_seed(4))
    song = str(tmp_path / "song.wav")
    sf.write(song, mixture[0].numpy(), 32000, subtype="FLOAT")
    result = subprocess.run(
        [textsep, "separate", song, "--model", out, "--query", "a dog"]
        + ["--negative", "speech", "--audio-query", song]
        + ["--out", str(tmp_path / "sep"), "--model-rate"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(os.listdir(tmp_path / "sep")) == [
        "song_a_dog_minus_speech.wav",
        "song_audio_song_minus_speech.wav",
    ]
    written, _ = sf.read(str(tmp_path / "sep" / "song_a_dog_minus_speech.wav"))
    expected = separator.separate_batch(mixture, Query("a dog", negative_text="speech"))
    assert torch.allclose(torch.from_numpy(written).float(), expected[0], atol=1e-5)
