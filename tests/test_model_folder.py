"""The one model-folder writer: every family, its card, ``textsep export``.

Tiny models are built here and saved as a recipe would (a plain
``hyperparams.yaml`` and a SpeechBrain checkpoint in ``save/``); each folder
the writer produces must load without ``trust_remote_code`` and reload to
identical outputs.
"""

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_textsep.encoders.bert import BERTQueryEncoder, save_tiny_bert
from speechbrain_textsep.encoders.clap import (
    TINY_CLAP_CFG,
    CLAPQueryEncoder,
    save_local_clap,
)
from speechbrain_textsep.encoders.clip import TINY_CLIP_CFG, CLIPQueryEncoder
from speechbrain_textsep.encoders.labels import LabelQueryEncoder
from speechbrain_textsep.evaluation.report import summarize, write_summary
from speechbrain_textsep.inference import CLAPSepSeparator, Query, QuerySeparator
from speechbrain_textsep.inference.model_folder import (
    load_model_folder,
    read_plain_hparams,
    write_model_folder,
)
from speechbrain_textsep.inference.run_export import export_recipe_run
from speechbrain_textsep.models.clapsep import CLAPSep, clapsep_condition
from speechbrain_textsep.models.clipsep import CLIPSep
from speechbrain_textsep.models.unet import AudioUNet

pytestmark = pytest.mark.integration

TEXTSEP = os.path.join(os.path.dirname(sys.executable), "textsep")
LABELS = ["flute", "tuba", "xylophone"]
#: Recipe keys of the tiny CLIPSep-family models (the U-Net and front end).
UNET = {
    "sample_rate": 16000,
    "n_fft": 1024,
    "hop_length": 256,
    "win_length": 1024,
    "n_warped": 256,
    "pad_mode": "constant",
    "warp_grid": "exact",
    "stft_dtype": "float32",
    "levels": 3,
    "ngf": 4,
    "n_maps": 4,
    "query_dim": 32,
}
#: Recipe keys of a tiny CLAPSep on the tiny CLAP.
CLAPSEP = {
    "sample_rate": 32000,
    "condition_dim": 1024,
    "n_fft": 1024,
    "hop_length": 320,
    "pad_seconds": None,
    "lora_rank": 4,
    "lora_alpha": 1.0,
    "decoder_dim": 16,
    "decoder_depths": [1, 1, 1, 1],
    "decoder_heads": [1, 2, 4, 8],
    "decoder_window": 8,
    "mlp_ratio": 4.0,
    "drop_path_rate": 0.0,
    "masknet_dim": 32,
    "masknet_heads": 2,
    "masknet_layers": 1,
    "masknet_ff": 64,
}


def textsep(*args):
    """Runs the installed console script; returns (exit code, stdout, stderr)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [TEXTSEP, *map(str, args)], capture_output=True, text=True, env=env
    )
    return result.returncode, result.stdout, result.stderr


def randomized(module, seed):
    """The module with random weights and BatchNorm statistics (not init ones)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if torch.is_tensor(tensor) and tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=generator)
                tensor.copy_(0.5 + noise.abs() if "running_var" in name else noise)
    return module.eval()


def summary_doc(folder, kind, metric):
    """A test summary in the result schema (one test set, one query kind)."""
    stats = summarize([{metric: 1.0}, {metric: 3.0}, {metric: float("nan")}])
    path = os.path.join(folder, f"{kind}_summary.json")
    return write_summary(path, kind, f"tiny_{kind}", {"test": {"text": stats}})


