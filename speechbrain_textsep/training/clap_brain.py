"""Contrastive training of a (small) LAION-CLAP on class-labelled clips.

The model is laion_clap's own ``CLAP`` (HTSAT audio branch, RoBERTa text
branch, built offline by :func:`~speechbrain_textsep.encoders.clap.create_clap`)
and the loss laion_clap's own ``ClipLoss`` (symmetric InfoNCE on the
L2-normalised audio and text embeddings, scaled by ``logit_scale_a``, which is
clamped to ``[0, log 100]`` after every step as in laion_clap's training).
``mlp_loss`` is off: the similarity that is trained is the one of
``get_audio_embedding`` / ``get_text_embedding``, the embeddings a
:class:`~speechbrain_textsep.encoders.clap.CLAPQueryEncoder` returns.

Each training batch holds clips of distinct labels
(:class:`DistinctLabelBatchSampler`), so that no caption of the batch is a
false negative of another clip. Captions are ``"The sound of {label}"``
(:func:`~speechbrain_textsep.utils.captions.label_caption`: underscores of the
labels become spaces), as CLAPSep turns class labels into queries. The
recipe runs through :func:`speechbrain_textsep.training.runner.run_experiment`
(:mod:`speechbrain_textsep.training.families.clap`).

Retrieval accuracy (:func:`retrieval_metrics`, per item
:func:`retrieval_rows`), by class, on held-out clips against the captions of
all the classes:

- ``a2t_top1``: audio -> text, the fraction of clips whose most similar
  caption is their class's (zero-shot classification);
- ``t2a_top1``: text -> audio, the fraction of captions whose most similar
  clip is of their class;
- ``t2a_rprec``: text -> audio R-precision, the fraction of the R most
  similar clips that are of the caption's class (R: clips of that class),
  averaged over captions.

Authors
 * speechbrain-textsep contributors
"""

import csv
import math
import os

import speechbrain as sb
import torch
from speechbrain.utils.logger import get_logger

from speechbrain_textsep.encoders.clap import clap_audio_input, tokenize
from speechbrain_textsep.encoders.laion import clap_module
from speechbrain_textsep.processing.audio_io import read_audio
from speechbrain_textsep.training.brain import unwrap
from speechbrain_textsep.utils.captions import CAPTION_TEMPLATE, label_caption

logger = get_logger(__name__)

#: Largest ``logit_scale_a`` (log 100), as laion_clap's training clamps it.
MAX_LOGIT_SCALE = 4.605170185988092


def retrieval_rows(audio_emb, audio_ids, audio_labels, text_emb, text_labels):
    """Per-item class retrieval between clips and class captions.

    Arguments
    ---------
    audio_emb : torch.Tensor
        ``[Na, D]`` L2-normalised audio embeddings.
    audio_ids : list of str
        Id of every clip.
    audio_labels : list of str
        Class of every clip.
    text_emb : torch.Tensor
        ``[Nt, D]`` L2-normalised caption embeddings (one per class).
    text_labels : list of str
        Class of every caption.

    Returns
    -------
    list of dict
        Rows in the result schema of
        :mod:`~speechbrain_textsep.evaluation.report`: one per clip
        (``query_kind`` audio, ``a2t_top1`` 0 or 1, ``retrieved`` the class
        of the most similar caption), then one per caption (``query_kind``
        text, ``t2a_top1`` and ``t2a_rprec``, see the module docstring).

    Example
    -------
    >>> audio = torch.eye(3)[[0, 0, 1, 2]]
    >>> text = torch.eye(3)[[0, 2, 1]]
    >>> rows = retrieval_rows(audio, list("wxyz"), ["a", "a", "b", "c"],
    ...                       text, ["a", "b", "c"])
    >>> [r["a2t_top1"] for r in rows[:4]], [r["t2a_rprec"] for r in rows[4:]]
    ([1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0])
    """
    classes = sorted(set(text_labels) | set(audio_labels))
    index = {c: i for i, c in enumerate(classes)}
    a_lab = torch.tensor([index[c] for c in audio_labels])
    t_lab = torch.tensor([index[c] for c in text_labels])
    sim = audio_emb.float().cpu() @ text_emb.float().cpu().T  # [Na, Nt]
    rows = []
    for i, best in enumerate(sim.argmax(dim=1).tolist()):
        rows.append(
            {
                "item": audio_ids[i],
                "query_kind": "audio",
                "query": audio_ids[i],
                "target": audio_labels[i],
                "a2t_top1": float(t_lab[best] == a_lab[i]),
                "retrieved": text_labels[best],
            }
        )
    for j, best in enumerate(sim.argmax(dim=0).tolist()):
        relevant = int((a_lab == t_lab[j]).sum())
        rprec = math.nan
        if relevant:
            top = sim[:, j].topk(relevant).indices
            rprec = (a_lab[top] == t_lab[j]).float().mean().item()
        rows.append(
            {
                "item": text_labels[j],
                "query_kind": "text",
                "query": text_labels[j],
                "target": text_labels[j],
                "t2a_top1": float(a_lab[best] == t_lab[j]),
                "t2a_rprec": rprec,
                "retrieved": audio_ids[best],
            }
        )
    return rows


