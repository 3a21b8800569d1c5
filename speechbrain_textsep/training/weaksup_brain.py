"""Brain of weakly-supervised bi-modal separation (Mahmud et al., ICLR 2024).

One Brain trains every arm of the paper's comparisons, chosen by hparams:

- the **weak loss** on items of N captioned mixtures
  (:class:`~speechbrain_textsep.data.weaksup.WeakSupTrainSet`):
  ``rec_weight (L_URL + crl_weight/rec_weight L_CRL) + cnt_weight L_CNT``
  (:func:`~speechbrain_textsep.training.weaksup_losses.weak_loss`);
- **CLIPSep-style mix-and-separate** on the same mixtures: the
  caption-conditioned L_URL alone (``cnt_weight: 0, crl_weight: 0``; the
  prompt queries are then not even run);
- **supervised mix-and-separate** on single-source items (N single clips:
  L_URL of single-source "mixtures" is the supervised loss);
- the **semi-supervised** objective, ``supervised_weight`` L_URL on the
  single-source items of a batch + ``weak_weight`` the weak loss on its
  mixture items (``semi_supervised_loss`` of
  :mod:`~speechbrain_textsep.training.weaksup_losses`); a batch mixes both
  kinds (``single_source_share`` of the items on average), each kind
  through its own separator pass.

The model input is the mean of the N mixtures; the targets are the
mixtures' contributions to it (each mixture divided by N), whose STFT
magnitudes a sigmoid mask of the input can reach. L_CNT embeds the
prompt-masked outputs (iSTFT) with the frozen CLAP, gradients flowing
through it into the separator
(:meth:`~speechbrain_textsep.encoders.clap.CLAPQueryEncoder.encode_audio_with_grad`).

Validation (and the checkpoint choice) uses fixed 2-source mixtures of the
valid clips (each source halved, as the test), each source queried by its
label's prompt: ``sdri_plain`` and ``si_sdri``, and the supervised L_URL
as the loss, the same for every arm.

Authors
 * speechbrain-textsep contributors
"""

from collections import OrderedDict

import speechbrain as sb
import torch
from speechbrain.utils.metric_stats import MetricStats

from speechbrain_textsep.evaluation.metrics import (
    sdr_improvement,
    si_sdr_improvement,
)
from speechbrain_textsep.models.separator import analyze
from speechbrain_textsep.models.weaksup import pack_text_condition
from speechbrain_textsep.training.brain import unwrap
from speechbrain_textsep.training.weaksup_losses import (
    contrastive_loss,
    crl_loss,
    semi_supervised_loss,
    url_loss,
    weak_loss,
)
from speechbrain_textsep.utils.captions import label_caption

__all__ = ["TextConditions", "WeakSupBrain", "query_texts"]

#: Loss terms logged per training epoch.
LOSS_TERMS = ("supervised", "url", "crl", "cnt")


class TextConditions:
    """Packed text conditions of a frozen CLAP, with a bounded cache.

    Arguments
    ---------
    clap : speechbrain_textsep.encoders.clap.CLAPQueryEncoder
        The frozen CLAP.
    n_tokens : int
        Tokens per text (``max_length`` of ``encode_text_tokens``).
    cache_size : int
        Texts whose conditions are kept (least recently used dropped).

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_textsep.encoders.clap import (
    ...     TINY_CLAP_CFG, CLAPQueryEncoder, build_tiny_tokenizer)
    >>> tok = build_tiny_tokenizer(tempfile.mkdtemp(), ["The sound of violin"])
    >>> clap = CLAPQueryEncoder(None, model_cfg=TINY_CLAP_CFG, tokenizer=tok)
    >>> conditions = TextConditions(clap, n_tokens=8, cache_size=2)
    >>> conditions(["violin", "flute", "violin"]).shape  # 512 + 8 * 32 + 8
    torch.Size([3, 776])
    >>> len(conditions.cache)
    2
    """

    def __init__(self, clap, n_tokens, cache_size=4096):
        self.clap = clap
        self.n_tokens = int(n_tokens)
        self.cache_size = int(cache_size)
        self.cache = OrderedDict()

    def __call__(self, texts):
        """``[len(texts), C]`` conditions on the CLAP's device."""
        clap = unwrap(self.clap)
        missing = sorted({t for t in texts if t not in self.cache})
        if missing:
            with torch.no_grad():
                embedding = clap.encode_text(missing)
                tokens, mask = clap.encode_text_tokens(missing, self.n_tokens)
                packed = pack_text_condition(embedding, tokens, mask)
            for text, condition in zip(missing, packed):
                self.cache[text] = condition
        out = torch.stack([self.cache[t] for t in texts])
        for text in texts:
            self.cache.move_to_end(text)
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return out


def flat(nested):
    """The texts of a list of lists, in order."""
    return [text for inner in nested for text in inner]


def query_texts(labels, template):
    """The text query of each label: in ``template``, or verbatim if None.

    Example
    -------
    >>> query_texts(["acoustic_guitar"], "The sound of {}")
    ['The sound of acoustic guitar']
    >>> query_texts(["A dog barks"], None)
    ['A dog barks']
    """
    if template is None:
        return list(labels)
    return [label_caption(label, template) for label in labels]


