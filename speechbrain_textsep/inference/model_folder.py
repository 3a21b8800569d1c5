"""One writer and one format for every model folder of the package.

Every model folder (a recipe's export at the end of training, ``textsep
export RUN``, ``textsep import clipsep|clapsep``) is written by
:func:`write_model_folder`, and holds (every path it names is inside it,
relative, as :mod:`~speechbrain_textsep.inference.loading` requires):

- ``hyperparams.yaml``: the shipped template of its family
  (:func:`speechbrain_textsep.templates.template_path`) with the model's
  values, its references resolved by HyperPyYAML (``resolve_references``:
  every ``!ref`` replaced by its value, no line of the template edited);
  ``model_kind`` names the family. A CLAP folder has none: it is a
  :class:`~speechbrain_textsep.encoders.clap.CLAPQueryEncoder` folder;
- the trained weights, as state dicts for ``torch.load(weights_only=True)``;
- ``test_summary.json``, the test summary of the run in the result schema of
  :mod:`speechbrain_textsep.evaluation.report`, when there is one;
- ``README.md``, a model card: the family, how to load it, its training data
  and its test figures with the description of every metric.

============  ===============  ==============================================
model_kind    template         weights
============  ===============  ==============================================
clipsep       ``clipsep``      ``mask_net.ckpt``; ``query_encoder.ckpt`` when
                               the CLIP cannot be fetched by open_clip
labelsep      ``labelsep``     ``mask_net.ckpt``, ``query_encoder.ckpt``
                               (label embedding and label list)
bertsep       ``bertsep``      ``mask_net.ckpt``; ``bert/`` (a copy of a
                               local BERT folder, ``bert_source: bert``);
                               a hub BERT is fetched by name
clapsep       ``clapsep``      ``clapsep.ckpt`` (the trained part); ``clap/``
                               (a CLAP folder) when the CLAP cannot be
                               fetched by name: ``clap_source: clap``,
                               ``clap_in_folder: true``, a path relative to
                               the model folder that the loader resolves
clap          (none)           ``clap_config.json``, ``clap_model.pt`` and the
                               tokenizer files
============  ===============  ==============================================

``pit`` models take no queries: they have no folder for the pretrained
interfaces (evaluate their recipe output folder instead).

Authors
 * speechbrain-textsep contributors
"""

import csv
import json
import os
import shutil

import torch
import yaml
from hyperpyyaml import resolve_references
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_textsep.inference.run_folder import model_kind, selection_key
from speechbrain_textsep.templates import template_path
from speechbrain_textsep.utils.metric_keys import describe

__all__ = [
    "EXPORTABLE_KINDS",
    "best_checkpoint",
    "check_exportable",
    "clap_reference",
    "export_checkpoint",
    "export_recipe_run",
    "load_model_folder",
    "read_plain_hparams",
    "recipe_values",
    "write_model_card",
    "write_model_folder",
]

