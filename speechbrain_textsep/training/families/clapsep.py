"""The CLAPSep family: captioned clips, 0 dB mix-and-separate, plain-SDR test.

A CLAPSep recipe prepares a manifest of captioned single-source clips
(columns ``ID, audio, caption, duration``; :func:`label_caption_manifest`
writes one from a class-labelled manifest), trains with
:class:`~speechbrain_textsep.training.clapsep_brain.CLAPSepBrain` and is
tested on ``test_csv`` as it is validated: every clip mixed at 0 dB with a
partner of another caption (drawn with a fixed seed), both queries given
(the positive one describes the target, the negative one the partner), as
texts or audio (``valid_audio_weight``), scored with plain SDR and SI-SDR
improvements. Its model folder holds the trained part of CLAPSep and, when
the CLAP cannot be fetched by name, the CLAP in ``clap/``.

Clips are read at any sample rate and resampled to the model's (32 kHz);
training takes random ``segment_seconds`` crops, validation and test centred
ones; shorter clips are zero-padded (and CLAPSep pads its inputs to 10 s).

Authors
 * speechbrain-textsep contributors
"""

import csv
import os

import speechbrain as sb
import torch
from speechbrain.utils.logger import get_logger

from speechbrain_textsep.data.clips import crop_bounds, interleave_by_label
from speechbrain_textsep.evaluation.metrics import (
    sdr,
    sdr_improvement,
    si_sdr,
    si_sdr_improvement,
)
from speechbrain_textsep.evaluation.report import write_item_results
from speechbrain_textsep.processing.audio_io import audio_info, fit_length, read_audio
from speechbrain_textsep.training.brain import unwrap
from speechbrain_textsep.training.clapsep_brain import CLAPSepBrain
from speechbrain_textsep.training.families.base import Family
from speechbrain_textsep.utils.captions import label_caption

logger = get_logger(__name__)

__all__ = [
    "CAPTION_FIELDS",
    "CLAPSepFamily",
    "caption_dataset",
    "label_caption_manifest",
    "read_clip_segment",
]

#: Columns of the manifests of captioned clips.
CAPTION_FIELDS = ["ID", "audio", "caption", "duration"]


def label_caption_manifest(src_csv, dst_csv, template):
    """Writes a captioned manifest from a class-labelled one.

    The caption of label ``acoustic_guitar`` is ``"The sound of acoustic
    guitar"`` with the template ``"The sound of {}"``
    (:func:`~speechbrain_textsep.utils.captions.label_caption`).

    Arguments
    ---------
    src_csv : str
        Manifest with ``ID, audio, label, duration`` (other columns ignored),
        e.g. SynthMUSIC's.
    dst_csv : str
        Manifest to write (``ID, audio, caption, duration``).
    template : str
        Caption template with a ``{}`` field (the recipe's
        ``caption_template``).

    Returns
    -------
    str
        ``dst_csv``.

    Example
    -------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> src = os.path.join(folder, "a.csv")
    >>> with open(src, "w") as f:
    ...     _ = f.write("ID,audio,label,duration\\nx,x.wav,acoustic_guitar,2.0\\n")
    >>> dst = label_caption_manifest(src, os.path.join(folder, "b.csv"),
    ...                              "The sound of {}")
    >>> open(dst).read().splitlines()[1]
    'x,x.wav,The sound of acoustic guitar,2.0'
    """
    if not os.path.isfile(src_csv):
        raise FileNotFoundError(f"manifest not found: {src_csv}")
    with open(src_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and "label" not in rows[0]:
        raise ValueError(f"{src_csv} has no 'label' column")
    os.makedirs(os.path.dirname(os.path.abspath(dst_csv)), exist_ok=True)
    with open(dst_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CAPTION_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    "ID": row["ID"],
                    "audio": row["audio"],
                    "caption": label_caption(row["label"], template),
                    "duration": row["duration"],
                }
            )
    return dst_csv


def read_clip_segment(path, segment_seconds, sample_rate, train):
    """A crop of a clip, mono, at ``sample_rate``, exactly ``segment_seconds``.

    Arguments
    ---------
    path : str
        Audio file (any format and rate libsndfile reads).
    segment_seconds : float
        Length of the crop; shorter clips are zero-padded at the end.
    sample_rate : int
        Rate of the output.
    train : bool
        Random crop if True, centred otherwise.

    Returns
    -------
    torch.Tensor
        ``[round(segment_seconds * sample_rate)]`` float32 samples.
    """
    info = audio_info(path)
    native = int(info.samplerate)
    start, stop = crop_bounds(info.frames, round(segment_seconds * native), train)
    wav, _ = read_audio(path, start, stop, mono=True, sample_rate=sample_rate)
    return fit_length(wav, round(segment_seconds * sample_rate))


