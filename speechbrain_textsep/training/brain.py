"""Brain class for query-conditioned mask separation (CLIPSep family).

Authors
 * speechbrain-textsep contributors
"""

import speechbrain as sb
import torch
from speechbrain.utils.logger import get_logger
from speechbrain.utils.metric_stats import MetricStats
from torch.nn.parallel import DistributedDataParallel

from speechbrain_textsep.data.clips import pair_partners
from speechbrain_textsep.evaluation.metrics import sdr_improvement
from speechbrain_textsep.inference.run_folder import is_trainable
from speechbrain_textsep.models.separator import analyze
from speechbrain_textsep.training.losses import (
    binary_mask_targets,
    clipsep_loss,
    mixture_weight,
    nit_loss,
    pit_mask_loss,
    ratio_mask_targets,
)

logger = get_logger(__name__)

QUERY_MODES = ("text", "image", "hybrid", "none")


def unwrap(module):
    """The module inside a ``DistributedDataParallel`` wrapper (or itself)."""
    return module.module if isinstance(module, DistributedDataParallel) else module


def best_permutation(estimates, sources, mixture):
    """Reorders 2 query-free outputs to the assignment with the best mean SDRi.

    Arguments
    ---------
    estimates : torch.Tensor
        ``[B, 2, L]`` outputs of a query-free separator.
    sources : torch.Tensor
        ``[B, 2, L]`` references.
    mixture : torch.Tensor
        ``[B, 2, L]`` the mixture, repeated.

    Returns
    -------
    torch.Tensor
        ``[B, 2, L]`` estimates, output ``n`` aligned with source ``n``.

    Example
    -------
    >>> sources = torch.randn(1, 2, 100)
    >>> mixture = sources.sum(1, keepdim=True).expand(-1, 2, -1)
    >>> out = best_permutation(sources.flip(1), sources, mixture)
    >>> torch.equal(out, sources)
    True
    """
    straight = sdr_improvement(estimates, sources, mixture).mean(-1)
    crossed = sdr_improvement(estimates.flip(1), sources, mixture).mean(-1)
    swap = (crossed > straight)[:, None, None]
    return torch.where(swap, estimates.flip(1), estimates)


class MixAndSeparateBrain(sb.Brain):
    """A Brain whose batches are single-source clips mixed inside the batch.

    A batch of one clip cannot be mixed: such a batch ends an evaluation set
    whose size leaves one clip over (per process under DDP). It is skipped
    with a warning; :meth:`evaluate_batch` then returns the mean loss of the
    stage's previous batches, which leaves SpeechBrain's running average
    unchanged. Subclasses that override :meth:`on_stage_start` call this one.
    """

    def on_stage_start(self, stage, epoch=None):
        """Resets the evaluation losses of the stage."""
        self.eval_losses = []

    def evaluate_batch(self, batch, stage):
        """Evaluates a batch; a batch of one clip is skipped (see the class)."""
        if len(batch.id) < 2:
            logger.warning(
                f"{stage.name.lower()} batch with a single clip ({batch.id[0]}) "
                "skipped: mix-and-separate needs 2 clips"
            )
            losses = self.eval_losses
            return torch.tensor(sum(losses) / len(losses) if losses else 0.0)
        loss = super().evaluate_batch(batch, stage)
        self.eval_losses.append(float(loss))
        return loss


