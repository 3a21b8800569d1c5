"""A tiny CLAPSep trained on SynthMUSIC with the tiny trained CLAP separates.

The SynthMUSIC CLAPSep recipe runs on the tiny SynthMUSIC (3 instruments)
with the CLAP of ``conftest.trained_clap``, then its ``evaluate.py`` scores
the exported model with positive, negative and both queries, as text and as
audio examples. A constant 0.5 mask scores 0 dB SI-SDRi and BSS-style SDRi
(and 3 dB plain SNRi): the thresholds below need actual separation.
"""

import json
import os

import pytest
import torch
from recipe_runs import CLAPSEP_RECIPE, DATA_KEYS, TINY, options, run_script

from speechbrain_textsep.inference import Query, load_separator

pytestmark = pytest.mark.recipe

VALENCES = ("P", "N", "P+N")
CONDITIONS = [f"text_{v}" for v in VALENCES] + [f"audio_1shot_{v}" for v in VALENCES]


@pytest.fixture(scope="module")
def separation(data_folder, trained_clap, tmp_path_factory):
    """Trains the tiny CLAPSep, then evaluates its exported model."""
    output = str(tmp_path_factory.mktemp("clapsep_sep"))
    values = {
        **{key: TINY[key] for key in DATA_KEYS},
        "data_sample_rate": 16000,
        "clap_folder": trained_clap["model"],
        "output_folder": output,
        "number_of_epochs": 40,
        "segment_seconds": 1.0,
        "batch_size": 8,
    }
    hparams = os.path.join(CLAPSEP_RECIPE, "hparams", "clapsep_tiny.yaml")
    args = [hparams, "--data_folder", data_folder] + options(**values)
    run_script(os.path.join(CLAPSEP_RECIPE, "train.py"), args, CLAPSEP_RECIPE)
    evaluation = os.path.join(output, "eval")
    args = ["--model", os.path.join(output, "model"), "--data_folder", data_folder]
    args += ["--out", evaluation, "--shots", "1", "5"]
    printed = run_script(os.path.join(CLAPSEP_RECIPE, "evaluate.py"), args, output)
    with open(os.path.join(evaluation, "summary.json")) as f:
        summary = json.load(f)
    return {"output": output, "summary": summary, "printed": printed}


def test_every_query_kind_separates(separation):
    conditions = separation["summary"]["conditions"]
    assert set(CONDITIONS) <= set(conditions)
    for name in CONDITIONS:
        stats = conditions[name]
        assert stats["si_sdri_nzm"]["count"] == 2 * TINY["n_test_mixtures"]
        # Above the mixture, and above what a constant mask gives.
        assert stats["si_sdri_nzm"]["mean"] > 2.0, (name, stats["si_sdri_nzm"])
        assert stats["sdri_bss_v3"]["mean"] > 2.0, (name, stats["sdri_bss_v3"])
        assert stats["sdri_plain"]["mean"] > 4.0, (name, stats["sdri_plain"])
    assert "| text_P+N |" in separation["printed"]


def test_the_query_chooses_the_source(separation, data_folder):
    """Asking for either instrument of a mixture gives that instrument."""
    import csv

    from speechbrain_textsep.evaluation.metrics import si_sdr
    from speechbrain_textsep.inference.audio import read_audio, resample

    separator = load_separator(os.path.join(separation["output"], "model"))
    with open(os.path.join(data_folder, "test.csv")) as f:
        clips = {row["label"]: row["audio"] for row in csv.DictReader(f)}
    flute, tuba = (
        resample(*read_audio(clips[name]), separator.hparams.sample_rate)[0]
        for name in ("flute", "tuba")
    )
    tuba = tuba * flute.norm() / tuba.norm()
    mixture = (flute + tuba)[None] / 2
    estimates = separator.separate_batch(
        mixture,
        [
            [
                Query("The sound of flute", negative_text="The sound of tuba"),
                Query("The sound of tuba", negative_text="The sound of flute"),
            ]
        ],
    )
    asked_flute, asked_tuba = estimates[0, 0], estimates[0, 1]
    assert si_sdr(asked_flute, flute / 2) > si_sdr(asked_flute, tuba / 2) + 3.0
    assert si_sdr(asked_tuba, tuba / 2) > si_sdr(asked_tuba, flute / 2) + 3.0
    assert torch.isfinite(estimates).all()