def retrieval_metrics(audio_emb, audio_labels, text_emb, text_labels):
    """Class retrieval accuracy between clips and class captions.

    Arguments
    ---------
    audio_emb : torch.Tensor
        ``[Na, D]`` L2-normalised audio embeddings.
    audio_labels : list of str
        Class of every clip.
    text_emb : torch.Tensor
        ``[Nt, D]`` L2-normalised caption embeddings (one per class).
    text_labels : list of str
        Class of every caption.

    Returns
    -------
    dict
        ``a2t_top1``, ``t2a_top1``, ``t2a_rprec`` (fractions, see the module
        docstring) and ``retrieval``, the mean of ``a2t_top1`` and
        ``t2a_rprec``.

    Example
    -------
    >>> audio = torch.eye(3)[[0, 0, 1, 2]]
    >>> text = torch.eye(3)[[0, 2, 1]]
    >>> m = retrieval_metrics(audio, ["a", "a", "b", "c"], text, ["a", "b", "c"])
    >>> m["a2t_top1"], round(m["t2a_rprec"], 3)
    (0.5, 0.333)
    """
    ids = [str(i) for i in range(len(audio_labels))]
    rows = retrieval_rows(audio_emb, ids, audio_labels, text_emb, text_labels)

    def mean(key):
        # Captions of a class without clips have no R-precision (NaN).
        values = [r[key] for r in rows if key in r and not math.isnan(r[key])]
        return sum(values) / len(values) if values else 0.0

    a2t, rprec = mean("a2t_top1"), mean("t2a_rprec")
    return {
        "a2t_top1": a2t,
        "t2a_top1": mean("t2a_top1"),
        "t2a_rprec": rprec,
        "retrieval": (a2t + rprec) / 2,
    }


class DistinctLabelBatchSampler(torch.utils.data.Sampler):
    """Batches of clips with pairwise distinct labels, reshuffled every epoch.

    Every epoch, the clips of each label are shuffled, then batches are
    filled round-robin over the labels (in a shuffled order), one clip per
    label: every clip is used once per epoch. Batches smaller than 2 (left
    over when labels are unbalanced) are dropped. Under DDP, process
    ``rank`` takes every ``world_size``-th batch.

    Arguments
    ---------
    labels : list of str
        Label of every dataset item.
    batch_size : int
        Clips per batch (at most the number of labels).
    seed : int
        Seed of the shuffling (combined with the epoch).
    rank : int
        Process index (DDP).
    world_size : int
        Number of processes (DDP).

    Example
    -------
    >>> sampler = DistinctLabelBatchSampler(list("aabbcc"), batch_size=3)
    >>> batches = list(sampler)
    >>> len(batches), all(len({"aabbcc"[i] for i in b}) == 3 for b in batches)
    (2, True)
    """

    def __init__(self, labels, batch_size, seed=0, rank=0, world_size=1):
        self.labels = list(labels)
        n_labels = len(set(self.labels))
        if batch_size > n_labels:
            raise ValueError(
                f"batch_size {batch_size} is larger than the number of distinct "
                f"labels ({n_labels}): a batch cannot hold distinct labels only"
            )
        if batch_size < 2:
            raise ValueError("contrastive batches need batch_size >= 2")
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.epoch = 0

    def set_epoch(self, epoch):
        """Sets the epoch (the shuffling of the next iteration)."""
        self.epoch = int(epoch)

    def _batches(self):
        generator = torch.Generator().manual_seed(self.seed + 1000003 * self.epoch)
        by_label = {}
        for i, label in enumerate(self.labels):
            by_label.setdefault(label, []).append(i)
        queues = []
        for label in sorted(by_label):
            items = by_label[label]
            order = torch.randperm(len(items), generator=generator).tolist()
            queues.append([items[k] for k in order])
        batches = []
        while True:
            alive = [q for q in queues if q]
            if len(alive) < 2:
                break
            # Labels with the most clips left first, ties in random order.
            ties = torch.randperm(len(alive), generator=generator).tolist()
            ranked = sorted(range(len(alive)), key=lambda k: (-len(alive[k]), ties[k]))
            batches.append([alive[k].pop() for k in ranked[: self.batch_size]])
        shuffle = torch.randperm(len(batches), generator=generator).tolist()
        batches = [batches[k] for k in shuffle]
        return batches[self.rank :: self.world_size]

    def __iter__(self):
        return iter(self._batches())

    def __len__(self):
        return len(self._batches())