#: Model kinds that have a model folder.
EXPORTABLE_KINDS = ("clipsep", "labelsep", "bertsep", "clapsep", "clap")
#: Family names of the model kinds, for the model cards.
FAMILY_NAMES = {
    "clipsep": "CLIPSep",
    "labelsep": "LabelSep",
    "bertsep": "BERTSep",
    "pit": "PIT",
    "clapsep": "CLAPSep",
    "clap": "CLAP",
}
#: Weights of a run's checkpoint that a model folder keeps, per model kind.
WEIGHTS = {
    "clipsep": ("mask_net", "query_encoder"),
    "labelsep": ("mask_net", "query_encoder"),
    "bertsep": ("mask_net",),
    "clapsep": ("clapsep",),
    "clap": ("clap",),
}
#: Recipe keys that describe the separator (a recipe must have them all).
CLIPSEP_MODEL_KEYS = (
    "sample_rate",
    "n_fft",
    "hop_length",
    "win_length",
    "n_warped",
    "levels",
    "ngf",
    "n_maps",
    "query_dim",
)
REQUIRED_KEYS = {
    "clipsep": CLIPSEP_MODEL_KEYS + ("clip_model", "clip_pretrained", "clip_model_cfg"),
    "labelsep": CLIPSEP_MODEL_KEYS,
    "bertsep": CLIPSEP_MODEL_KEYS + ("bert_source", "bert_pooling"),
    "clapsep": (
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
        "clap_source",
        "clap_model_cfg",
        "clap_tokenizer",
    ),
}
#: Template keys that are settings of the folder, never copied from a recipe.
INFERENCE_ONLY_KEYS = (
    "interface",
    "window_seconds",
    "overlap_seconds",
    "window_batch_size",
    "query_encoder_in_folder",
    "labels",
    "text_prompts",
    "bert_savedir",
    "clap_source",
    "clap_in_folder",
    "clap_model_cfg",
    "clap_tokenizer",
)
#: Parameters of a mask network used at training only (the NIT noise heads).
TRAINING_ONLY_PREFIXES = ("noise_heads.",)
#: Sub-folder of a CLAPSep model folder that holds a CLAP not fetchable by name.
CLAP_SUBFOLDER = "clap"
#: Sub-folder of a BERTSep model folder that holds a local BERT folder.
BERT_SUBFOLDER = "bert"
HPARAMS_FILE = "hyperparams.yaml"
SUMMARY_FILE = "test_summary.json"
CARD_FILE = "README.md"


class _PlainLoader(yaml.SafeLoader):
    """Reads plain values of a HyperPyYAML file; tagged objects become None."""


_PlainLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def read_plain_hparams(path):
    """Plain values (numbers, strings, lists, dicts) of a HyperPyYAML file.

    Objects (``!new:`` ...) are not built: exporting a run needs none of
    them, nor the network access a pretrained encoder would need.

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "hyperparams.yaml")
    >>> with open(path, "w") as f:
    ...     _ = f.write("ngf: 16\\nmodel: !new:torch.nn.Linear [2, 2]\\n")
    >>> read_plain_hparams(path)
    {'ngf': 16, 'model': None}
    """
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=_PlainLoader) or {}


def check_exportable(kind):
    """The model kind, if it has a model folder; a clear error otherwise.

    Example
    -------
    >>> check_exportable("clap")
    'clap'
    >>> check_exportable("pit")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: a pit model takes no queries: it has no model folder for ...
    """
    kind = model_kind({"model_kind": kind})
    if kind not in EXPORTABLE_KINDS:
        raise ValueError(
            f"a {kind} model takes no queries: it has no model folder for the "
            "pretrained interfaces (QuerySeparator, CLAPSepSeparator). Evaluate "
            "its recipe output folder instead (the recipe's evaluate.py --model "
            "RUN, or python -m speechbrain_textsep.evaluation.protocol)"
        )
    return kind


def clap_reference(source):
    """How a CLAPSep model folder names its CLAP: ``(source, in_folder)``.

    A checkpoint name of ``lukewys/laion_clap`` or an ``hf-hub:`` id is
    fetchable by name (a local file named like a known checkpoint is
    referred to by that name); anything else local (a CLAP folder, another
    checkpoint file) or None (random weights) must be copied into the model
    folder, as :data:`CLAP_SUBFOLDER`.

    Example
    -------
    >>> clap_reference("music_audioset_epoch_15_esc_90.14.pt")
    ('music_audioset_epoch_15_esc_90.14.pt', False)
    >>> clap_reference("/data/my_clap_folder")
    ('clap', True)
    """
    from speechbrain_textsep.encoders.clap import LAION_CLAP_CHECKPOINTS

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


