"""Brain class of CLAPSep: 0 dB mix-and-separate with multimodal, bi-valent queries.

Every batch holds single-source clips with a caption each. Each clip (the
target) is mixed at 0 dB with another clip of the batch whose caption
differs (the interferer). The condition is ``[e_pos, e_neg]``
(:func:`~speechbrain_textsep.models.clapsep.clapsep_condition`): the
positive query describes the target, the negative one the interferer.

Training, as in CLAPSep (Ma et al., 2024):

- query mix (:func:`sample_query_sides`): 25 % negative only, 25 % positive
  only, 50 % both; a missing query is a zero vector;
- multimodal queries: ``e = a e_audio + (1 - a) e_text`` with
  ``a ~ U(0, 1)`` per query, ``e_audio`` the CLAP audio embedding of the
  clean target (or interferer) clip, ``e_text`` the one of its caption;
- the query audio is augmented (speed perturbation and a waveform-domain
  SpecAugment, :class:`QueryAugmentation`) at training only. The authors'
  code leaves the augmentation on at validation and test (BUG); here it is
  never applied outside ``sb.Stage.TRAIN``;
- loss :func:`~speechbrain_textsep.training.clapsep_losses.clapsep_loss`
  (``-0.9 SNR - 0.1 SI-SNR``); AdamW on the trainable parameters only;
  ``ReduceLROnPlateau`` on the validation SI-SDRi (SpeechBrain's, fed with
  ``-SI-SDRi``); gradient clipping through SpeechBrain's ``max_grad_norm``;
  bf16 through SpeechBrain's ``--precision bf16``.

Validation is deterministic: the partners are drawn with a fixed seed, both
queries are given, as texts (``a = 0``; ``valid_audio_weight``), with no
augmentation. It reports ``sdri_plain`` and ``si_sdri`` in dB
(:mod:`speechbrain_textsep.utils.metric_keys`), where SDR is the **plain**
SDR ``10 log10(|s|^2 / |s - s_hat|^2)`` (not BSS Eval); ``si_sdri`` selects
the best checkpoint.

Authors
 * speechbrain-textsep contributors
"""

import math

import speechbrain as sb
import torch
from speechbrain.augment.time_domain import SpeedPerturb
from speechbrain.nnet.schedulers import update_learning_rate
from speechbrain.utils.metric_stats import MetricStats

from speechbrain_textsep.data.clips import pair_partners
from speechbrain_textsep.evaluation.metrics import sdr_improvement, si_sdr_improvement
from speechbrain_textsep.models.clapsep import clapsep_condition
from speechbrain_textsep.processing.mixing import mix_at_snr
from speechbrain_textsep.training.brain import MixAndSeparateBrain, unwrap
from speechbrain_textsep.training.clapsep_losses import clapsep_loss

__all__ = [
    "CLAPSepBrain",
    "QUERY_MIX",
    "QueryAugmentation",
    "sample_query_sides",
    "spec_augment_waveform",
]

#: Probabilities of (negative only, positive only, both) at training.
QUERY_MIX = (0.25, 0.25, 0.5)


def sample_query_sides(batch_size, probs=QUERY_MIX, generator=None):
    """Which query sides every item of a batch gets.

    Arguments
    ---------
    batch_size : int
        Number of items.
    probs : sequence of float
        Probabilities of (negative only, positive only, both), summing to 1.
    generator : torch.Generator, optional
        Source of randomness.

    Returns
    -------
    use_positive : torch.Tensor
        ``[B]`` bool.
    use_negative : torch.Tensor
        ``[B]`` bool; never both False.

    Example
    -------
    >>> pos, neg = sample_query_sides(6, generator=torch.Generator().manual_seed(0))
    >>> bool((pos | neg).all())
    True
    >>> sample_query_sides(2, probs=(0.0, 0.0, 1.0))
    (tensor([True, True]), tensor([True, True]))
    """
    probs = torch.as_tensor(probs, dtype=torch.float64)
    if probs.shape != (3,) or (probs < 0).any() or abs(probs.sum() - 1) > 1e-6:
        raise ValueError(
            "query mix must be 3 probabilities (negative only, positive only, "
            f"both) summing to 1, got {probs.tolist()}"
        )
    kind = torch.multinomial(probs, batch_size, replacement=True, generator=generator)
    return kind != 0, kind != 1


