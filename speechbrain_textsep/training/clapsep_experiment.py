"""What the CLAPSep recipes share: captioned clips, training, test and export.

A recipe's ``train.py`` prepares a manifest of captioned single-source clips
(columns ``ID, audio, caption, duration``), then calls
:func:`run_clapsep_experiment`, which trains with
:class:`~speechbrain_textsep.training.clapsep_brain.CLAPSepBrain`, evaluates
the best checkpoint on ``test_csv`` (0 dB mixtures with a partner of another
caption, as at validation) and writes a model folder for
``CLAPSepSeparator`` (:func:`export_clapsep_model`).

Clips are read at any sample rate and resampled to the model's (32 kHz);
training takes random ``segment_seconds`` crops, validation and test centred
ones; shorter clips are zero-padded (and CLAPSep pads its inputs to 10 s).

Authors
 * speechbrain-textsep contributors
"""

import csv
import json
import os
import shutil

import soundfile as sf
import speechbrain as sb
import torch
import torchaudio
import yaml
from speechbrain.utils.distributed import if_main_process, run_on_main
from speechbrain.utils.logger import get_logger

from speechbrain_textsep.encoders.clap import LAION_CLAP_CHECKPOINTS, TEXT_TEMPLATE
from speechbrain_textsep.templates import template_path
from speechbrain_textsep.training.brain import unwrap
from speechbrain_textsep.training.clapsep_brain import CLAPSepBrain
from speechbrain_textsep.data.clips import crop_bounds, interleave_by_label

logger = get_logger(__name__)

__all__ = [
    "CAPTION_FIELDS",
    "CLAPSEP_KEYS",
    "INFERENCE_HPARAMS",
    "caption_dataset",
    "clap_reference",
    "export_clapsep_model",
    "label_caption_manifest",
    "read_clip_segment",
    "run_clapsep_experiment",
]

#: Inference template of the exported model folders.
INFERENCE_HPARAMS = template_path("clapsep")

#: Columns of the manifests of captioned clips.
CAPTION_FIELDS = ["ID", "audio", "caption", "duration"]

#: Recipe keys of the CLAPSep sizes, copied into the exported hyperparameters.
CLAPSEP_KEYS = (
    "sample_rate",
    "condition_dim",
    "n_fft",
    "hop_length",
    "pad_seconds",
    "lora_rank",
    "lora_alpha",
    "decoder_dim",
    "decoder_depths",
    "decoder_heads",
    "decoder_window",
    "mlp_ratio",
    "drop_path_rate",
    "masknet_dim",
    "masknet_heads",
    "masknet_layers",
    "masknet_ff",
)

#: Sub-folder of an exported model that holds a CLAP not fetchable by name.
CLAP_SUBFOLDER = "clap"
#: File of the trained part of CLAPSep in an exported model folder.
CLAPSEP_FILE = "clapsep.ckpt"