def clap_dataset(csv_path, audio_cfg, train, caption_template=CAPTION_TEMPLATE):
    """A :class:`DynamicItemDataset` of CLAP inputs and captions.

    Arguments
    ---------
    csv_path : str
        Manifest with ``ID, audio, label`` columns (SynthMUSIC, MUSIC...).
    audio_cfg : dict
        The CLAP's ``audio_cfg`` (48 kHz, 10 s).
    train : bool
        Random crops of clips longer than 10 s if True, centred otherwise.
    caption_template : str
        Caption template of the labels.

    Returns
    -------
    speechbrain.dataio.dataset.DynamicItemDataset
        Items with ``id``, ``sig`` (``[clip_samples]`` at 48 kHz,
        see :func:`~speechbrain_textsep.encoders.clap.clap_audio_input`),
        ``label`` and ``caption``.
    """
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"manifest not found: {csv_path}")
    data = sb.dataio.dataset.DynamicItemDataset.from_csv(csv_path)
    crop = "random" if train else "center"

    @sb.utils.data_pipeline.takes("audio")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(path):
        wav, rate = read_audio(path, mono=True)
        return clap_audio_input(wav, rate, audio_cfg, crop=crop)[0]

    @sb.utils.data_pipeline.takes("label")
    @sb.utils.data_pipeline.provides("caption")
    def caption_pipeline(label):
        return label_caption(label, caption_template)

    data.add_dynamic_item(audio_pipeline)
    data.add_dynamic_item(caption_pipeline)
    data.set_output_keys(["id", "sig", "label", "caption"])
    return data