# --------------------------------------------------------------- the writer
def write_model_folder(
    out_dir,
    kind,
    values=None,
    weights=None,
    title=None,
    training=None,
    summary=None,
    template=None,
    write_files=None,
):
    """Writes a model folder (see the module docstring); the one writer.

    Arguments
    ---------
    out_dir : str or os.PathLike
        Folder to write (created; files of the same names are replaced).
    kind : str
        The ``model_kind`` (:data:`EXPORTABLE_KINDS`).
    values : dict, optional
        Values of the template's keys that describe this model (sizes,
        encoder names...), resolved into ``hyperparams.yaml``; every key
        must be a key of the template. ``model_kind`` is set.
    weights : dict, optional
        ``{name: state dict}`` written as ``<name>.ckpt`` (the training-only
        parameters of a ``mask_net`` are left out).
    title : str, optional
        Title of the model card (default: the family's name).
    training : str, optional
        The "Training" section of the card (data, schedule, checkpoint).
    summary : dict, optional
        Test summary in the result schema, written as ``test_summary.json``
        and shown in the card.
    template : str, optional
        Template to use instead of the family's shipped one.
    write_files : callable, optional
        ``write_files(out_dir)`` writes the folder's other files (the CLAP
        folder of a CLAP, the ``clap/`` sub-folder of a CLAPSep).

    Returns
    -------
    str
        ``out_dir``.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_textsep.models.clipsep import CLIPSep
    >>> from speechbrain_textsep.models.unet import AudioUNet
    >>> net = CLIPSep(AudioUNet(out_channels=4, ngf=2, levels=3), 512, 4)
    >>> folder = write_model_folder(
    ...     tempfile.mkdtemp(), "clipsep", {"levels": 3, "ngf": 2, "n_maps": 4},
    ...     {"mask_net": net.state_dict()}, training="Random weights.")
    >>> sorted(os.listdir(folder))
    ['README.md', 'hyperparams.yaml', 'mask_net.ckpt']
    >>> read_plain_hparams(os.path.join(folder, "hyperparams.yaml"))["ngf"]
    2
    """
    kind = check_exportable(kind)
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    described = {}
    if kind != "clap":
        template = template or template_path(kind)
        described = _write_hparams(
            out_dir, template, {**(values or {}), "model_kind": kind}
        )
    for name, state in (weights or {}).items():
        if name == "mask_net":
            state = {
                key: value
                for key, value in state.items()
                if not key.startswith(TRAINING_ONLY_PREFIXES)
            }
        _atomic_save(state, os.path.join(out_dir, f"{name}.ckpt"))
    if write_files is not None:
        write_files(out_dir)
    if kind == "clap":
        described = _clap_description_values(out_dir)
    if summary is not None:
        _check_summary(summary)
        with open(os.path.join(out_dir, SUMMARY_FILE), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
            f.write("\n")
    write_model_card(out_dir, kind, described, title, training, summary)
    return out_dir


def _write_hparams(out_dir, template, values):
    """Writes the resolved ``hyperparams.yaml``; returns its plain values."""
    if not os.path.isfile(template):
        raise FileNotFoundError(f"inference hyperparameters not found: {template}")
    with open(template, encoding="utf-8") as f:
        resolved = resolve_references(f, values, overrides_must_match=True)
    path = os.path.join(out_dir, HPARAMS_FILE)
    with open(path, "w", encoding="utf-8") as f:
        f.write(resolved.getvalue())
    return read_plain_hparams(path)


def _atomic_save(state, path):
    """``torch.save`` under a temporary name, then renamed."""
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def _clap_description_values(out_dir):
    """The model config of a written CLAP folder (for the card)."""
    with open(os.path.join(out_dir, "clap_config.json"), encoding="utf-8") as f:
        return json.load(f)["model_cfg"]


def _check_summary(summary):
    missing = [
        key for key in ("model_kind", "metrics_doc", "results") if key not in summary
    ]
    if missing:
        raise ValueError(
            "the test summary is not in the result schema of "
            f"speechbrain_textsep.evaluation.report (missing {missing}): "
            "evaluate the run again"
        )


# ------------------------------------------------------------- model card
USAGE = {
    "QuerySeparator": (
        "`speechbrain_textsep.inference.QuerySeparator.from_hparams(source=...)` "
        "or `textsep separate IN --model <this folder> --query TEXT --out DIR`."
    ),
    "CLAPSepSeparator": (
        "`speechbrain_textsep.inference.CLAPSepSeparator.from_hparams(source=...)` "
        "or `textsep separate IN --model <this folder> --query TEXT "
        "[--negative TEXT] [--audio-query WAV] --out DIR`."
    ),
    "clap": "`speechbrain_textsep.encoders.clap.CLAPQueryEncoder(<this folder>)`.",
}


def _describe_model(kind, hp):
    """One paragraph on what the model is (from its plain hyperparameters)."""
    if kind == "clap":
        htsat, roberta = hp.get("htsat", {}), hp.get("roberta", {})
        return (
            "A LAION-CLAP (laion_clap's CLAP: HTSAT audio branch of width "
            f"{htsat.get('embed_dim', 'default')}, RoBERTa text branch of width "
            f"{roberta.get('hidden_size', 'default')}, "
            f"{hp.get('joint_embed_shape')}-d joint space), the query encoder of "
            "CLAPSep: L2-normalised text and audio embeddings."
        )
    if kind == "clapsep":
        clap = (
            "the CLAP in `clap/`"
            if hp.get("clap_in_folder")
            else f"the CLAP `{hp.get('clap_source')}`"
        )
        return (
            "A CLAPSep separator (Ma et al., 2024): LoRA-tuned copy (rank "
            f"{hp.get('lora_rank')}) of the HTSAT of {clap}, Swin decoder of width "
            f"{hp.get('decoder_dim')}, MaskNet of width {hp.get('masknet_dim')}; "
            f"{hp.get('sample_rate')} Hz. Text and audio queries, positive and "
            "negative."
        )
    encoder = {
        "clipsep": "a CLIP trained or initialised locally (weights in this folder)"
        if hp.get("query_encoder_in_folder")
        else f"open_clip {hp.get('clip_model')} / {hp.get('clip_pretrained')}",
        "labelsep": "a label embedding trained with the model (weights in this "
        f"folder; labels: {', '.join(hp.get('labels') or [])})",
        "bertsep": "a frozen BERT ("
        + (
            "in `bert/`"
            if hp.get("bert_source") == BERT_SUBFOLDER
            else f"`{hp.get('bert_source')}`"
        )
        + ")",
    }[kind]
    return (
        f"A {FAMILY_NAMES[kind]} separator (CLIPSep family, Dong et al., ICLR "
        f"2023): U-Net of {hp.get('levels')} levels, ngf {hp.get('ngf')}, "
        f"{hp.get('n_maps')} maps; query encoder: {encoder}; "
        f"{hp.get('sample_rate')} Hz."
    )


def _format(value):
    return "–" if value is None else f"{value:.2f}"


def _result_lines(summary):
    """Markdown tables of a summary in the result schema, and the metrics."""
    lines = []
    for test_set, kinds in summary["results"].items():
        for query_kind, metrics in kinds.items():
            lines += [
                "",
                f"`{test_set}`, {query_kind} queries:",
                "",
                "| metric | mean | SEM | median | count |",
                "|---|---|---|---|---|",
            ]
            for key, stats in metrics.items():
                lines.append(
                    f"| {key} | {_format(stats['mean'])} | {_format(stats['sem'])}"
                    f" | {_format(stats['median'])} | {stats['count']} |"
                )
    lines += ["", "Metrics (dB unless said otherwise):", ""]
    lines += [f"- `{key}`: {text}" for key, text in summary["metrics_doc"].items()]
    return lines


def write_model_card(out_dir, kind, hparams, title=None, training=None, summary=None):
    """Writes ``README.md``: the family, how to load it, training and figures.

    Arguments
    ---------
    out_dir : str
        The model folder.
    kind : str
        The ``model_kind``.
    hparams : dict
        Plain values of the folder's ``hyperparams.yaml`` (the model config
        for a CLAP).
    title : str, optional
        Title (default: the family's name).
    training : str, optional
        The training section.
    summary : dict, optional
        Test summary in the result schema.

    Returns
    -------
    str
        Path of the card.
    """
    interface = "clap" if kind == "clap" else hparams.get("interface")
    lines = [
        "---",
        "library_name: speechbrain",
        f"tags: [audio-source-separation, text-queried-separation, {kind}]",
        "---",
        f"# {title or FAMILY_NAMES[kind] + ' model'}",
        "",
        _describe_model(kind, hparams),
        "",
        "## Usage",
        "",
        "Load it with " + USAGE.get(interface, f"the `{interface}` interface."),
        "",
        "## Training",
        "",
        training or "Unknown.",
        "",
        "## Test results",
    ]
    if summary:
        lines += _result_lines(summary)
    else:
        lines += ["", "None (no test evaluation came with these weights)."]
    path = os.path.join(out_dir, CARD_FILE)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


# --------------------------------------------------- a recipe -> a folder
def plain_keys(template):
    """Top-level keys of a HyperPyYAML file whose values are plain (no tag).

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "t.yaml")
    >>> with open(path, "w") as f:
    ...     _ = f.write("a: 1\\nb: !ref <a>\\nc: {d: !ref <a>}\\ne: [1, 2]\\n")
    >>> plain_keys(path)
    ['a', 'e']
    """
    with open(template, encoding="utf-8") as f:
        root = yaml.compose(f, Loader=yaml.SafeLoader)
    return [
        key.value
        for key, value in (root.value if root is not None else [])
        if not _has_tag(value)
    ]


def _has_tag(node):
    """True if a YAML node or any node inside it has a ``!`` tag."""
    if (node.tag or "").startswith("!"):
        return True
    if isinstance(node, yaml.MappingNode):
        return any(_has_tag(k) or _has_tag(v) for k, v in node.value)
    if isinstance(node, yaml.SequenceNode):
        return any(_has_tag(item) for item in node.value)
    return False


def _copied_values(hparams, template, kind):
    """Plain template keys that the recipe also has (its model), checked."""
    missing = [key for key in REQUIRED_KEYS.get(kind, ()) if key not in hparams]
    if missing:
        raise ValueError(f"the recipe lacks {missing} for a {kind} model")
    return {
        key: hparams[key]
        for key in plain_keys(template)
        if key in hparams and key not in INFERENCE_ONLY_KEYS
    }


def recipe_values(hparams, states, template):
    """The template values of a model from its recipe and checkpoint.

    Arguments
    ---------
    hparams : dict
        Recipe hyperparameters (plain values suffice, see
        :func:`read_plain_hparams`; a loaded recipe dict works too).
    states : dict
        The checkpoint's weights (``{name: state dict}``).
    template : str
        The inference template.

    Returns
    -------
    dict
        Values for :func:`write_model_folder`.
    """
    kind = model_kind(hparams)
    values = _copied_values(hparams, template, kind)
    if kind == "clapsep":
        source, in_folder = clap_reference(hparams["clap_source"])
        if _is_local(hparams["clap_tokenizer"]):  # goes in with the CLAP
            source, in_folder = CLAP_SUBFOLDER, True
        values.update(
            clap_source=source,
            clap_in_folder=in_folder,
            clap_model_cfg={} if in_folder else dict(hparams["clap_model_cfg"] or {}),
            clap_tokenizer=None if in_folder else hparams["clap_tokenizer"],
        )
        for key in ("decoder_depths", "decoder_heads"):
            values[key] = list(values[key])
        return values
    if "eval_prompts" in hparams:
        values["text_prompts"] = list(hparams["eval_prompts"])
    local = "query_encoder" in states
    values["query_encoder_in_folder"] = local
    if kind == "clipsep" and local:
        values["clip_pretrained"] = None
    if kind == "labelsep":
        values["labels"] = list(states["query_encoder"]["_extra_state"]["labels"])
    if kind == "bertsep" and _is_local(hparams["bert_source"]):
        values["bert_source"] = BERT_SUBFOLDER
    return values


def _is_local(path):
    """True for a path that exists here (a local folder or file)."""
    return path is not None and os.path.exists(os.fspath(path))


def _copy_writer(source, name):
    """``write_files`` that copies a local folder into the model folder."""

    def write(out_dir):
        target = os.path.join(out_dir, name)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, symlinks=False)

    return write