def write_run(folder, hparams, objects, meta, summary=None):
    """A recipe output folder: plain hyperparameters and one checkpoint."""
    os.makedirs(folder, exist_ok=True)
    recipe = {
        "experiment": f"tiny_{hparams['model_kind']}",
        "seed": 1234,
        "number_of_epochs": 2,
        "batch_size": 4,
        "train_csv": os.path.join(folder, "train.csv"),
        **hparams,
    }
    with open(os.path.join(folder, "train.csv"), "w") as f:
        f.write("ID,audio,label,duration\n")
        f.writelines(
            f"{label}_{i},{label}.wav,{label},2.0\n"
            for label in LABELS
            for i in range(2)
        )
    with open(os.path.join(folder, "hyperparams.yaml"), "w") as f:
        yaml.safe_dump(recipe, f)
        # an object line, as in a saved recipe (not built by the export)
        f.write("epoch_counter: !new:speechbrain.utils.epoch_loop.EpochCounter\n")
        f.write("    limit: 2\n")
    Checkpointer(os.path.join(folder, "save"), objects).save_checkpoint(meta=meta)
    if summary is not None:
        with open(os.path.join(folder, "test_summary.json"), "w") as f:
            json.dump(summary, f)
    return folder


def clipsep_family_run(tmp_path, kind, bert=None):
    """A run folder of a tiny CLIPSep, LabelSep or BERTSep, and its modules."""
    torch.manual_seed(0)
    mask_net = randomized(CLIPSep(AudioUNet(4, 4, 3), 32, 4), seed=1)
    hparams = {"model_kind": kind, **UNET, "eval_prompts": ["a photo of {}"]}
    objects = {"mask_net": mask_net}
    if kind == "clipsep":
        encoder = CLIPQueryEncoder(model_cfg=TINY_CLIP_CFG, pretrained=None)
        hparams.update(
            clip_model="ViT-B-32", clip_pretrained=None, clip_model_cfg=TINY_CLIP_CFG
        )
        objects["query_encoder"] = encoder
    elif kind == "labelsep":
        encoder = randomized(LabelQueryEncoder(LABELS, embedding_dim=32), seed=2)
        hparams["eval_prompts"] = ["{}"]
        objects["query_encoder"] = encoder
    else:
        encoder = BERTQueryEncoder(bert, save_path=str(tmp_path / "bert_cache"))
        hparams.update(bert_source=bert, bert_pooling="mean", eval_prompts=["{}"])
    run = write_run(
        str(tmp_path / f"{kind}_run"),
        hparams,
        objects,
        {"sdri_plain": 4.25},
        summary_doc(tmp_path, kind, "sdri_plain"),
    )
    return run, mask_net, encoder


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    words = [*LABELS, "a photo of"]
    return save_tiny_bert(str(tmp_path_factory.mktemp("bert")), words)


@pytest.fixture(scope="module")
def clap_folder(tmp_path_factory):
    captions = [f"The sound of {label}" for label in LABELS]
    return str(
        save_local_clap(TINY_CLAP_CFG, tmp_path_factory.mktemp("clap"), captions)
    )