class WeakSupBrain(sb.Brain):
    """Trains a :class:`~speechbrain_textsep.models.weaksup.WeakSupSeparator`.

    Expected ``modules``: ``separator`` and ``clap`` (frozen
    :class:`~speechbrain_textsep.encoders.clap.CLAPQueryEncoder`). Expected
    ``hparams``: ``rec_weight``, ``crl_weight``, ``cnt_weight``,
    ``supervised_weight``, ``weak_weight``, ``contrastive_prompt_weights``
    (weigh L_CNT rows by 1/copies), ``n_tokens``, ``condition_cache_size``,
    ``text_template``,
    ``sample_rate``, ``lr_scheduler`` (per step), ``checkpointer``,
    ``train_logger`` and ``epoch_counter``. See the module docstring.
    """

    #: The training set (its ``set_epoch`` is called at every epoch start).
    train_set = None

    _conditions = None

    @property
    def conditions(self):
        """The :class:`TextConditions` of the frozen CLAP (built on first use)."""
        if self._conditions is None:
            self._conditions = TextConditions(
                self.modules.clap,
                self.hparams.n_tokens,
                self.hparams.condition_cache_size,
            )
        return self._conditions

    @property
    def separator(self):
        """The separator (unwrapped from DDP)."""
        return unwrap(self.modules.separator)

    def needs_prompts(self):
        """Whether L_CRL or L_CNT is trained (else prompts are not run)."""
        return self.hparams.crl_weight > 0 or self.hparams.cnt_weight > 0

    def compute_forward(self, batch, stage):
        """Masks of the training groups, or of the 2-source evaluation mixtures."""
        if stage == sb.Stage.TRAIN:
            return self.train_forward(batch)
        return self.eval_forward(batch)

    def train_forward(self, batch):
        """Forward of the single-source and the mixture items of a batch."""
        mixtures = batch.mixtures.data.to(self.device)
        parts = mixtures / mixtures.shape[1]
        single = torch.tensor(batch.single_source, dtype=torch.bool)
        groups = {}
        for kind, members in (("single", single), ("weak", ~single)):
            index = members.nonzero()[:, 0].tolist()
            if not index:
                continue
            groups[kind] = self.group_forward(
                parts[index],
                [batch.captions[i] for i in index],
                [batch.prompts[i] for i in index] if kind == "weak" else None,
                batch.prompt_weights.data[index].to(self.device),
            )
        return groups

    def group_forward(self, parts, captions, prompts, prompt_weights):
        """Caption masks (and prompt masks, outputs) of a group of items.

        Arguments
        ---------
        parts : torch.Tensor
            ``[B, N, L]`` contributions of the mixtures to the input.
        captions : list
            B lists of N captions.
        prompts : list or None
            B lists of N lists of P prompts (None: captions only).
        prompt_weights : torch.Tensor
            ``[B, N, P]``.

        Returns
        -------
        dict
        """
        b, n, length = parts.shape
        queries = self.conditions(flat(captions)).view(b, n, -1)
        with_prompts = prompts is not None and self.needs_prompts()
        if with_prompts:
            texts = [flat(item) for item in prompts]
            queries = torch.cat(
                [queries, self.conditions(flat(texts)).view(b, -1, queries.shape[-1])],
                1,
            )
        views = self.separator.masks(parts.sum(1), queries)
        out = {
            "caption_masks": views.masks[:, :n],
            "mag": views.mag,
            "source_mags": self.magnitudes(parts),
        }
        if not with_prompts:
            return out
        p = prompt_weights.shape[-1]
        out["prompt_masks"] = views.masks[:, n:].unflatten(1, (n, p))
        out["prompt_weights"] = prompt_weights
        if self.hparams.cnt_weight > 0:
            out.update(self.embeddings(views, texts, b, n, p, length))
        return out

    def magnitudes(self, waveforms):
        """``[B, N, F, T]`` STFT magnitudes (the separator's domain), no grad."""
        with torch.no_grad():
            mag = analyze(self.separator.spectral, waveforms.flatten(0, 1))["mag"]
        return mag.unflatten(0, waveforms.shape[:2])

    def embeddings(self, views, texts, b, n, p, length):
        """CLAP audio embeddings of the prompt outputs, and the prompts' texts."""
        outputs = self.separator.reconstruct(views.masks[:, n:], views.spec, length)
        clap = unwrap(self.modules.clap)
        audio = clap.encode_audio_with_grad(
            outputs.flatten(0, 1), sample_rate=self.hparams.sample_rate
        )
        with torch.no_grad():
            text = clap.encode_text(flat(texts))
        return {
            "audio_embeddings": audio.view(b, n, p, -1),
            "text_embeddings": text.to(audio.device).view(b, n, p, -1),
        }

    def eval_forward(self, batch):
        """Both sources of every 2-source mixture, queried by their labels."""
        sources = batch.sources.data.to(self.device) / 2
        template = self.hparams.text_template
        texts = [query_texts(pair, template) for pair in batch.labels]
        queries = self.conditions(flat(texts)).view(len(texts), 2, -1)
        views = self.separator.masks(sources.sum(1), queries)
        return {
            "caption_masks": views.masks,
            "mag": views.mag,
            "source_mags": self.magnitudes(sources),
            "estimates": self.separator.reconstruct(
                views.masks, views.spec, sources.shape[-1]
            ),
            "sources": sources,
        }

    def compute_objectives(self, predictions, batch, stage):
        """The arm's objective at training; supervised L_URL and SDRi at eval."""
        if stage != sb.Stage.TRAIN:
            p = predictions
            mixture = p["sources"].sum(1, keepdim=True).expand_as(p["sources"])
            for stats in (self.sdri_stats, self.si_sdri_stats):
                stats.append(batch.id, p["estimates"], p["sources"], mixture)
            return url_loss(p["caption_masks"], p["mag"], p["source_mags"])
        terms = self.loss_terms(predictions)
        for key, value in terms.items():
            if value is not None:
                self.term_sums[key] += float(value.detach())
                self.term_counts[key] += 1
        for kind in predictions:
            self.kind_counts[kind] += len(predictions[kind]["mag"])
        weak = None
        if "weak" in predictions:
            weak = weak_loss(
                terms["url"],
                terms["crl"],
                terms["cnt"],
                cnt_weight=self.hparams.cnt_weight,
                rec_weight=self.hparams.rec_weight,
                crl_weight=self.hparams.crl_weight,
            )
        return semi_supervised_loss(
            terms["supervised"],
            weak,
            self.hparams.supervised_weight,
            self.hparams.weak_weight,
        )

    def loss_terms(self, predictions):
        """``{supervised, url, crl, cnt}``: None where not computed."""
        terms = dict.fromkeys(LOSS_TERMS)
        single = predictions.get("single")
        if single is not None:
            terms["supervised"] = url_loss(
                single["caption_masks"], single["mag"], single["source_mags"]
            )
        weak = predictions.get("weak")
        if weak is None:
            return terms
        terms["url"] = url_loss(weak["caption_masks"], weak["mag"], weak["source_mags"])
        if "prompt_masks" in weak and self.hparams.crl_weight > 0:
            terms["crl"] = crl_loss(
                weak["prompt_masks"],
                weak["prompt_weights"],
                weak["mag"],
                weak["source_mags"],
            )
        if "audio_embeddings" in weak:
            terms["cnt"] = contrastive_loss(
                weak["audio_embeddings"],
                weak["text_embeddings"],
                unwrap(self.modules.clap).logit_scale,
                weak["prompt_weights"]
                if self.hparams.contrastive_prompt_weights
                else None,
            )
        return terms

    def on_fit_batch_start(self, batch, should_step):
        """Sets the learning rate of the coming optimiser step."""
        if should_step:
            self.hparams.lr_scheduler(self.optimizer)

    def on_stage_start(self, stage, epoch=None):
        """Draws the epoch's items (training) or resets the SDRi trackers."""
        if stage == sb.Stage.TRAIN:
            if self.train_set is not None and epoch is not None:
                self.train_set.set_epoch(epoch)
            self.term_sums = dict.fromkeys(LOSS_TERMS, 0.0)
            self.term_counts = dict.fromkeys(LOSS_TERMS, 0)
            self.kind_counts = {"single": 0, "weak": 0}
            return
        self.sdri_stats = MetricStats(
            metric=lambda est, ref, mix: sdr_improvement(est, ref, mix).mean(-1)
        )
        self.si_sdri_stats = MetricStats(
            metric=lambda est, ref, mix: si_sdr_improvement(est, ref, mix).mean(-1)
        )

    def train_stats(self, stage_loss):
        """The epoch's loss, mean loss terms and item counts of each kind."""
        stats = {"loss": stage_loss}
        for key in LOSS_TERMS:
            if self.term_counts[key]:
                stats[key] = self.term_sums[key] / self.term_counts[key]
        stats.update({f"{k}_items": v for k, v in self.kind_counts.items()})
        return stats

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs the stage; keeps the checkpoint with the best ``sdri_plain``."""
        if stage == sb.Stage.TRAIN:
            self.last_train_stats = self.train_stats(stage_loss)
            return
        stats = {
            "loss": stage_loss,
            "sdri_plain": self.sdri_stats.summarize("average"),
            "si_sdri": self.si_sdri_stats.summarize("average"),
        }
        if stage == sb.Stage.VALID:
            self.hparams.train_logger.log_stats(
                stats_meta={
                    "epoch": epoch,
                    "lr": self.optimizer.param_groups[0]["lr"],
                    "steps": self.optimizer_step,
                },
                train_stats=self.last_train_stats,
                valid_stats=stats,
            )
            self.hparams.checkpointer.save_and_keep_only(
                meta={"sdri_plain": stats["sdri_plain"]}, max_keys=["sdri_plain"]
            )
        else:
            self.hparams.train_logger.log_stats(
                stats_meta={"Epoch loaded": self.hparams.epoch_counter.current},
                test_stats=stats,
            )
        self.last_stats = stats
