"""Model folders of weakly-supervised bi-modal separation: written by the one
writer (directly and from a recipe run's checkpoint), loaded by
``load_separator`` without ``trust_remote_code`` with the same outputs as
the model in memory, used by ``textsep separate``, and refused when they name
a class outside the allow-list."""

import os
import shutil
import subprocess
import sys

import pytest
import soundfile as sf
import torch
import yaml
from torch import nn

from speechbrain_textsep.encoders.clap import (
    TINY_CLAP_CFG,
    CLAPQueryEncoder,
    build_tiny_tokenizer,
)
from speechbrain_textsep.inference import Query, load_separator
from speechbrain_textsep.inference.allowlist import UntrustedModelError
from speechbrain_textsep.inference.audio import read_audio
from speechbrain_textsep.inference.model_folder import write_model_folder
from speechbrain_textsep.inference.run_export import export_recipe_run
from speechbrain_textsep.inference.weaksup import WeakSupQuerySeparator
from speechbrain_textsep.models.weaksup import (
    WeakSupMaskNet,
    WeakSupSeparator,
    pack_text_condition,
    text_conditions,
)
from speechbrain_textsep.processing.spectral import SpectralMasking

pytestmark = pytest.mark.integration

SIZE = {"n_maps": 4, "ngf": 4, "levels": 3, "attn_levels": 2, "heads": 2}
STFT = {"n_fft": 126, "hop_length": 32, "win_length": 126}
N_TOKENS = 16
TEXTS = ["The sound of violin", "The sound of a dog barking", "violin", "dog"]
TEXTSEP = os.path.join(os.path.dirname(sys.executable), "textsep")


