"""The weakly-supervised bi-modal separation family (``model_kind: weaksup``).

Every arm of the paper's comparisons (the weak loss, CLIPSep-style
mix-and-separate on multi-source mixtures, supervised and semi-supervised
training) is this family with other hparams; see
:mod:`speechbrain_textsep.training.weaksup_brain`.

- Training items: :class:`~speechbrain_textsep.data.weaksup.WeakSupTrainSet`
  (``steps_per_epoch * batch_size`` items an epoch, drawn from ``seed``).
- Validation: fixed 2-source mixtures of the valid clips
  (``valid_mixtures_csv``, written from ``valid_csv`` by
  :func:`~speechbrain_textsep.evaluation.protocol.make_protocol_pairs` when
  missing), never the test split.
- Test: both sources of every mixture of ``test_mixtures_csv`` (written
  from ``test_csv`` the same way when missing), queried by their labels'
  prompts (``text_template``; null: the labels verbatim, e.g. AudioCaps
  captions), scored by
  :func:`~speechbrain_textsep.evaluation.mixtures.evaluate_mixture_list`
  (the CLIPSep family's 2-source evaluation and metric keys).
- Export: the ``weaksup`` template, the frozen CLAP copied into the folder
  when it cannot be fetched by name.

Authors
 * speechbrain-textsep contributors
"""

import os

import torch
from speechbrain.utils.distributed import run_on_main

from speechbrain_textsep.data.weaksup import (
    MixtureListSet,
    WeakSupTrainSet,
    collate_items,
)
from speechbrain_textsep.evaluation.mixtures import evaluate_mixture_list
from speechbrain_textsep.evaluation.protocol import make_protocol_pairs
from speechbrain_textsep.training.brain import unwrap
from speechbrain_textsep.training.families.base import Family
from speechbrain_textsep.training.weaksup_brain import WeakSupBrain, query_texts

__all__ = ["WeakSupFamily", "train_items", "write_pairs"]


def write_pairs(clips_csv, pairs_csv, max_pairs=None):
    """Writes the fixed 2-source pair list of a split unless it exists.

    Every clip is paired with one clip of another label
    (:func:`~speechbrain_textsep.evaluation.protocol.make_protocol_pairs`).

    Arguments
    ---------
    clips_csv : str
        Manifest of the split's clips.
    pairs_csv : str
        The pair list (``ID, source1, label1, source2, label2``).
    max_pairs : int, optional
        Only the first clips are targets.

    Returns
    -------
    str
        ``pairs_csv``.
    """
    if not os.path.isfile(pairs_csv):
        make_protocol_pairs(clips_csv, clips_csv, pairs_csv, max_targets=max_pairs)
    return pairs_csv


def train_items(hparams):
    """Items of a training epoch: ``steps_per_epoch`` batches per process."""
    world = 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        world = torch.distributed.get_world_size()
    batch = hparams["train_dataloader_opts"]["batch_size"]
    return int(hparams["steps_per_epoch"]) * batch * world


class WeakSupFamily(Family):
    """Weakly-supervised, semi-supervised and mix-and-separate arms."""

    kinds = ("weaksup",)
    brain_class = WeakSupBrain

    def prepare(self):
        """Writes the valid and test pair lists if missing (main process)."""
        h = self.hparams
        run_on_main(write_pairs, args=[h["valid_csv"], h["valid_mixtures_csv"]])
        run_on_main(
            write_pairs,
            args=[h["test_csv"], h["test_mixtures_csv"], h["max_test_mixtures"]],
        )

    def datasets(self):
        """N-mixture training items; 2-source valid mixtures."""
        h = self.hparams
        train = WeakSupTrainSet(
            h["train_csv"],
            n_items=train_items(h),
            segment_samples=h["segment_samples"],
            sample_rate=h["sample_rate"],
            n_mixtures=h["n_mixtures"],
            n_sources=h["n_sources"],
            n_prompts=h["n_prompts"],
            single_source_fraction=h["single_source_fraction"],
            single_source_share=h["single_source_share"],
            gain_min=h["gain_min"],
            gain_max=h["gain_max"],
            seed=h["seed"],
        )
        valid = MixtureListSet(
            h["valid_mixtures_csv"],
            h["valid_csv"],
            h["segment_samples"],
            h["sample_rate"],
        )
        return train, valid

    def prepare_fit(self, brain, train_data):
        """Items in order (they are drawn at random), lists kept per item."""
        train_kwargs, valid_kwargs = super().prepare_fit(brain, train_data)
        train_kwargs.update(collate_fn=collate_items, shuffle=False)
        valid_kwargs["collate_fn"] = collate_items
        brain.train_set = train_data
        return train_kwargs, valid_kwargs

    def evaluate(self, brain):
        """Both sources of every test mixture, queried by their label prompts."""
        h = self.hparams
        template = h["text_template"]

        def separate(mixture, labels):
            texts = query_texts(labels, template)
            conditions = brain.conditions(texts)[None]
            return brain.separator(mixture.to(brain.device), conditions)

        scores = evaluate_mixture_list(
            separate,
            h["test_mixtures_csv"],
            h["test_csv"],
            os.path.dirname(self.results_csv("test_mixtures", "text")),
            segment_samples=h["segment_samples"],
            sample_rate=h["sample_rate"],
            max_mixtures=h["max_test_mixtures"],
            query_kind="text",
        )
        return {"test_mixtures": {"text": scores}}

    def export_options(self):
        """The frozen CLAP is already built: saved as it is if it goes in."""
        return {"clap_encoder": unwrap(self.hparams["clap"])}