def spec_augment_waveform(
    wav,
    n_fft=1024,
    hop_length=320,
    time_masks=2,
    time_width=0.1,
    freq_masks=2,
    freq_width=0.1,
    generator=None,
):
    """SpecAugment on waveforms: zeroes random time and frequency stripes.

    The STFT of every waveform gets ``time_masks`` stripes of at most
    ``time_width`` of its frames and ``freq_masks`` stripes of at most
    ``freq_width`` of its bins set to zero, and is turned back into a
    waveform (same length). The CLAP computes its own mel spectrogram from
    the result, so this is SpecAugment on the query without touching the
    frozen CLAP.

    Arguments
    ---------
    wav : torch.Tensor
        ``[B, L]`` waveforms.
    n_fft : int
        STFT size.
    hop_length : int
        STFT hop.
    time_masks : int
        Time stripes per waveform.
    time_width : float
        Largest time stripe, as a fraction of the frames.
    freq_masks : int
        Frequency stripes per waveform.
    freq_width : float
        Largest frequency stripe, as a fraction of the bins.
    generator : torch.Generator, optional
        Source of randomness.

    Returns
    -------
    torch.Tensor
        ``[B, L]`` augmented waveforms.

    Example
    -------
    >>> wav = torch.randn(2, 8000)
    >>> out = spec_augment_waveform(wav, n_fft=256, hop_length=64)
    >>> out.shape, bool((out - wav).abs().max() > 0)
    (torch.Size([2, 8000]), True)
    """
    length = wav.shape[-1]
    window = torch.hann_window(n_fft, device=wav.device)
    spec = torch.stft(
        wav.float(), n_fft, hop_length, window=window, return_complex=True
    )
    n_freq, n_frames = spec.shape[-2:]
    keep = torch.ones(spec.shape, device=wav.device)
    for item in range(wav.shape[0]):
        for size, count, width, axis in (
            (n_frames, time_masks, time_width, -1),
            (n_freq, freq_masks, freq_width, -2),
        ):
            longest = max(1, int(size * width))
            for _ in range(count):
                span = int(torch.randint(0, longest + 1, (1,), generator=generator))
                start = int(
                    torch.randint(0, size - span + 1, (1,), generator=generator)
                )
                if axis == -1:
                    keep[item, :, start : start + span] = 0
                else:
                    keep[item, start : start + span, :] = 0
    return torch.istft(spec * keep, n_fft, hop_length, window=window, length=length)


class QueryAugmentation(torch.nn.Module):
    """Speed perturbation and SpecAugment of query audio (training only).

    Speed perturbation is SpeechBrain's
    :class:`~speechbrain.augment.time_domain.SpeedPerturb` (one speed per
    batch drawn from ``speeds``, in percent); the result is cropped or
    zero-padded back to the input length. SpecAugment is
    :func:`spec_augment_waveform`. The brain calls this module only at
    training.

    Arguments
    ---------
    sample_rate : int
        Rate of the waveforms.
    speeds : list of int
        Speeds in percent (``[90, 100, 110]``); empty: no speed perturbation.
    spec_augment : bool
        Whether to apply :func:`spec_augment_waveform`.
    time_masks, time_width, freq_masks, freq_width
        See :func:`spec_augment_waveform`.

    Example
    -------
    >>> augment = QueryAugmentation(16000, speeds=[90])
    >>> augment(torch.randn(2, 16000)).shape
    torch.Size([2, 16000])
    """

    def __init__(
        self,
        sample_rate,
        speeds=(90, 100, 110),
        spec_augment=True,
        time_masks=2,
        time_width=0.1,
        freq_masks=2,
        freq_width=0.1,
    ):
        super().__init__()
        self.speed = SpeedPerturb(sample_rate, speeds=list(speeds)) if speeds else None
        self.spec_augment = spec_augment
        self.spec_options = {
            "time_masks": time_masks,
            "time_width": time_width,
            "freq_masks": freq_masks,
            "freq_width": freq_width,
        }

    def forward(self, wav):
        """``[B, L]`` -> ``[B, L]`` augmented waveforms."""
        length = wav.shape[-1]
        if self.speed is not None:
            wav = self.speed(wav)
            if wav.shape[-1] >= length:
                wav = wav[..., :length]
            else:
                wav = torch.nn.functional.pad(wav, (0, length - wav.shape[-1]))
        if self.spec_augment:
            wav = spec_augment_waveform(wav, **self.spec_options)
        return wav