def label_caption_manifest(src_csv, dst_csv, template=TEXT_TEMPLATE):
    """Writes a captioned manifest from a class-labelled one.

    The caption of label ``acoustic_guitar`` is ``"The sound of acoustic
    guitar"`` (``template``, underscores as spaces), as CLAPSep turns class
    labels into queries.

    Arguments
    ---------
    src_csv : str
        Manifest with ``ID, audio, label, duration`` (other columns ignored),
        e.g. SynthMUSIC's.
    dst_csv : str
        Manifest to write (``ID, audio, caption, duration``).
    template : str
        Caption template with a ``{}`` field.

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
    >>> dst = label_caption_manifest(src, os.path.join(folder, "b.csv"))
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
                    "caption": template.format(row["label"].replace("_", " ")),
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
    info = sf.info(path)
    native = int(info.samplerate)
    start, stop = crop_bounds(info.frames, round(segment_seconds * native), train)
    data, _ = sf.read(path, start=start, stop=stop, dtype="float32", always_2d=True)
    wav = torch.from_numpy(data).mean(dim=1)
    if wav.numel() == 0:
        raise ValueError(f"empty audio file: {path}")
    if not torch.isfinite(wav).all():
        raise ValueError(f"non-finite samples in {path}")
    if native != sample_rate:
        wav = torchaudio.functional.resample(wav, native, sample_rate)
    segment = round(segment_seconds * sample_rate)
    if wav.shape[0] < segment:
        wav = torch.nn.functional.pad(wav, (0, segment - wav.shape[0]))
    return wav[:segment]


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


def clap_reference(source):
    """How an exported model names its CLAP: ``(source, in_folder)``.

    A checkpoint name of ``lukewys/laion_clap`` or an ``hf-hub:`` id is
    fetchable by name (a local file named like a known checkpoint is
    referred to by that name); anything else local (a CLAP folder, another
    checkpoint file) or None (random weights) must be copied into the model
    folder.

    Example
    -------
    >>> clap_reference("music_audioset_epoch_15_esc_90.14.pt")
    ('music_audioset_epoch_15_esc_90.14.pt', False)
    >>> clap_reference("/data/my_clap_folder")
    ('clap', True)
    """
    if source is not None:
        source = os.fspath(source)
        name = os.path.basename(source)
        if source.startswith("hf-hub:"):
            return source, False
        if name in LAION_CLAP_CHECKPOINTS and (
            source == name or os.path.isfile(source)
        ):
            return name, False
    return CLAP_SUBFOLDER, True


def set_top_level_values(text, values):
    """Sets top-level scalar or flow-style keys of a HyperPyYAML text.

    Unlike ``hyperpyyaml.resolve_references``, the ``!ref`` tags stay, so
    that overriding e.g. ``clap_source`` when loading the written file
    reaches the objects built from it.

    Arguments
    ---------
    text : str
        The YAML text; every key of ``values`` must be a one-line top-level
        entry of it.
    values : dict
        Key -> plain value (dumped in YAML flow style).

    Returns
    -------
    str

    Example
    -------
    >>> print(set_top_level_values("a: 1\\nb: !ref <a>\\n", {"a": [2, 3]}), end="")
    a: [2, 3]
    b: !ref <a>
    """
    lines = text.splitlines(keepends=True)
    for key, value in values.items():
        dumped = yaml.safe_dump(value, default_flow_style=True, width=1 << 16)
        dumped = dumped.strip().removesuffix("...").strip()
        hits = [i for i, line in enumerate(lines) if line.startswith(f"{key}:")]
        if len(hits) != 1:
            raise KeyError(f"{key!r} is not a top-level entry of the template")
        lines[hits[0]] = f"{key}: {dumped}\n"
    return "".join(lines)


def export_clapsep_model(hparams, out_dir, meta=None):
    """Writes a model folder that ``CLAPSepSeparator.from_hparams`` loads.

    The folder holds ``hyperparams.yaml`` (``inference_hparams``, default
    :data:`INFERENCE_HPARAMS`, with the recipe's :data:`CLAPSEP_KEYS` and its
    CLAP), ``clapsep.ckpt`` (:meth:`CLAPSep.trainable_state_dict`: LoRA,
    tuned biases, decoder, MaskNet) and, for a CLAP that cannot be fetched
    by name (see :func:`clap_reference`), the CLAP itself in ``clap/``
    (:meth:`CLAPQueryEncoder.save_pretrained_dir`), named in
    ``hyperparams.yaml`` by ``clap_source: clap`` and
    ``clap_in_folder: True`` (a path relative to the model folder).

    Arguments
    ---------
    hparams : dict
        Loaded recipe hyperparameters (with ``clap``, ``clapsep``,
        ``clap_source`` and the :data:`CLAPSEP_KEYS`).
    out_dir : str
        Folder to write.
    meta : dict, optional
        Metadata of the exported checkpoint, written to
        ``training_summary.json``.

    Returns
    -------
    str
        Path of the written ``hyperparams.yaml``.
    """
    template = hparams.get("inference_hparams") or INFERENCE_HPARAMS
    if not os.path.isfile(template):
        raise FileNotFoundError(f"inference hyperparameters not found: {template}")
    clap = unwrap(hparams["clap"])
    model = unwrap(hparams["clapsep"])
    overrides = {key: hparams[key] for key in CLAPSEP_KEYS}
    for key in ("decoder_depths", "decoder_heads"):
        overrides[key] = list(overrides[key])
    source, in_folder = clap_reference(hparams.get("clap_source"))
    overrides.update(
        clap_source=source,
        clap_in_folder=in_folder,
        clap_model_cfg={} if in_folder else dict(hparams.get("clap_model_cfg") or {}),
        clap_tokenizer=None if in_folder else hparams.get("clap_tokenizer"),
    )
    os.makedirs(out_dir, exist_ok=True)
    if in_folder:
        target = os.path.join(out_dir, CLAP_SUBFOLDER)
        shutil.rmtree(target, ignore_errors=True)
        clap.save_pretrained_dir(target)
    with open(template) as f:
        text = set_top_level_values(f.read(), overrides)
    path = os.path.join(out_dir, "hyperparams.yaml")
    with open(path, "w") as f:
        f.write(text)
    torch.save(model.trainable_state_dict(), os.path.join(out_dir, CLAPSEP_FILE))
    summary = {
        "clap_source_of_training": str(hparams.get("clap_source")),
        "checkpoint": meta or {},
    }
    with open(os.path.join(out_dir, "training_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    logger.info(f"Exported CLAPSep to {out_dir}")
    return path


def run_clapsep_experiment(hparams, run_opts, export=True):
    """Trains CLAPSep, evaluates the best checkpoint and exports it.

    Arguments
    ---------
    hparams : dict
        Loaded recipe hyperparameters (``train_csv``, ``valid_csv``,
        optional ``test_csv``, ``segment_seconds``, ``sample_rate``,
        ``modules``, ``opt_class``, ``checkpointer``, ``epoch_counter``,
        ``lr_annealing``, ``train_logger``, dataloader options,
        ``model_folder``; see the SynthMUSIC and AudioCaps recipes).
    run_opts : dict
        SpeechBrain run options (device, ``--debug``, ``--precision``...).
    export : bool
        Writes ``model_folder`` (also ``export: False`` in the recipe skips).

    Returns
    -------
    dict
        ``brain``, and ``test`` (loss, SDRi, SI-SDRi of the best checkpoint)
        when ``test_csv`` is given.
    """
    segment, rate = hparams["segment_seconds"], hparams["sample_rate"]
    train_data = caption_dataset(hparams["train_csv"], segment, rate, train=True)
    valid_data = caption_dataset(hparams["valid_csv"], segment, rate, train=False)
    brain = CLAPSepBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    counts = unwrap(brain.modules.clapsep).parameter_counts()
    logger.info(
        f"CLAPSep: {counts['trainable'] / 1e6:.2f} M trainable parameters "
        f"({counts['lora'] / 1e6:.3f} M LoRA and biases) of "
        f"{counts['total'] / 1e6:.2f} M"
    )
    brain.fit(
        brain.hparams.epoch_counter,
        train_data,
        valid_data,
        train_loader_kwargs=hparams["train_dataloader_opts"],
        valid_loader_kwargs=hparams["valid_dataloader_opts"],
    )
    result = {"brain": brain}
    test_csv = hparams.get("test_csv")
    if test_csv:
        test_data = caption_dataset(test_csv, segment, rate, train=False)
        brain.evaluate(
            test_data,
            max_key="si_sdri",
            test_loader_kwargs=hparams["valid_dataloader_opts"],
        )
        result["test"] = dict(brain.last_stats)
        if if_main_process():
            with open(
                os.path.join(hparams["output_folder"], "test_summary.json"), "w"
            ) as f:
                json.dump(
                    {
                        "metrics": "plain SDR (not BSS Eval), dB, 0 dB mixtures",
                        **result["test"],
                    },
                    f,
                    indent=2,
                )
    else:
        brain.checkpointer.recover_if_possible(max_key="si_sdri")
    if export and hparams.get("export", True):
        best = brain.checkpointer.find_checkpoint(max_key="si_sdri")
        run_on_main(
            export_clapsep_model,
            args=[hparams, hparams["model_folder"], best.meta if best else {}],
        )
    return result