@pytest.mark.parametrize("kind", ["clipsep", "labelsep", "bertsep"])
def test_clipsep_family_folders(kind, bert_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written outside the folders
    run, mask_net, encoder = clipsep_family_run(tmp_path, kind, bert_folder)
    out = str(tmp_path / "model")
    card = export_recipe_run(run, out)
    names = {"README.md", "hyperparams.yaml", "mask_net.ckpt", "test_summary.json"}
    # the trained query encoder, or the (frozen, local) BERT folder, copied:
    # every path a folder names is inside it
    names.add("bert" if kind == "bertsep" else "query_encoder.ckpt")
    assert set(os.listdir(out)) == names

    # The hyperparameters are the template's, resolved: no reference left.
    text = open(os.path.join(out, "hyperparams.yaml")).read()
    assert "!ref" not in text
    values = read_plain_hparams(os.path.join(out, "hyperparams.yaml"))
    assert values["model_kind"] == kind and values["interface"] == "QuerySeparator"
    assert (values["levels"], values["ngf"], values["query_dim"]) == (3, 4, 32)
    if kind == "labelsep":
        assert values["labels"] == LABELS
    if kind == "bertsep":
        assert values["bert_source"] == "bert"
    # Loads without trust_remote_code, twice, to identical outputs; the
    # weights are the trained ones.
    first = load_model_folder(out, savedir=str(tmp_path / "a"))
    second = QuerySeparator.from_hparams(source=out, savedir=str(tmp_path / "b"))
    assert isinstance(first, QuerySeparator)
    for key, value in mask_net.state_dict().items():
        assert torch.equal(first.mods.separator.mask_net.state_dict()[key], value)
    mixture = torch.randn(2, 12000, generator=torch.Generator().manual_seed(3)) * 0.1
    out1 = first.separate_batch(mixture, ["flute", "tuba"])
    out2 = second.separate_batch(mixture, ["flute", "tuba"])
    assert out1.shape == mixture.shape and torch.equal(out1, out2)
    # A trusted load reads the same files (the BERT from the folder, not
    # from the working directory).
    trusted = load_model_folder(
        out, savedir=str(tmp_path / "c"), trust_remote_code=True
    )
    assert torch.equal(trusted.separate_batch(mixture, ["flute", "tuba"]), out1)
    with torch.no_grad():
        queries = encoder.encode_text(
            ["flute", "tuba"], ensemble=values["text_prompts"]
        )
        reference = first.mods.separator(mixture, queries[:, None])[:, 0]
    assert (out1 - reference).abs().max() < 1e-4, (out1 - reference).abs().max()

    # The model card: family, training data, figures and what they measure.
    card = open(card).read()
    family = {"clipsep": "CLIPSep", "labelsep": "LabelSep", "bertsep": "BERTSep"}
    assert f"A {family[kind]} separator" in card
    assert "6 single-source clips of 3 classes (flute, tuba, xylophone)" in card
    assert "best validation `sdri_plain` (4.25;" in card
    assert "| sdri_plain | 2.00 | 1.00 | 2.00 | 2 |" in card
    assert "- `sdri_plain`: plain SDR improvement over the mixture" in card
    assert json.load(open(os.path.join(out, "test_summary.json")))["model_kind"] == kind


def test_writer_refuses_what_it_does_not_know(tmp_path):
    net = CLIPSep(AudioUNet(4, 4, 3), 32, 4)
    with pytest.raises(KeyError):  # not a key of the template
        write_model_folder(str(tmp_path), "clipsep", {"levelz": 3}, {"mask_net": {}})
    with pytest.raises(ValueError, match="takes no queries"):
        write_model_folder(str(tmp_path), "pit", {}, {"mask_net": net.state_dict()})
    with pytest.raises(ValueError, match="not in the result schema"):
        write_model_folder(
            str(tmp_path / "x"),
            "clipsep",
            {},
            {"mask_net": net.state_dict()},
            summary={"sdri": {"mean": 1.0}},
        )


def clapsep_run(tmp_path, clap_folder):
    """A run folder of a tiny CLAPSep on the tiny CLAP folder, and its parts."""
    torch.manual_seed(0)
    clap = CLAPQueryEncoder(clap_folder)
    model = CLAPSep(clap.audio_branch, **CLAPSEP)
    with torch.no_grad():  # trained-looking weights: far from the LoRA init
        generator = torch.Generator().manual_seed(5)
        for value in model.trainable_state_dict().values():
            if value.is_floating_point():
                value.add_(0.05 * torch.randn(value.shape, generator=generator))
    model.eval()
    hparams = {
        "model_kind": "clapsep",
        **CLAPSEP,
        "clap_source": clap_folder,
        "clap_model_cfg": {},
        "clap_tokenizer": None,
    }
    summary = summary_doc(tmp_path, "clapsep", "si_sdri")
    run = write_run(
        str(tmp_path / "clapsep_run"),
        hparams,
        {"clapsep": model},
        {"si_sdri": 2.5},
        summary,
    )
    return run, clap, model


def test_textsep_export_of_a_clapsep_run(clap_folder, tmp_path):
    run, clap, model = clapsep_run(tmp_path, clap_folder)
    out = tmp_path / "model"
    code, stdout, stderr = textsep("export", run, "--out", out)
    assert code == 0, stderr[-3000:]
    assert stdout.split() == [str(out), str(out / "README.md")]
    # The CLAP, not fetchable by name, is in clap/; the folder names it
    # relative to itself, resolved by the loader.
    assert {"clap", "clapsep.ckpt", "hyperparams.yaml", "README.md"} <= set(
        os.listdir(out)
    )
    values = read_plain_hparams(out / "hyperparams.yaml")
    assert (values["clap_source"], values["clap_in_folder"]) == ("clap", True)
    assert "!ref" not in (out / "hyperparams.yaml").read_text()
    first = load_model_folder(str(out))
    second = CLAPSepSeparator.from_hparams(source=str(out))
    assert isinstance(first, CLAPSepSeparator)
    mixture = torch.randn(1, 32000, generator=torch.Generator().manual_seed(6)) * 0.1
    query = Query("The sound of tuba", negative_text="The sound of flute")
    out1 = first.separate_batch(mixture, query)
    assert torch.equal(out1, second.separate_batch(mixture, query))
    positive, negative = clap.encode_text(["The sound of tuba", "The sound of flute"])
    with torch.no_grad():
        expected = model(mixture, clapsep_condition(positive[None], negative[None]))
    assert torch.allclose(out1, expected, atol=1e-5)
    card = (out / "README.md").read_text()
    assert "A CLAPSep separator" in card and "the CLAP in `clap/`" in card
    assert "best validation `si_sdri` (2.5;" in card
    assert "- `si_sdri`: SI-SDR improvement over the mixture" in card


def test_textsep_export_of_a_clap_run(clap_folder, tmp_path):
    torch.manual_seed(0)
    trained = randomized(CLAPQueryEncoder(clap_folder).clap, seed=7)
    hparams = {
        "model_kind": "clap",
        "clap_model_cfg": TINY_CLAP_CFG,
        "tokenizer_folder": clap_folder,
    }
    summary = summary_doc(tmp_path, "clap", "a2t_top1")
    run = write_run(
        str(tmp_path / "clap_run"),
        hparams,
        {"clap": trained},
        {"retrieval": 0.75},
        summary,
    )
    out = tmp_path / "model"
    code, stdout, stderr = textsep("export", run, "--out", out)
    assert code == 0, stderr[-3000:]
    assert {
        "clap_config.json",
        "clap_model.pt",
        "README.md",
        "test_summary.json",
    } <= set(os.listdir(out))
    encoder = load_model_folder(str(out))
    assert isinstance(encoder, CLAPQueryEncoder)
    for key, value in trained.state_dict().items():
        assert torch.equal(encoder.clap.state_dict()[key], value), key
    texts = ["The sound of flute", "The sound of tuba"]
    again = CLAPQueryEncoder(out)
    assert torch.equal(encoder.encode_text(texts), again.encode_text(texts))
    audio = torch.randn(2, 16000, generator=torch.Generator().manual_seed(8)) * 0.1
    assert torch.equal(
        encoder.encode_audio(audio, sample_rate=16000),
        again.encode_audio(audio, sample_rate=16000),
    )
    card = (out / "README.md").read_text()
    assert "A LAION-CLAP" in card and "CLAPQueryEncoder(<this folder>)" in card
    assert "| a2t_top1 | 2.00 |" in card


def test_textsep_export_of_a_pit_run_says_why_not(tmp_path):
    run = write_run(
        str(tmp_path / "pit_run"),
        {"model_kind": "pit", **UNET},
        {"mask_net": torch.nn.Linear(2, 2)},
        {"sdri_plain": 1.0},
    )
    code, _, stderr = textsep("export", run, "--out", tmp_path / "model")
    assert code == 2 and "Traceback" not in stderr
    assert "a pit model takes no queries" in stderr and "evaluate" in stderr
    assert not (tmp_path / "model").exists()
