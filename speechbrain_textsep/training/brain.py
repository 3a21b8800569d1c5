"""Brain class for query-conditioned mask separation (CLIPSep family).

Authors
 * speechbrain-textsep contributors
"""

import speechbrain as sb
import torch
from speechbrain.utils.metric_stats import MetricStats
from torch.nn.parallel import DistributedDataParallel

from speechbrain_textsep.evaluation.metrics import sdr_improvement
from speechbrain_textsep.models.separator import analyze
from speechbrain_textsep.training.data import pair_partners
from speechbrain_textsep.training.losses import (
    binary_mask_targets,
    clipsep_loss,
    mixture_weight,
    nit_loss,
    ratio_mask_targets,
)

QUERY_MODES = ("text", "image", "hybrid")


class QuerySeparationBrain(sb.Brain):
    """Mix-and-separate training of a query-conditioned mask separator.

    Each batch holds single-source clips; every clip is mixed with a clip of
    another label from the same batch (gains ``U[gain_min, gain_max)`` at
    training, every source divided by 2), and the separator is asked for
    both sources with their queries. The U-Net runs once per mixture.

    Expected ``modules``: ``mask_net`` (e.g.
    :class:`~speechbrain_textsep.models.clipsep.CLIPSep`), ``spectral`` (a
    :class:`~speechbrain_textsep.processing.spectral.SpectralMasking`) and
    ``query_encoder`` (frozen, with ``encode_text`` and ``encode_image``).
    Expected ``hparams``: ``query_mode`` (``text``, ``image`` or ``hybrid``:
    alternate image and text steps, as the authors), ``train_template``
    (``"a photo of {}"``), ``mask_kind`` (``binary``: weighted BCE on binary
    masks, or ``ratio``: weighted L1 on ratio masks), ``nit`` (noise invariant
    training), ``gain_min``/``gain_max``, ``lr_scheduler`` (per step) and
    ``checkpointer``. Optional: ``valid_query_mode`` (defaults to the
    training mode, image for hybrid).
    """

    def _wrap_distributed(self):
        """DDP without SyncBatchNorm when ``sync_batchnorm`` is False.

        SpeechBrain converts every BatchNorm to SyncBatchNorm under DDP, which
        only runs on GPUs (so CPU training with gloo fails) and differs from
        the authors' per-replica BatchNorm statistics.
        """
        if not self.distributed_launch or getattr(self.hparams, "sync_batchnorm", True):
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
        """Query kind of this step: text or image."""
        mode = self.hparams.query_mode
        if mode not in QUERY_MODES:
            raise ValueError(f"query_mode must be one of {QUERY_MODES}, got {mode!r}")
        if stage != sb.Stage.TRAIN:
            default = "image" if mode == "hybrid" else mode
            return getattr(self.hparams, "valid_query_mode", None) or default
        if mode == "hybrid":
            return "image" if self.optimizer_step % 2 == 0 else "text"
        return mode

    def query_embeddings(self, batch, stage):
        """``[B, D]`` embeddings of every clip's query (frozen encoder)."""
        encoder = self.modules.query_encoder
        with torch.no_grad():
            if self.query_mode(stage) == "text":
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

        embeddings = self.query_embeddings(batch, stage)
        queries = torch.stack([embeddings, embeddings[partner]], dim=1)

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
        if "noise_logits" in predictions:
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
            self.sdri_stats.append(batch.id, estimates, predictions["sources"], mixture)
        return loss

    def on_fit_batch_start(self, batch, should_step):
        """Sets the learning rate of the coming optimiser step."""
        if should_step:
            self.hparams.lr_scheduler(self.optimizer)

    def on_stage_start(self, stage, epoch=None):
        """Resets the SDRi tracker at validation and test."""
        if stage != sb.Stage.TRAIN:
            self.sdri_stats = MetricStats(
                metric=lambda est, ref, mix: sdr_improvement(est, ref, mix).mean(-1)
            )

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs the stage and keeps the checkpoint with the best validation SDRi."""
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        stats = {"loss": stage_loss, "sdri": self.sdri_stats.summarize("average")}
        if stage == sb.Stage.VALID:
            lr = self.optimizer.param_groups[0]["lr"]
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch, "lr": lr, "steps": self.optimizer_step},
                train_stats={"loss": self.train_loss},
                valid_stats=stats,
            )
            self.hparams.checkpointer.save_and_keep_only(
                meta={"sdri": stats["sdri"]}, max_keys=["sdri"]
            )
        else:
            self.hparams.train_logger.log_stats(
                stats_meta={"Epoch loaded": self.hparams.epoch_counter.current},
                test_stats=stats,
            )
        self.last_stats = stats
