"""The CLIPSep family: CLIPSep, CLIPSep-Text, CLIPSep-NIT and the baselines.

The recipe's ``model_kind`` names the query encoder:

- ``clipsep``: CLIPSep, CLIPSep-Text, CLIPSep-NIT (frozen CLIP);
- ``labelsep``: a trainable label embedding
  (:class:`~speechbrain_textsep.encoders.labels.LabelQueryEncoder`) whose
  label list comes from the training manifest when not given;
- ``bertsep``: frozen BERT sentence embeddings
  (:class:`~speechbrain_textsep.encoders.bert.BERTQueryEncoder`);
- ``pit``: the query-free PIT baseline (``query_mode: none``, no
  ``query_encoder``); it is evaluated from the recipe's output folder, not
  exported (the pretrained interfaces take queries).

Training is mix-and-separate with
:class:`~speechbrain_textsep.training.brain.QuerySeparationBrain`; the test
evaluation is the CLIPSep protocol on each ``test_sets`` entry of the recipe
or, without ``test_sets``, the mixture list ``test_mixtures_csv`` (both
sources of every mixture queried), with every query kind of
``eval_query_modes``.

Authors
 * speechbrain-textsep contributors
"""

import os

import torch
from speechbrain.dataio.sampler import ReproducibleRandomSampler
from speechbrain.utils.logger import get_logger

from speechbrain_textsep.data.clips import clip_dataset
from speechbrain_textsep.evaluation.mixtures import evaluate_mixture_list
from speechbrain_textsep.evaluation.protocol import (
    evaluate_test_set,
    evaluation_model_from_hparams,
)
from speechbrain_textsep.inference.run_folder import (
    CLIPSEP_KINDS,
    query_encoder_in_checkpoint,
)
from speechbrain_textsep.training.brain import QuerySeparationBrain
from speechbrain_textsep.training.families.base import Family

logger = get_logger(__name__)

__all__ = ["CLIPSepFamily", "dataio_prepare", "epoch_sampler", "prepare_query_encoder"]


def prepare_query_encoder(hparams):
    """Gives a LabelSep encoder its labels (from ``train_csv``) if it has none."""
    encoder = hparams.get("query_encoder")  # none for a query-free model
    if getattr(encoder, "labels", False) is None and hasattr(encoder, "set_labels"):
        from speechbrain_textsep.encoders.labels import labels_from_manifests

        encoder.set_labels(labels_from_manifests(hparams["train_csv"]))
        logger.info(f"LabelSep labels ({len(encoder.labels)}): {encoder.labels}")


def dataio_prepare(hparams):
    """Train and valid datasets of single-source clips (frames for image queries)."""
    preprocess = None
    if hparams["query_mode"] not in ("text", "none"):
        preprocess = hparams["query_encoder"].preprocess
    common = {
        "segment_samples": hparams["segment_samples"],
        "sample_rate": hparams["sample_rate"],
        "image_preprocess": preprocess,
        "n_query_frames": hparams["n_query_frames"],
    }
    train = clip_dataset(hparams["train_csv"], train=True, **common)
    valid = clip_dataset(hparams["valid_csv"], train=False, **common)
    return train, valid


def epoch_sampler(train_data, hparams):
    """A sampler of ``steps_per_epoch`` batches per process, or None.

    With ``steps_per_epoch`` set, an "epoch" is that many optimiser steps
    of random clips (reshuffled when the manifest runs out, drawn from the
    recipe's ``seed``), whatever the size of the dataset: the step budget
    and the validation frequency of the paper's schedule do not depend on
    the dataset. Under DDP every process draws its share of
    ``steps_per_epoch * batch_size * world``. With ``steps_per_epoch: null``
    an epoch is one pass over the training clips (None is returned).
    """
    steps = hparams["steps_per_epoch"]
    if not steps:
        return None
    world = 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        world = torch.distributed.get_world_size()
    batch = hparams["train_dataloader_opts"]["batch_size"]
    return ReproducibleRandomSampler(
        train_data, seed=hparams["seed"], num_samples=int(steps) * batch * world
    )


class CLIPSepFamily(Family):
    """The CLIPSep family (``clipsep``, ``labelsep``, ``bertsep``, ``pit``)."""

    kinds = CLIPSEP_KINDS
    brain_class = QuerySeparationBrain

    def prepare(self):
        """LabelSep takes its labels from the training manifest."""
        prepare_query_encoder(self.hparams)

    def recoverables(self):
        """The query encoder when its weights belong to the experiment.

        That is a trainable (LabelSep), random-init or locally built one.
        """
        if query_encoder_in_checkpoint(self.hparams):
            return {"query_encoder": self.hparams["query_encoder"]}
        return {}

    def datasets(self):
        """Single-source clips (see :func:`dataio_prepare`)."""
        return dataio_prepare(self.hparams)

    def prepare_fit(self, brain, train_data):
        """Fixed-length epochs with ``steps_per_epoch`` (:func:`epoch_sampler`)."""
        train_kwargs, valid_kwargs = super().prepare_fit(brain, train_data)
        sampler = epoch_sampler(train_data, self.hparams)
        if sampler is not None:
            train_kwargs["shuffle"] = False
            train_kwargs["sampler"] = sampler
        brain.epoch_sampler = sampler
        return train_kwargs, valid_kwargs

    def evaluate(self, brain):
        """The CLIPSep protocol on ``test_sets``, else the mixture list."""
        model = evaluation_model_from_hparams(self.hparams, brain.device)
        modes = self.hparams["eval_query_modes"]
        test_sets = self.hparams.get("test_sets")  # optional
        if not test_sets:
            return {"test_mixtures": self._mixture_list(model, modes)}
        results = {}
        for name, test_set in test_sets.items():
            paths = ("targets", "interferers", "pairs", "clips")
            unset = [key for key in paths if key in test_set and not test_set[key]]
            if unset:
                logger.info(f"Test set {name} skipped: no {', '.join(unset)} given")
                continue
            results[name] = evaluate_test_set(
                model,
                test_set,
                os.path.join(self.hparams["output_folder"], "test", name),
                query_modes=modes,
                max_mixtures=self.hparams["max_test_mixtures"],
            )
        return results

    def _mixture_list(self, model, modes):
        """Both sources of every mixture of ``test_mixtures_csv``, queried."""
        results = {}
        for mode in modes:
            results[mode] = evaluate_mixture_list(
                model.separate_fn(mode),
                self.hparams["test_mixtures_csv"],
                self.hparams["test_csv"],
                os.path.dirname(self.results_csv("test_mixtures", mode)),
                segment_samples=self.hparams["segment_samples"],
                sample_rate=self.hparams["sample_rate"],
                max_mixtures=self.hparams["max_test_mixtures"],
                permutation_invariant=mode == "none",
                query_rows=mode == "image",
                query_kind=mode,
            )
        return results

    def can_export(self):
        """PIT takes no queries: no model folder."""
        return self.kind != "pit"