class QuerySeparationBrain(MixAndSeparateBrain):
    """Mix-and-separate training of a query-conditioned mask separator.

    Each batch holds single-source clips; every clip is mixed with a clip of
    another label from the same batch (gains ``U[gain_min, gain_max)`` at
    training, every source divided by 2), and the separator is asked for
    both sources with their queries. The U-Net runs once per mixture.

    Expected ``modules``: ``mask_net`` (e.g.
    :class:`~speechbrain_textsep.models.clipsep.CLIPSep`), ``spectral`` (a
    :class:`~speechbrain_textsep.processing.spectral.SpectralMasking`) and
    ``query_encoder`` (with ``encode_text`` and, for image queries,
    ``encode_image``). A frozen encoder (CLIP, BERT) runs without gradients;
    a trainable one (the LabelSep label embedding) is called through its
    ``forward(labels)`` so that DDP synchronises its gradients.
    Expected ``hparams``: ``query_mode`` (``text``, ``image``, ``hybrid``:
    alternate image and text steps, as the authors, or ``none``: a
    query-free ``mask_net`` such as
    :class:`~speechbrain_textsep.models.pit.PITSep`, trained with the
    permutation-invariant loss, and no ``query_encoder``),
    ``train_template`` (``"a photo of {}"``), ``mask_kind`` (``binary``:
    weighted BCE on binary masks, or ``ratio``: weighted L1 on ratio
    masks), ``nit`` (noise invariant training), ``gain_min``/``gain_max``,
    ``valid_query_mode`` (None: the training mode, image for hybrid),
    ``sync_batchnorm`` (under DDP), ``lr_scheduler`` (per step) and
    ``checkpointer``.

    Validation reports ``sdri_plain`` (plain SDR improvement, see
    :mod:`speechbrain_textsep.utils.metric_keys`), the checkpoint selection
    key; that of a query-free model is measured with the better of the two
    output-to-source assignments.
    """

    #: Fixed-length epoch sampler (``steps_per_epoch``), set by the runner.
    epoch_sampler = None

    def _wrap_distributed(self):
        """DDP without SyncBatchNorm when ``sync_batchnorm`` is False.

        SpeechBrain converts every BatchNorm to SyncBatchNorm under DDP, which
        only runs on GPUs (so CPU training with gloo fails) and differs from
        the authors' per-replica BatchNorm statistics.

        This overrides a private method of SpeechBrain 1.1.2: no public hook
        or run option wraps the modules in DDP without SyncBatchNorm
        (``Brain.on_fit_start`` calls ``_wrap_distributed`` itself, and
        ``_compile`` before it is private too).
        """
        if not self.distributed_launch or self.hparams.sync_batchnorm:
            return super()._wrap_distributed()
        device_ids = None if self.device_type == "cpu" else [self.device]
        for name, module in self.modules.items():
            if any(p.requires_grad for p in module.parameters()):
                self.modules[name] = DistributedDataParallel(
                    module,
                    device_ids=device_ids,
                    find_unused_parameters=self.find_unused_parameters,
                )

    def query_mode(self, stage):
        """Query kind of this step: text, image or none (query-free)."""
        mode = self.hparams.query_mode
        if mode not in QUERY_MODES:
            raise ValueError(f"query_mode must be one of {QUERY_MODES}, got {mode!r}")
        if stage != sb.Stage.TRAIN:
            default = "image" if mode == "hybrid" else mode
            return self.hparams.valid_query_mode or default
        if mode == "hybrid":
            return "image" if self.optimizer_step % 2 == 0 else "text"
        return mode

    def query_embeddings(self, batch, stage):
        """``[B, D]`` embeddings of every clip's query."""
        encoder = self.modules.query_encoder
        mode = self.query_mode(stage)
        if is_trainable(encoder):
            if mode != "text":
                raise ValueError(
                    f"a trainable query encoder ({type(unwrap(encoder)).__name__}"
                    f") takes text labels only, not {mode} queries"
                )
            return encoder(batch.label)
        encoder = unwrap(encoder)
        with torch.no_grad():
            if mode == "text":
                return encoder.encode_text(
                    batch.label, template=self.hparams.train_template
                )
            return encoder.encode_image(batch.query_frames.data)

    def compute_forward(self, batch, stage):
        """Mixes the clips pairwise and predicts both sources' masks."""
        batch = batch.to(self.device)
        clips = batch.sig.data
        if stage == sb.Stage.TRAIN:
            partner = pair_partners(batch.label)
        else:
            partner = pair_partners(batch.label, torch.Generator().manual_seed(0))
        partner = partner.to(self.device)
        sources = torch.stack([clips, clips[partner]], dim=1)
        if stage == sb.Stage.TRAIN:
            low, high = self.hparams.gain_min, self.hparams.gain_max
            sources = sources * (low + (high - low) * torch.rand_like(sources[..., :1]))
        sources = sources / 2
        mixture = sources.sum(dim=1)

        spectral = self.modules.spectral
        with torch.autocast(device_type=self.device_type, enabled=False):
            views = analyze(spectral, mixture)
            source_mags = spectral.warp(spectral.stft(spectral.pad(sources)).abs())
        outputs = {
            "mixture": mixture,
            "sources": sources,
            "views": views,
            "source_mags": source_mags,
        }
        if self.query_mode(stage) == "none":
            if self.hparams.nit:
                raise ValueError(
                    "nit needs queries: it cannot run with query_mode none"
                )
            outputs["logits"] = self.modules.mask_net(views["log_mag"])
            return outputs
        embeddings = self.query_embeddings(batch, stage)
        queries = torch.stack([embeddings, embeddings[partner]], dim=1)
        if self.hparams.nit and stage == sb.Stage.TRAIN:
            outputs["logits"], outputs["noise_logits"] = self.modules.mask_net(
                views["log_mag"], queries, with_noise=True
            )
        else:
            outputs["logits"] = self.modules.mask_net(views["log_mag"], queries)
        return outputs

    def compute_objectives(self, predictions, batch, stage):
        """Mask loss (CLIPSep or NIT); SDRi of the soft-mask estimates at eval."""
        mix_mag = predictions["views"]["mag"]
        if self.hparams.mask_kind == "binary":
            targets, kind = (
                binary_mask_targets(predictions["source_mags"], mix_mag),
                "bce",
            )
        elif self.hparams.mask_kind == "ratio":
            targets, kind = (
                ratio_mask_targets(predictions["source_mags"], mix_mag),
                "l1",
            )
        else:
            raise ValueError(
                f"mask_kind must be 'binary' or 'ratio', got {self.hparams.mask_kind!r}"
            )
        weight = mixture_weight(mix_mag)
        query_free = self.query_mode(stage) == "none"
        if query_free:
            loss, _ = pit_mask_loss(predictions["logits"], targets, weight, kind)
        elif "noise_logits" in predictions:
            loss = nit_loss(
                predictions["logits"],
                predictions["noise_logits"],
                targets,
                weight,
                kind,
            )
        else:
            loss = clipsep_loss(predictions["logits"], targets, weight, kind)

        if stage != sb.Stage.TRAIN:
            with torch.autocast(device_type=self.device_type, enabled=False):
                estimates = self.modules.spectral.apply_mask(
                    predictions["logits"].float().sigmoid(),
                    predictions["views"]["spec"][:, None],
                    predictions["mixture"].shape[-1],
                )
            mixture = predictions["mixture"][:, None].expand_as(estimates)
            if query_free:
                estimates = best_permutation(estimates, predictions["sources"], mixture)
            self.sdri_stats.append(batch.id, estimates, predictions["sources"], mixture)
        return loss

    def on_fit_batch_start(self, batch, should_step):
        """Sets the learning rate of the coming optimiser step."""
        if should_step:
            self.hparams.lr_scheduler(self.optimizer)

    def on_stage_start(self, stage, epoch=None):
        """Resets the SDRi tracker at validation and test.

        At training, sets the epoch of a fixed-length epoch sampler
        (``epoch_sampler``, see ``steps_per_epoch`` in the recipes), which
        SpeechBrain does not reach outside DDP.
        """
        super().on_stage_start(stage, epoch)
        if stage == sb.Stage.TRAIN and self.epoch_sampler and epoch is not None:
            self.epoch_sampler.set_epoch(epoch)
        if stage != sb.Stage.TRAIN:
            self.sdri_stats = MetricStats(
                metric=lambda est, ref, mix: sdr_improvement(est, ref, mix).mean(-1)
            )

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs the stage; keeps the checkpoint with the best ``sdri_plain``."""
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        stats = {
            "loss": stage_loss,
            "sdri_plain": self.sdri_stats.summarize("average"),
        }
        if stage == sb.Stage.VALID:
            lr = self.optimizer.param_groups[0]["lr"]
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch, "lr": lr, "steps": self.optimizer_step},
                train_stats={"loss": self.train_loss},
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