def _training_data(hparams):
    """One line on the training clips of a run (count and classes if readable)."""
    train_csv = hparams["train_csv"]
    if not train_csv or not os.path.isfile(train_csv):
        return f"the clips listed in `{train_csv}` (not readable from here)"
    with open(train_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if rows and "label" in rows[0]:
        labels = sorted({row["label"] for row in rows})
        return (
            f"{len(rows)} single-source clips of {len(labels)} classes "
            f"({', '.join(labels)}) listed in `{train_csv}`"
        )
    captions = {row.get("caption") for row in rows}
    return (
        f"{len(rows)} captioned single-source clips ({len(captions)} distinct "
        f"captions) listed in `{train_csv}`"
    )


def run_training_text(hparams, meta):
    """The "Training" section of the card of a recipe run's checkpoint.

    Arguments
    ---------
    hparams : dict
        Recipe hyperparameters (``train_csv``, ``seed``,
        ``number_of_epochs``, ``batch_size``, ``model_kind``).
    meta : dict
        Metadata of the exported checkpoint (its validation metrics).

    Returns
    -------
    str
    """
    key = selection_key(model_kind(hparams))
    value = meta.get(key)
    chosen = "unknown" if value is None else f"{float(value):.4g}"
    return (
        f"{_training_data(hparams)}; seed {hparams['seed']}, "
        f"{hparams['number_of_epochs']} epochs of batch {hparams['batch_size']}. "
        f"Exported checkpoint: the best validation `{key}` ({chosen}; "
        f"{describe(key)})."
    )


def _clap_folder_writer(hparams, encoder):
    """``write_files`` of a CLAPSep folder whose CLAP goes into ``clap/``."""
    if encoder is None:
        from speechbrain_textsep.encoders.clap import CLAPQueryEncoder

        if hparams["clap_source"] is None:
            raise ValueError(
                "the run's CLAP has random weights (clap_source: null) that no "
                "checkpoint holds: its model folder cannot be written"
            )
        encoder = CLAPQueryEncoder(
            hparams["clap_source"],
            model_cfg=hparams["clap_model_cfg"] or None,
            tokenizer=hparams["clap_tokenizer"],
        )

    def write(out_dir):
        target = os.path.join(out_dir, CLAP_SUBFOLDER)
        shutil.rmtree(target, ignore_errors=True)
        encoder.save_pretrained_dir(target)

    return write


def _clap_writer(hparams, state):
    """``write_files`` of a CLAP run: its CLAP folder from the checkpoint."""
    from speechbrain_textsep.encoders.clap import (
        create_clap,
        load_clap_tokenizer,
        save_clap_dir,
    )

    clap = create_clap(hparams["clap_model_cfg"])
    clap.load_state_dict(state, strict=True)
    tokenizer = load_clap_tokenizer(hparams["tokenizer_folder"])

    def write(out_dir):
        save_clap_dir(out_dir, clap, hparams["clap_model_cfg"], tokenizer)

    return write


def export_checkpoint(
    hparams, checkpoint, out_dir, summary=None, template=None, clap_encoder=None
):
    """Writes the model folder of a recipe run's checkpoint.

    Used by the training runner at the end of a run and by ``textsep
    export`` (:func:`export_recipe_run`), with the same inputs: the same
    folder.

    Arguments
    ---------
    hparams : dict
        Recipe hyperparameters (plain values suffice).
    checkpoint : speechbrain.utils.checkpoints.Checkpoint
        The checkpoint to export (its weight files and meta).
    out_dir : str
        Model folder to write.
    summary : dict, optional
        The run's test summary (result schema).
    template : str, optional
        Inference template to use instead of the family's.
    clap_encoder : CLAPQueryEncoder, optional
        The frozen CLAP of a CLAPSep run when it is already built (else it
        is built from ``clap_source`` when the folder must hold it).

    Returns
    -------
    str
        ``out_dir``.
    """
    kind = check_exportable(model_kind(hparams))
    states = {
        name: torch.load(path, map_location="cpu", weights_only=True)
        for name, path in checkpoint.paramfiles.items()
        if name in WEIGHTS[kind]
    }
    if WEIGHTS[kind][0] not in states:  # the trained model itself
        raise ValueError(f"the checkpoint {checkpoint.path} has no {WEIGHTS[kind][0]}")
    write_files, weights, values = None, states, None
    if kind == "clap":
        write_files, weights = _clap_writer(hparams, states["clap"]), None
    else:
        template = template or template_path(kind)
        values = recipe_values(hparams, states, template)
        if values.get("clap_in_folder"):
            write_files = _clap_folder_writer(hparams, clap_encoder)
        if kind == "bertsep" and _is_local(hparams["bert_source"]):
            write_files = _copy_writer(hparams["bert_source"], BERT_SUBFOLDER)
    return write_model_folder(
        out_dir,
        kind,
        values,
        weights,
        title=hparams["experiment"],
        training=run_training_text(hparams, checkpoint.meta),
        summary=summary,
        template=template,
        write_files=write_files,
    )


def best_checkpoint(save_folder, key):
    """The recipe checkpoint with the highest validation ``key``.

    Returns
    -------
    speechbrain.utils.checkpoints.Checkpoint
    """
    if not os.path.isdir(save_folder):
        raise FileNotFoundError(f"no checkpoint folder {save_folder}")
    checkpoint = Checkpointer(save_folder).find_checkpoint(max_key=key)
    if checkpoint is None:
        raise FileNotFoundError(f"no checkpoint with a '{key}' in {save_folder}")
    return checkpoint


def export_recipe_run(run_folder, out_dir, template=None):
    """Exports the best checkpoint of a recipe's output folder (``textsep export``).

    Arguments
    ---------
    run_folder : str
        A recipe's output folder (``hyperparams.yaml``, ``save/``, and the
        ``test_summary.json`` of its test evaluation if it ran).
    out_dir : str
        Model folder to write.
    template : str, optional
        Inference template to use instead of the family's.

    Returns
    -------
    str
        Path of the written model card (``README.md``).
    """
    hparams_path = os.path.join(run_folder, HPARAMS_FILE)
    if not os.path.isfile(hparams_path):
        raise FileNotFoundError(
            f"{run_folder} is not a recipe output folder (no {HPARAMS_FILE})"
        )
    hparams = read_plain_hparams(hparams_path)
    kind = check_exportable(model_kind(hparams))
    checkpoint = best_checkpoint(os.path.join(run_folder, "save"), selection_key(kind))
    summary = None
    summary_path = os.path.join(run_folder, SUMMARY_FILE)
    if os.path.isfile(summary_path):
        with open(summary_path, encoding="utf-8") as f:
            summary = json.load(f)
    export_checkpoint(hparams, checkpoint, out_dir, summary, template)
    return os.path.join(out_dir, CARD_FILE)


def load_model_folder(source, **kwargs):
    """Loads any folder the writer produces, with its own interface.

    A separator folder (``hyperparams.yaml``) loads with
    :func:`~speechbrain_textsep.inference.interfaces.load_separator` (the
    allow-list applies: no ``trust_remote_code``), a CLAP folder with
    :class:`~speechbrain_textsep.encoders.clap.CLAPQueryEncoder`.

    Arguments
    ---------
    source : str
        A local model folder.
    **kwargs
        Passed to ``load_separator`` (``savedir``, ``run_opts``...).

    Returns
    -------
    BaseQuerySeparator or CLAPQueryEncoder
    """
    if os.path.isfile(os.path.join(source, HPARAMS_FILE)):
        from speechbrain_textsep.inference.interfaces import load_separator

        return load_separator(source, **kwargs)
    from speechbrain_textsep.encoders.clap import CLAPQueryEncoder

    return CLAPQueryEncoder(source)