def caption_dataset(csv_path, segment_seconds, sample_rate, train):
    """A :class:`DynamicItemDataset` of captioned single-source clips.

    Arguments
    ---------
    csv_path : str
        Manifest with ``ID, audio, caption, duration``.
    segment_seconds : float
        Length of the crops (10 s in CLAPSep).
    sample_rate : int
        Rate of the model (32000).
    train : bool
        Random crops if True; otherwise centred crops, and the items
        interleaved by caption (:func:`interleave_by_label`) so that every
        evaluation batch of a manifest sorted by class mixes clips of
        different captions.

    Returns
    -------
    speechbrain.dataio.dataset.DynamicItemDataset
        Items with ``id``, ``sig`` and ``caption``.
    """
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"manifest not found: {csv_path}")
    items = sb.dataio.dataio.load_data_csv(csv_path)
    if items and "caption" not in next(iter(items.values())):
        raise ValueError(f"{csv_path} has no 'caption' column ({CAPTION_FIELDS})")
    if not train:
        order = interleave_by_label(
            list(items), [item["caption"] for item in items.values()]
        )
        items = {key: items[key] for key in order}
    data = sb.dataio.dataset.DynamicItemDataset(items)

    @sb.utils.data_pipeline.takes("audio")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(path):
        return read_clip_segment(path, segment_seconds, sample_rate, train)

    data.add_dynamic_item(audio_pipeline)
    sb.dataio.dataset.set_output_keys([data], ["id", "sig", "caption"])
    return data


def _query_kind(audio_weight):
    """Query kind of the test: both queries (P+N), text, audio or mixed."""
    if audio_weight == 0:
        return "text_PN"
    return "audio_PN" if audio_weight == 1 else f"text_audio_{audio_weight:g}_PN"


class CLAPSepFamily(Family):
    """CLAPSep (``model_kind: clapsep``)."""

    kinds = ("clapsep",)
    brain_class = CLAPSepBrain

    def _captions(self, key, train):
        hp = self.hparams
        return caption_dataset(hp[key], hp["segment_seconds"], hp["sample_rate"], train)

    def datasets(self):
        """Captioned clips of ``train_csv`` and ``valid_csv``."""
        return self._captions("train_csv", True), self._captions("valid_csv", False)

    def prepare_fit(self, brain, train_data):
        """Logs the size of the trainable part."""
        counts = unwrap(brain.modules.clapsep).parameter_counts()
        logger.info(
            f"CLAPSep: {counts['trainable'] / 1e6:.2f} M trainable parameters "
            f"({counts['lora'] / 1e6:.3f} M LoRA and biases) of "
            f"{counts['total'] / 1e6:.2f} M"
        )
        return super().prepare_fit(brain, train_data)

    def evaluate(self, brain):
        """The validation protocol on ``test_csv``, per item."""
        kind = _query_kind(self.hparams["valid_audio_weight"])
        data = self._captions("test_csv", False)
        loader = sb.dataio.dataloader.make_dataloader(
            data, **self.hparams["valid_dataloader_opts"]
        )
        rows = []
        for batch in loader:
            if len(batch.id) < 2:
                logger.warning(f"test batch with a single clip ({batch.id[0]}) skipped")
                continue
            with torch.no_grad(), brain.evaluation_ctx:
                out = brain.compute_forward(batch, sb.Stage.TEST)
            rows += _score_batch(batch, out, kind)
        return {
            "test": {kind: write_item_results(rows, self.results_csv("test", kind))}
        }

    def export_options(self):
        """The frozen CLAP is already built: saved as it is if it goes in."""
        return {"clap_encoder": unwrap(self.hparams["clap"])}


def _score_batch(batch, out, kind):
    """Per-item rows (result schema) of one test batch."""
    estimate, target = out["estimate"].float().cpu(), out["target"].float().cpu()
    mixture = out["mixture"].float().cpu()
    scores = {
        "sdr_plain": sdr(estimate, target),
        "sdri_plain": sdr_improvement(estimate, target, mixture),
        "si_sdr": si_sdr(estimate, target),
        "si_sdri": si_sdr_improvement(estimate, target, mixture),
    }
    partner = out["partner"].tolist()
    return [
        {
            "item": f"{batch.id[i]}+{batch.id[j]}",
            "query_kind": kind,
            "query": batch.caption[i],
            "target": batch.id[i],
            "interferer": batch.id[j],
            **{key: float(value[i]) for key, value in scores.items()},
        }
        for i, j in enumerate(partner)
    ]
