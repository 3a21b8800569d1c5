"""The template recipe (recipes/Template) runs as a contributor would use it:
a folder of labelled clips in, a loadable model folder out."""

import csv
import os

import pytest
import torch
from recipe_runs import run_script

from speechbrain_textsep.inference import load_separator

pytestmark = pytest.mark.recipe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(ROOT, "recipes", "Template")
RECIPE = os.path.join(TEMPLATE, "separation")


@pytest.fixture(scope="module")
def clips(data_folder, tmp_path_factory):
    """The tiny SynthMUSIC clips laid out as <label>/<clip>.wav."""
    folder = tmp_path_factory.mktemp("labelled")
    for split in ("train", "valid", "test"):
        with open(os.path.join(data_folder, f"{split}.csv"), newline="") as f:
            for row in csv.DictReader(f):
                (folder / row["label"]).mkdir(exist_ok=True)
                os.symlink(row["audio"], folder / row["label"] / f"{row['ID']}.wav")
    return folder


def test_prepare_writes_the_manifests_of_every_label(clips, tmp_path):
    import sys

    sys.path.insert(0, TEMPLATE)
    try:
        from template_prepare import prepare_labelled_folder
    finally:
        sys.path.remove(TEMPLATE)
    manifests = prepare_labelled_folder(
        clips, tmp_path, valid_ratio=0.2, test_ratio=0.2, n_test_mixtures=3
    )
    rows = {}
    for split in ("train", "valid", "test"):
        with open(manifests[split], newline="") as f:
            rows[split] = list(csv.DictReader(f))
    # 12 clips a label: 2 valid, 2 test, 8 train; splits disjoint
    for split, count in (("train", 24), ("valid", 6), ("test", 6)):
        assert len(rows[split]) == count
    ids = [row["ID"] for split in rows.values() for row in split]
    assert len(set(ids)) == 36
    assert {row["label"] for row in rows["test"]} == {"flute", "tuba", "xylophone"}
    assert float(rows["train"][0]["duration"]) == pytest.approx(2.0)
    with open(manifests["test_mixtures"], newline="") as f:
        mixtures = list(csv.DictReader(f))
    assert len(mixtures) == 3 and all(m["label1"] != m["label2"] for m in mixtures)
    # the same options: nothing is rewritten
    before = os.path.getmtime(manifests["train"])
    prepare_labelled_folder(
        clips, tmp_path, valid_ratio=0.2, test_ratio=0.2, n_test_mixtures=3
    )
    assert os.path.getmtime(manifests["train"]) == before
    with pytest.raises(ValueError, match="at least two labels"):
        prepare_labelled_folder(clips / "flute", tmp_path / "x")


def test_template_recipe_debug_run_exports_a_loadable_model(clips, tmp_path):
    output = tmp_path / "run"
    run_script(
        os.path.join(RECIPE, "train.py"),
        [
            os.path.join(RECIPE, "hparams", "clipsep_text_tiny.yaml"),
            "--data_folder",
            clips,
            "--output_folder",
            output,
            "--valid_ratio",
            0.2,
            "--test_ratio",
            0.2,
            "--n_test_mixtures",
            4,
            "--segment_samples",
            16383,
            "--levels",
            5,
            "--batch_size",
            4,
            "--debug",
        ],
        RECIPE,
    )
    assert (output / "test_summary.json").is_file()
    separator = load_separator(str(output / "model"))
    mixture = 0.1 * torch.randn(1, 16000, generator=torch.Generator().manual_seed(0))
    estimate = separator.separate_batch(mixture, "flute")
    assert estimate.shape == mixture.shape and torch.isfinite(estimate).all()