class CLAPSepBrain(MixAndSeparateBrain):
    """Training of :class:`~speechbrain_textsep.models.clapsep.CLAPSep`.

    Expected ``modules``: ``clap`` (a frozen
    :class:`~speechbrain_textsep.encoders.clap.CLAPQueryEncoder`) and
    ``clapsep`` (the model, built from ``clap.audio_branch``).
    Expected ``hparams``: ``sample_rate``, ``checkpointer``,
    ``epoch_counter``, ``train_logger``, ``lr_annealing`` (SpeechBrain's
    ``ReduceLROnPlateau``), ``query_mix`` (:data:`QUERY_MIX` in the paper),
    ``multimodal`` (True: ``a ~ U(0, 1)``; False: text only),
    ``query_augmentation`` (a :class:`QueryAugmentation` or None),
    ``valid_audio_weight`` (``a`` at validation and test, 0 in the paper),
    ``snr_weight`` (0.9 in the paper).

    Batches must provide ``id``, ``sig`` (``[B, L]`` clips at
    ``sample_rate``) and ``caption``.
    """

    # --------------------------------------------------------------- setup
    def init_optimizers(self):
        """One optimiser over the trainable parameters of ``clapsep`` only."""
        params = [p for p in self.modules.clapsep.parameters() if p.requires_grad]
        self.optimizer = self.opt_class(params)
        self.optimizers_dict = {"opt_class": self.optimizer}
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("optimizer", self.optimizer)

    # ------------------------------------------------------------- queries
    def query_audio(self, wav, stage):
        """The query audio: augmented at training, untouched otherwise."""
        augment = self.hparams.query_augmentation
        if stage == sb.Stage.TRAIN and augment is not None:
            with torch.no_grad():
                return augment(wav)
        return wav

    def query_embeddings(self, clips, captions, stage, generator=None):
        """``[B, D]`` query embedding of every clip (text, audio or mixed)."""
        clap = unwrap(self.modules.clap)
        text = clap.encode_text(list(captions)).to(self.device)
        if stage == sb.Stage.TRAIN:
            if not self.hparams.multimodal:
                return text
            weight = torch.rand(len(captions), 1, generator=generator)
        else:
            weight = torch.full((len(captions), 1), self.hparams.valid_audio_weight)
        weight = weight.to(self.device)
        if not bool((weight > 0).any()):
            return text
        audio = clap.encode_audio(
            self.query_audio(clips, stage), sample_rate=self.hparams.sample_rate
        ).to(self.device)
        return weight * audio + (1 - weight) * text

    def make_condition(self, embeddings, partner, stage, generator=None):
        """``[B, 2 D]`` conditions: target positive, interferer negative."""
        positive, negative = embeddings, embeddings[partner]
        if stage == sb.Stage.TRAIN:
            use_pos, use_neg = sample_query_sides(
                len(partner), self.hparams.query_mix, generator
            )
            positive = positive * use_pos[:, None].to(positive)
            negative = negative * use_neg[:, None].to(negative)
        return clapsep_condition(positive, negative, embedding_dim=embeddings.shape[-1])

    # ------------------------------------------------------------ forward
    def compute_forward(self, batch, stage):
        """Mixes every clip with a partner at 0 dB and separates it."""
        batch = batch.to(self.device)
        clips = batch.sig.data.float()
        generator = None
        if stage != sb.Stage.TRAIN:
            generator = torch.Generator().manual_seed(0)
        partner = pair_partners(batch.caption, generator).to(self.device)
        # 0 dB; a mixture peaking above 1 is scaled to 1 with its target; a
        # silent crop (energy 0) leaves its partner out
        mixture, target, _ = mix_at_snr(
            clips, clips[partner], 0.0, peak=1.0, silent="mute"
        )
        embeddings = self.query_embeddings(clips, batch.caption, stage, generator)
        condition = self.make_condition(embeddings, partner, stage, generator)
        estimate = self.modules.clapsep(mixture, condition)
        return {
            "estimate": estimate,
            "target": target,
            "mixture": mixture,
            "partner": partner,
        }

    def compute_objectives(self, predictions, batch, stage):
        """CLAPSep loss; ``sdri_plain`` and ``si_sdri`` outside training."""
        estimate, target = predictions["estimate"], predictions["target"]
        loss = clapsep_loss(estimate, target, snr_weight=self.hparams.snr_weight)
        if stage != sb.Stage.TRAIN:
            mixture = predictions["mixture"]
            self.sdri_stats.append(batch.id, estimate.float(), target, mixture)
            self.si_sdri_stats.append(batch.id, estimate.float(), target, mixture)
        return loss

    # -------------------------------------------------------------- stages
    def on_stage_start(self, stage, epoch=None):
        """Resets the SDRi / SI-SDRi trackers outside training."""
        super().on_stage_start(stage, epoch)
        if stage != sb.Stage.TRAIN:
            self.sdri_stats = MetricStats(metric=sdr_improvement)
            self.si_sdri_stats = MetricStats(metric=si_sdr_improvement)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs, anneals the learning rate on SI-SDRi, keeps the best checkpoint."""
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        stats = {
            "loss": stage_loss,
            "sdri_plain": self.sdri_stats.summarize("average"),
            "si_sdri": self.si_sdri_stats.summarize("average"),
        }
        if not all(math.isfinite(v) for v in stats.values()):
            raise RuntimeError(f"non-finite {stage.name.lower()} statistics: {stats}")
        self.last_stats = stats
        if stage == sb.Stage.VALID:
            old_lr, new_lr = self.hparams.lr_annealing(
                [self.optimizer], epoch, -stats["si_sdri"]
            )
            update_learning_rate(self.optimizer, new_lr)
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch, "lr": old_lr, "steps": self.optimizer_step},
                train_stats={"loss": self.train_loss},
                valid_stats=stats,
            )
            self.checkpointer.save_and_keep_only(
                meta={"si_sdri": stats["si_sdri"], "sdri_plain": stats["sdri_plain"]},
                max_keys=["si_sdri"],
            )
        else:
            self.hparams.train_logger.log_stats(
                stats_meta={"Epoch loaded": self.hparams.epoch_counter.current},
                test_stats=stats,
            )
