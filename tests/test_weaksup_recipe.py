"""The SynthMUSIC weaksup recipe (its four arms) and the weakly-supervised Brain."""

import copy
import json
import os

import pytest
import speechbrain as sb
import torch
import yaml
from recipe_runs import ENV, run_script  # noqa: F401  (ENV: offline hub)

from speechbrain_textsep.data.synthmusic import prepare_synthmusic
from speechbrain_textsep.data.weaksup import WeakSupTrainSet, collate_items
from speechbrain_textsep.encoders.clap import CLAPQueryEncoder, save_local_clap
from speechbrain_textsep.encoders.clap_config import TINY_CLAP_CFG
from speechbrain_textsep.inference import load_separator
from speechbrain_textsep.models.separator import analyze
from speechbrain_textsep.models.weaksup import WeakSupMaskNet, WeakSupSeparator
from speechbrain_textsep.processing.spectral import SpectralMasking
from speechbrain_textsep.training.weaksup_brain import TextConditions, WeakSupBrain
from speechbrain_textsep.training.weaksup_losses import (
    contrastive_loss,
    crl_loss,
    url_loss,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(ROOT, "recipes", "SynthMUSIC", "weaksup")
ARMS = ["weaksup_tiny", "mixsep_3src_tiny", "semisup_tiny", "supervised_tiny"]
#: The keys in which the four arms may differ.
ARM_KEYS = {
    "experiment",
    "rec_weight",
    "crl_weight",
    "cnt_weight",
    "supervised_weight",
    "weak_weight",
    "single_source_fraction",
    "single_source_share",
}
CLASSES = ["flute", "tuba", "xylophone", "cello", "trumpet", "violin"]
DATA = {
    "classes": "[" + ", ".join(CLASSES) + "]",
    "n_train_per_class": 3,
    "n_valid_per_class": 1,
    "n_test_per_class": 1,
    "n_test_mixtures": 2,
    "clip_seconds": 0.5,
}
TINY = {
    "batch_size": 4,
    "segment_samples": 4064,
    "ngf": 4,
    "n_maps": 4,
    "max_test_mixtures": 2,
    # 1 of the 3 clips of each class: semisup then has mixtures of 2 clips
    "single_source_fraction": 0.34,
}
#: A CLAP whose HTSAT takes 2 s (as the recipe's), random weights.
CLAP_CFG = copy.deepcopy(TINY_CLAP_CFG)
CLAP_CFG["audio_cfg"].update(clip_samples=96000, hop_size=960, mel_bins=32)
CLAP_CFG["htsat"].update(spec_size=64)


@pytest.fixture(scope="module")
def clap_folder(tmp_path_factory):
    texts = [f"The sound of {c}" for c in CLASSES] + [
        "The sound mixture of flute, tuba and cello"
    ]
    return str(save_local_clap(CLAP_CFG, tmp_path_factory.mktemp("clap"), texts))


def read_arm(name):
    with open(os.path.join(RECIPE, "hparams", f"{name}.yaml")) as f:
        text = f.read()
    # plain view of the keys (tags dropped)
    return yaml.safe_load(
        "\n".join(
            line
            for line in text.splitlines()
            if not line.startswith((" ", "\t")) and "!" not in line
        )
    )


@pytest.mark.unit
def test_the_four_arms_share_data_model_and_budget():
    base = read_arm("weaksup_tiny")
    for arm in ARMS[1:]:
        values = read_arm(arm)
        assert values.keys() == base.keys()
        differ = {key for key in base if base[key] != values[key]}
        assert differ <= ARM_KEYS, f"{arm} differs in {differ - ARM_KEYS}"
    assert read_arm("mixsep_3src_tiny")["cnt_weight"] == 0
    assert read_arm("semisup_tiny")["single_source_fraction"] == 0.05
    assert read_arm("supervised_tiny")["single_source_share"] == 1.0


@pytest.mark.recipe
@pytest.mark.parametrize("arm", ARMS)
def test_each_arm_runs_in_debug_and_exports_a_loadable_model(
    arm, clap_folder, tmp_path_factory
):
    data = str(tmp_path_factory.getbasetemp() / "weaksup_data")
    output = tmp_path_factory.mktemp(arm)
    args = [
        os.path.join(RECIPE, "hparams", f"{arm}.yaml"),
        "--data_folder",
        data,
        "--clap_folder",
        clap_folder,
        "--output_folder",
        output,
        "--debug",
    ]
    overrides = {**DATA, **TINY}
    if arm not in ("semisup_tiny",):
        overrides.pop("single_source_fraction")
    for key, value in overrides.items():
        args += [f"--{key}", str(value)]
    run_script(os.path.join(RECIPE, "train.py"), args, RECIPE)
    with open(output / "test_summary.json") as f:
        summary = json.load(f)
    metrics = summary["results"]["test_mixtures"]["text"]
    assert summary["model_kind"] == "weaksup"
    assert metrics["sdri_plain"]["count"] == 4  # 2 mixtures, both sources
    assert "si_sdri" in metrics
    log = (output / "train_log.txt").read_text()
    assert "valid sdri_plain" in log
    if arm == "supervised_tiny":
        assert "weak_items: 0" in log and "train url" not in log
    if arm == "mixsep_3src_tiny":
        assert "train crl" not in log and "train cnt" not in log
    separator = load_separator(str(output / "model"))
    mixture = torch.randn(1, 8000)
    assert separator.separate_batch(mixture, ["flute"]).shape == (1, 8000)


def tiny_brain(clap_folder, **weights):
    """A WeakSupBrain of a tiny separator and a random CLAP, in process."""
    clap = CLAPQueryEncoder(clap_folder)
    spectral = SpectralMasking(
        n_fft=126, hop_length=64, win_length=126, n_warped=None, frame_multiple=8
    )
    net = WeakSupMaskNet(
        n_maps=4,
        ngf=4,
        levels=3,
        attn_levels=1,
        heads=2,
        query_dim=clap.embedding_dim,
        token_dim=clap.token_dim,
    )
    hparams = {
        "rec_weight": 5.0,
        "crl_weight": 5.0,
        "cnt_weight": 0.5,
        "supervised_weight": 3.0,
        "weak_weight": 2.0,
        "contrastive_prompt_weights": True,
        "n_tokens": 12,
        "condition_cache_size": 64,
        "text_template": "The sound of {}",
        "sample_rate": 16000,
        **weights,
    }
    modules = {"separator": WeakSupSeparator(spectral, net), "clap": clap}
    return WeakSupBrain(modules=modules, hparams=hparams, run_opts={"device": "cpu"})


@pytest.fixture(scope="module")
def semi_batch(clap_folder, tmp_path_factory):
    """8 items of 2 mixtures of 2 sources, about half single-source."""
    folder = str(tmp_path_factory.mktemp("semi_data"))
    prepare_synthmusic(
        folder,
        classes=CLASSES[:4],
        n_train=4,
        n_valid=1,
        n_test=1,
        duration=0.25,
        n_frames=1,
        n_test_mixtures=1,
    )
    data = WeakSupTrainSet(
        os.path.join(folder, "train.csv"),
        8,
        4000,
        16000,
        n_mixtures=2,
        n_sources=2,
        single_source_fraction=0.5,
        single_source_share=0.5,
        gain_min=0.5,
        gain_max=1.5,
    )
    return collate_items([data[i] for i in range(len(data))])


@pytest.mark.integration
def test_semi_supervised_batches_train_both_kinds_with_their_weights(
    clap_folder, semi_batch
):
    single = semi_batch.single_source
    assert 0 < sum(single) < len(single)  # both kinds in this batch
    brain = tiny_brain(clap_folder)
    brain.modules.train()
    brain.on_stage_start(sb.Stage.TRAIN, 1)
    out = brain.compute_forward(semi_batch, sb.Stage.TRAIN)
    loss = brain.compute_objectives(out, semi_batch, sb.Stage.TRAIN)
    assert brain.kind_counts == {"single": sum(single), "weak": 8 - sum(single)}
    s, w = out["single"], out["weak"]
    # the input of each group is the mean of its mixtures; targets the halves
    index = [i for i in range(8) if single[i]]
    parts = semi_batch.mixtures.data[index] / 2
    spectral = brain.modules.separator.spectral
    expected = analyze(spectral, parts.flatten(0, 1))["mag"].unflatten(0, (-1, 2))
    assert torch.allclose(s["source_mags"], expected, atol=1e-5)
    assert torch.allclose(s["mag"], analyze(spectral, parts.sum(1))["mag"], atol=1e-5)
    # single-source items: captions only; mixtures: captions and prompts
    assert "prompt_masks" not in s
    assert w["prompt_masks"].shape[:3] == (8 - sum(single), 2, 2)
    supervised = url_loss(s["caption_masks"], s["mag"], s["source_mags"])
    url = url_loss(w["caption_masks"], w["mag"], w["source_mags"])
    crl = crl_loss(w["prompt_masks"], w["prompt_weights"], w["mag"], w["source_mags"])
    cnt = contrastive_loss(
        w["audio_embeddings"],
        w["text_embeddings"],
        brain.modules.clap.logit_scale,
        w["prompt_weights"],
    )
    total = 3.0 * supervised + 2.0 * (5.0 * url + 5.0 * crl + 0.5 * cnt)
    assert loss.item() == pytest.approx(total.item(), rel=1e-5)
    loss.backward()
    net = brain.modules.separator.mask_net
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
    assert all(p.grad is None for p in brain.modules.clap.parameters())


@pytest.mark.integration
def test_loss_weights_switch_terms_off(clap_folder, semi_batch):
    brain = tiny_brain(
        clap_folder, crl_weight=0.0, cnt_weight=0.0, supervised_weight=0.0
    )
    brain.modules.train()
    brain.on_stage_start(sb.Stage.TRAIN, 1)
    torch.manual_seed(0)
    out = brain.compute_forward(semi_batch, sb.Stage.TRAIN)
    loss = brain.compute_objectives(out, semi_batch, sb.Stage.TRAIN)
    w = out["weak"]
    assert "prompt_masks" not in w and "audio_embeddings" not in w
    url = url_loss(w["caption_masks"], w["mag"], w["source_mags"])
    assert loss.item() == pytest.approx(2.0 * 5.0 * url.item(), rel=1e-5)
    stats = brain.train_stats(loss.detach())
    assert stats["single_items"] > 0 and "crl" not in stats and "cnt" not in stats


@pytest.mark.integration
@pytest.mark.parametrize(
    "recipe",
    [
        "MUSIC/weaksup/hparams/weaksup.yaml",
        "MUSIC/weaksup/hparams/semisup.yaml",
        "VGGSound/weaksup/hparams/weaksup.yaml",
        "VGGSound/weaksup/hparams/semisup.yaml",
        "AudioCaps/weaksup/hparams/weaksup.yaml",
    ],
)
def test_paper_recipes_build_and_hold_what_the_family_and_export_read(
    recipe, clap_folder, tmp_path
):
    from hyperpyyaml import load_hyperpyyaml

    from speechbrain_textsep.inference.run_export import REQUIRED_KEYS

    overrides = {
        "data_folder": str(tmp_path),
        "audio_folder": str(tmp_path),
        "csv_folder": str(tmp_path),
        "output_folder": str(tmp_path / "out"),
        "clap_source": clap_folder,
        # the paper's U-Net, built small enough for a test
        "ngf": 4,
        "n_maps": 4,
    }
    path = os.path.join(ROOT, "recipes", recipe)
    with open(path) as f:
        text = f.read()
    hparams = load_hyperpyyaml(
        text, {k: v for k, v in overrides.items() if f"\n{k}:" in text}
    )
    assert hparams["model_kind"] == "weaksup"
    assert hparams["segment_samples"] == 131070 and hparams["levels"] == 7
    assert hparams["attn_levels"] == 3 and hparams["heads"] == 8
    missing = [key for key in REQUIRED_KEYS["weaksup"] if key not in hparams]
    assert not missing
    for key in (
        "n_mixtures",
        "n_sources",
        "n_prompts",
        "single_source_fraction",
        "single_source_share",
        "valid_mixtures_csv",
        "test_mixtures_csv",
        "text_template",
        "steps_per_epoch",
        "condition_cache_size",
    ):
        assert key in hparams, key
    conditions = TextConditions(hparams["clap"], hparams["n_tokens"])
    condition = conditions(["The sound of flute", "A dog barks"])[None]
    mixture = torch.randn(1, 20000)  # padded to 128 frames inside
    assert hparams["separator"](mixture, condition).shape == (1, 2, 20000)