class CLAPBrain(sb.Brain):
    """Contrastive (CLIP-style) training of laion_clap's CLAP.

    Expected ``modules``: ``clap`` (from
    :func:`~speechbrain_textsep.encoders.clap.create_clap`). Expected
    ``hparams``: ``caption_template``, ``lr_scheduler`` (per step),
    ``checkpointer``, ``train_logger``, ``epoch_counter``. The tokenizer is
    given as the ``tokenizer`` attribute. Validation keeps the checkpoint with
    the best ``retrieval`` (:func:`retrieval_metrics`).
    """

    #: The CLAP's tokenizer, set by the runner.
    tokenizer = None
    #: The :class:`DistinctLabelBatchSampler` of training, set by the runner.
    batch_sampler = None

    def on_fit_start(self):
        """Builds laion_clap's ClipLoss (gathering over DDP processes)."""
        super().on_fit_start()
        self._make_loss()

    def _make_loss(self):
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank = torch.distributed.get_rank()
            world = torch.distributed.get_world_size()
        self.clip_loss = clap_module().ClipLoss(
            local_loss=False,
            gather_with_grad=True,
            cache_labels=True,
            rank=rank,
            world_size=world,
            mlp_loss=False,
        )

    def compute_forward(self, batch, stage):
        """Normalised audio and text embeddings of the batch and the logit scale."""
        batch = batch.to(self.device)
        tokens = tokenize(self.tokenizer, batch.caption)
        tokens = {k: v.to(self.device) for k, v in tokens.items()}
        audio_features, text_features, _, _, scale_a, _ = self.modules.clap(
            {"waveform": batch.sig.data}, tokens, device=self.device
        )
        return audio_features, text_features, scale_a

    def compute_objectives(self, predictions, batch, stage):
        """laion_clap's contrastive loss; keeps embeddings for retrieval at eval."""
        audio_features, text_features, scale_a = predictions
        if not hasattr(self, "clip_loss"):
            self._make_loss()
        loss = self.clip_loss(audio_features, text_features, scale_a)
        if stage != sb.Stage.TRAIN:
            self.eval_audio.append(audio_features.detach().float().cpu())
            self.eval_labels.extend(batch.label)
        return loss

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        """Clamps ``logit_scale_a`` to ``[0, log 100]`` after a step."""
        if should_step:
            with torch.no_grad():
                unwrap(self.modules.clap).logit_scale_a.clamp_(0, MAX_LOGIT_SCALE)

    def on_fit_batch_start(self, batch, should_step):
        """Sets the learning rate of the coming optimiser step."""
        if should_step:
            self.hparams.lr_scheduler(self.optimizer)

    def on_stage_start(self, stage, epoch=None):
        """Reshuffles the batch sampler (train); resets the embeddings (eval)."""
        if stage == sb.Stage.TRAIN and self.batch_sampler and epoch is not None:
            self.batch_sampler.set_epoch(epoch)
        self.eval_audio, self.eval_labels = [], []

    def caption_embeddings(self, labels):
        """``[C, D]`` normalised embeddings of the captions of ``labels``."""
        clap = unwrap(self.modules.clap)
        captions = [label_caption(c, self.hparams.caption_template) for c in labels]
        tokens = tokenize(self.tokenizer, captions)
        with torch.no_grad():
            return clap.get_text_embedding(tokens).float().cpu()

    def retrieval(self):
        """Retrieval metrics of the clips seen at this evaluation stage."""
        classes = sorted(set(self.eval_labels))
        return retrieval_metrics(
            torch.cat(self.eval_audio),
            self.eval_labels,
            self.caption_embeddings(classes),
            classes,
        )

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs the stage; keeps the checkpoint with the best retrieval."""
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        stats = {"loss": stage_loss, **self.retrieval()}
        if stage == sb.Stage.VALID:
            lr = self.optimizer.param_groups[0]["lr"]
            scale = float(unwrap(self.modules.clap).logit_scale_a.exp())
            self.hparams.train_logger.log_stats(
                stats_meta={
                    "epoch": epoch,
                    "lr": lr,
                    "steps": self.optimizer_step,
                    "logit_scale": round(scale, 2),
                },
                train_stats={"loss": self.train_loss},
                valid_stats=stats,
            )
            self.hparams.checkpointer.save_and_keep_only(
                meta={"retrieval": stats["retrieval"]}, max_keys=["retrieval"]
            )
        else:
            self.hparams.train_logger.log_stats(
                stats_meta={"Epoch loaded": self.hparams.epoch_counter.current},
                test_stats=stats,
            )
        self.last_stats = stats


def encoder_retrieval(encoder, csv_path, caption_template=CAPTION_TEMPLATE, batch=16):
    """Retrieval metrics of a :class:`CLAPQueryEncoder` on a manifest's clips.

    The clips are read from their files at their own rate (the encoder
    resamples them) and embedded in batches.

    Arguments
    ---------
    encoder : CLAPQueryEncoder
        The encoder (e.g. loaded from an exported folder).
    csv_path : str
        Manifest with ``audio`` and ``label`` columns.
    caption_template : str
        Caption template of the labels.
    batch : int
        Clips embedded at once.

    Returns
    -------
    dict
        See :func:`retrieval_metrics`.
    """
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"no clips in {csv_path}")
    embeddings, labels = [], []
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        clips = [read_audio(row["audio"], mono=True) for row in chunk]
        for wav, rate in clips:
            embeddings.append(encoder.encode_audio(wav, sample_rate=rate))
        labels.extend(row["label"] for row in chunk)
    classes = sorted(set(labels))
    captions = [label_caption(c, caption_template) for c in classes]
    return retrieval_metrics(
        torch.cat(embeddings), labels, encoder.encode_text(captions), classes
    )
