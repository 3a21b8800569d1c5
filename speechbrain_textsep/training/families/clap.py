"""The CLAP family: a (small) LAION-CLAP trained contrastively, as CLAPSep's
query encoder.

Steps beyond the runner's: the tokenizer is built on the captions of the
training labels (:func:`~speechbrain_textsep.encoders.clap.build_tiny_tokenizer`,
in ``tokenizer_folder``); training batches hold distinct labels
(:class:`~speechbrain_textsep.training.clap_brain.DistinctLabelBatchSampler`);
the test is class retrieval on ``test_csv`` (per clip: audio -> text; per
class caption: text -> audio); the model folder is a
:class:`~speechbrain_textsep.encoders.clap.CLAPQueryEncoder` folder.

Authors
 * speechbrain-textsep contributors
"""

import speechbrain as sb
import torch
from speechbrain.utils.distributed import run_on_main

from speechbrain_textsep.encoders.clap import build_tiny_tokenizer, load_clap_tokenizer
from speechbrain_textsep.evaluation.report import write_item_results
from speechbrain_textsep.training.clap_brain import (
    CLAPBrain,
    DistinctLabelBatchSampler,
    clap_dataset,
    retrieval_rows,
)
from speechbrain_textsep.training.families.base import Family
from speechbrain_textsep.utils.captions import label_caption

__all__ = ["CLAPFamily"]


def _process_position():
    """``(rank, world size)`` of this process (0, 1 outside DDP)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class CLAPFamily(Family):
    """CLAP (``model_kind: clap``)."""

    kinds = ("clap",)
    brain_class = CLAPBrain

    def _clips(self, key, train):
        hp = self.hparams
        return clap_dataset(hp[key], hp["audio_cfg"], train, hp["caption_template"])

    def datasets(self):
        """Clips of ``train_csv`` and ``valid_csv`` as CLAP inputs, with captions."""
        return self._clips("train_csv", True), self._clips("valid_csv", False)

    def prepare_fit(self, brain, train_data):
        """The tokenizer (built once) and the distinct-label batch sampler."""
        labels = [train_data.data[i]["label"] for i in train_data.data_ids]
        template = self.hparams["caption_template"]
        captions = sorted({label_caption(c, template) for c in labels})
        run_on_main(
            build_tiny_tokenizer,
            args=[self.hparams["tokenizer_folder"], captions],
            kwargs={
                "vocab_size": self.hparams["clap_model_cfg"]["roberta"]["vocab_size"]
            },
        )
        brain.tokenizer = load_clap_tokenizer(self.hparams["tokenizer_folder"])
        rank, world = _process_position()
        brain.batch_sampler = DistinctLabelBatchSampler(
            labels,
            self.hparams["batch_size"],
            seed=self.hparams["seed"],
            rank=rank,
            world_size=world,
        )
        train_kwargs, valid_kwargs = super().prepare_fit(brain, train_data)
        train_kwargs["batch_sampler"] = brain.batch_sampler
        return train_kwargs, valid_kwargs

    def evaluate(self, brain):
        """Class retrieval on ``test_csv``: audio -> text and text -> audio."""
        data = self._clips("test_csv", False)
        loader = sb.dataio.dataloader.make_dataloader(
            data, **self.hparams["valid_dataloader_opts"]
        )
        embeddings, ids, labels = [], [], []
        for batch in loader:
            with torch.no_grad(), brain.evaluation_ctx:
                audio, _, _ = brain.compute_forward(batch, sb.Stage.TEST)
            embeddings.append(audio.float().cpu())
            ids += list(batch.id)
            labels += list(batch.label)
        classes = sorted(set(labels))
        rows = retrieval_rows(
            torch.cat(embeddings),
            ids,
            labels,
            brain.caption_embeddings(classes),
            classes,
        )
        return {
            "test": {
                kind: write_item_results(
                    [r for r in rows if r["query_kind"] == kind],
                    self.results_csv("test", kind),
                )
                for kind in ("audio", "text")
            }
        }