def random_net(token_dim):
    """A tiny mask network with non-vanishing weights and BatchNorm stats
    (so that a wrong or missing weight changes the outputs)."""
    torch.manual_seed(0)
    net = WeakSupMaskNet(**SIZE, token_dim=token_dim)
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            type(module).reset_parameters(module)
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(0.0, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    return net.eval()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The CLAP, the network in memory and its model folder."""
    root = tmp_path_factory.mktemp("weaksup")
    torch.manual_seed(0)
    clap = CLAPQueryEncoder(
        None,
        model_cfg=TINY_CLAP_CFG,
        tokenizer=build_tiny_tokenizer(root / "tokenizer", TEXTS),
    )
    net = random_net(clap.token_dim)
    values = {
        **SIZE,
        **STFT,
        "n_tokens": N_TOKENS,
        "clap_source": "clap",
        "clap_in_folder": True,
    }
    folder = write_model_folder(
        root / "model",
        "weaksup",
        values,
        {"mask_net": net.state_dict()},
        write_files=lambda out: clap.save_pretrained_dir(os.path.join(out, "clap")),
    )
    return clap, net, folder


def in_memory(clap, net, mixture, texts):
    """Estimates ``[B, L]`` of the network in memory, one text per mixture."""
    spectral = SpectralMasking(
        **STFT, n_warped=None, frame_multiple=2 ** SIZE["levels"], pad_mode="constant"
    )
    tokens, mask = clap.encode_text_tokens(texts, max_length=N_TOKENS)
    condition = pack_text_condition(clap.encode_text(texts), tokens, mask)
    assert torch.equal(condition, text_conditions(clap, texts, N_TOKENS))
    with torch.no_grad():
        return WeakSupSeparator(spectral, net)(mixture, condition[:, None])[:, 0]


def test_folder_loads_untrusted_with_identical_outputs(model):
    clap, net, folder = model
    assert sorted(os.listdir(folder)) == [
        "README.md", "clap", "hyperparams.yaml", "mask_net.ckpt"
    ]  # fmt: skip
    with open(os.path.join(folder, "README.md")) as f:
        card = f.read()
    assert "WeakSupQuerySeparator" in card and "cross-attention" in card
    separator = load_separator(folder)  # trust_remote_code=False
    assert isinstance(separator, WeakSupQuerySeparator)
    mixture = torch.randn(2, 4000)
    texts = ["The sound of violin", "dog"]
    expected = in_memory(clap, net, mixture, texts)
    estimates = separator.separate_batch(mixture, texts)
    assert estimates.shape == (2, 4000)
    assert torch.allclose(estimates, expected, atol=1e-6)
    # the text changes the estimate
    other = separator.separate_batch(mixture, texts[::-1])
    assert (other - estimates).abs().max() > 1e-3 * estimates.abs().max()


def test_only_text_queries(model):
    separator = load_separator(model[2])
    mixture = torch.randn(1, 2000)
    with pytest.raises(ValueError, match="does not take audio queries"):
        separator.separate_batch(mixture, Query(audio=[torch.randn(1600)]))
    with pytest.raises(ValueError, match="does not take negative queries"):
        separator.separate_batch(mixture, Query("violin", negative_text="dog"))
    # long inputs go in windows of a length the U-Net takes unpadded
    separator.hparams.window_seconds, separator.hparams.overlap_seconds = 0.1, 0.02
    window = separator.window_samples()
    assert window >= 1600 and (1 + window // STFT["hop_length"]) % 8 == 0
    long = separator.separate_batch(torch.randn(1, 5000), "violin")
    assert long.shape == (1, 5000) and torch.isfinite(long).all()


def test_textsep_separate_on_the_folder(model, tmp_path):
    folder = model[2]
    wav = tmp_path / "mix.wav"
    torch.manual_seed(1)
    sf.write(str(wav), (0.1 * torch.randn(6000)).numpy(), 16000, subtype="FLOAT")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "out"
    result = subprocess.run(
        [TEXTSEP, "separate", str(wav), "--model", str(folder),
         "--query", "violin", "--out", str(out)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.listdir(out) == ["mix_violin.wav"]
    written, rate = read_audio(str(out / "mix_violin.wav"))
    expected = load_separator(folder).separate_file(str(wav), "violin")
    assert rate == 16000 and written.shape == (1, 6000)
    assert torch.allclose(written[0], expected, atol=1e-6)


@pytest.mark.parametrize(
    "name", ["models.weaksup.MaskViews", "models.weaksup.pack_text_condition"]
)
def test_a_class_outside_the_allow_list_is_refused(model, tmp_path, name):
    """A folder naming anything else than the allow-listed classes (even
    from the same module) is refused before anything is built."""
    folder = shutil.copytree(model[2], tmp_path / "evil")
    path = folder / "hyperparams.yaml"
    text = path.read_text()
    allowed = "!new:speechbrain_textsep.models.weaksup.WeakSupSeparator"
    assert allowed in text
    marker = tmp_path / "MARKER"
    text = text.replace(allowed, f"!new:speechbrain_textsep.{name}")
    text += f"evil: !apply:os.system ['touch {marker}']\n"
    path.write_text(text)
    for load in (load_separator, WeakSupQuerySeparator.from_hparams):
        with pytest.raises(UntrustedModelError, match="not on the allow-list") as e:
            load(str(folder))
        assert f"speechbrain_textsep.{name} (line" in str(e.value)
        assert "os.system" in str(e.value)
    assert not marker.exists()


def recipe_run(root, clap_folder, state, **changes):
    """A recipe output folder of a weaksup run: plain hparams, one checkpoint."""
    hparams = {
        "model_kind": "weaksup",
        "experiment": "weaksup_tiny",
        "seed": 1,
        "number_of_epochs": 1,
        "batch_size": 2,
        "train_csv": "none.csv",
        "sample_rate": 16000,
        **STFT,
        "pad_mode": "constant",
        "stft_dtype": "float32",
        **SIZE,
        "res_layers": 1,
        "mlp_ratio": 2.0,
        "n_tokens": N_TOKENS,
        "text_template": "The sound of {}",
        "clap_source": str(clap_folder),
        "clap_model_cfg": {},
        "clap_tokenizer": None,
        **changes,
    }
    checkpoint = root / "save" / "CKPT+2024-01-01+00-00-00+00"
    checkpoint.mkdir(parents=True)
    (root / "hyperparams.yaml").write_text(yaml.safe_dump(hparams))
    (checkpoint / "CKPT.yaml").write_text("sdri_plain: 1.0\nunixtime: 0\n")
    torch.save(state, checkpoint / "mask_net.ckpt")
    return root


def test_export_of_a_recipe_run(model, tmp_path):
    """``textsep export`` of a run whose CLAP is a local folder: the CLAP is
    copied into the model folder, the sizes and ``text_template`` come from
    the recipe, and the folder gives the model's outputs."""
    clap, net, folder = model
    clap_folder = clap.save_pretrained_dir(tmp_path / "recipe_clap")
    run = recipe_run(tmp_path / "run", clap_folder, net.state_dict())
    export_recipe_run(str(run), str(tmp_path / "exported"))
    exported = tmp_path / "exported"
    assert {"clap", "mask_net.ckpt", "hyperparams.yaml"} <= set(os.listdir(exported))
    separator = load_separator(str(exported))
    assert separator.hparams.text_template == "The sound of {}"
    mixture = torch.randn(2, 3000)
    expected = in_memory(clap, net, mixture, ["The sound of violin", "dog"])
    estimates = separator.separate_batch(
        mixture, ["violin", Query("dog", prompt_ensemble=False)]
    )
    assert torch.allclose(estimates, expected, atol=1e-6)
    broken = recipe_run(tmp_path / "broken", clap_folder, {}, n_tokens=None)
    hparams = yaml.safe_load((broken / "hyperparams.yaml").read_text())
    del hparams["n_tokens"]
    (broken / "hyperparams.yaml").write_text(yaml.safe_dump(hparams))
    with pytest.raises(ValueError, match=r"lacks \['n_tokens'\] for a weaksup"):
        export_recipe_run(str(broken), str(tmp_path / "never"))
