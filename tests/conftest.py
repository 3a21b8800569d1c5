"""Fixtures shared by the test modules: tiny SynthMUSIC data and a tiny run."""

import pytest
from recipe_runs import CLASSES, TINY, run_clap_recipe, run_recipe

from speechbrain_textsep.data.synthmusic import prepare_synthmusic


@pytest.fixture(scope="session")
def data_folder(tmp_path_factory):
    """Tiny SynthMUSIC: 3 instruments, 2 s clips, 4 test mixtures."""
    folder = str(tmp_path_factory.mktemp("synthmusic"))
    prepare_synthmusic(
        folder,
        classes=CLASSES,
        n_train=TINY["n_train_per_class"],
        n_valid=TINY["n_valid_per_class"],
        n_test=TINY["n_test_per_class"],
        duration=TINY["clip_seconds"],
        n_test_mixtures=TINY["n_test_mixtures"],
    )
    return folder


@pytest.fixture(scope="session")
def trained(data_folder, tmp_path_factory):
    """A tiny CLIPSep-Text trained for 30 epochs (about 90 optimiser steps)."""
    output = str(tmp_path_factory.mktemp("train"))
    run_recipe(data_folder, output, number_of_epochs=30)
    return output


@pytest.fixture(scope="session")
def trained_clap(data_folder, tmp_path_factory):
    """The tiny CLAP recipe on the tiny SynthMUSIC: 6 epochs of 8 batches."""
    output = str(tmp_path_factory.mktemp("clap"))
    log = run_clap_recipe(data_folder, output, number_of_epochs=6)
    return {"output": output, "log": log, "model": f"{output}/model"}
