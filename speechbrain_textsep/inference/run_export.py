"""The export of a recipe run's checkpoint as a model folder.

Used by the recipes at the end of training and by ``textsep export``. From
a recipe's hyperparameters (plain values suffice: no object is built) and a
checkpoint's weights, :func:`recipe_values` takes the values of the
family's inference template, checked; :func:`export_checkpoint` hands them,
the weights a folder keeps, the "Training" section of the card
(:func:`~speechbrain_textsep.inference.model_card.run_training_text`) and
the files to copy (a local BERT, a CLAP) to the one model-folder writer,
:func:`~speechbrain_textsep.inference.model_folder.write_model_folder`.
:func:`export_recipe_run` does it for the best checkpoint of a recipe's
output folder; the training runner calls :func:`export_checkpoint` with the
same inputs, so both give the same folder.

Authors
 * speechbrain-textsep contributors
"""

import json
import os
import shutil

import torch
import yaml
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_textsep.inference.folder_layout import (
    BERT_SUBFOLDER,
    CARD_FILE,
    CLAP_SUBFOLDER,
    HPARAMS_FILE,
    SUMMARY_FILE,
    WEIGHTS,
    check_exportable,
    clap_reference,
)
from speechbrain_textsep.inference.model_card import run_training_text
from speechbrain_textsep.inference.model_folder import (
    read_plain_hparams,
    write_model_folder,
)
from speechbrain_textsep.inference.run_folder import model_kind, selection_key
from speechbrain_textsep.templates import template_path

__all__ = [
    "CLAP_KEYS",
    "CLIPSEP_MODEL_KEYS",
    "INFERENCE_ONLY_KEYS",
    "REQUIRED_KEYS",
    "best_checkpoint",
    "export_checkpoint",
    "export_recipe_run",
    "plain_keys",
    "recipe_values",
]

#: Recipe keys that describe the separator (a recipe must have them all).
CLIPSEP_MODEL_KEYS = (
    "sample_rate",
    "n_fft",
    "hop_length",
    "win_length",
    "n_warped",
    "pad_mode",
    "warp_grid",
    "stft_dtype",
    "levels",
    "ngf",
    "n_maps",
    "query_dim",
)
#: The CLAP of a model built on one (where its weights and tokenizer are).
CLAP_KEYS = ("clap_source", "clap_model_cfg", "clap_tokenizer")
#: Recipe keys a model folder of each kind is made from.
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
    )
    + CLAP_KEYS,
    "weaksup": (
        "sample_rate",
        "n_fft",
        "hop_length",
        "win_length",
        "pad_mode",
        "stft_dtype",
        "levels",
        "ngf",
        "n_maps",
        "attn_levels",
        "heads",
        "res_layers",
        "mlp_ratio",
        "n_tokens",
    )
    + CLAP_KEYS,
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
        :func:`~speechbrain_textsep.inference.model_folder.read_plain_hparams`;
        a loaded recipe dict works too).
    states : dict
        The checkpoint's weights (``{name: state dict}``).
    template : str
        The inference template.

    Returns
    -------
    dict
        Values for
        :func:`~speechbrain_textsep.inference.model_folder.write_model_folder`.
    """
    kind = model_kind(hparams)
    values = _copied_values(hparams, template, kind)
    if kind in ("clapsep", "weaksup"):
        values.update(_clap_values(hparams))
        for key in ("decoder_depths", "decoder_heads"):
            if key in values:
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


def _clap_values(hparams):
    """How a folder names the CLAP of a run (by name, or copied into it)."""
    source, in_folder = clap_reference(hparams["clap_source"])
    if _is_local(hparams["clap_tokenizer"]):  # goes in with the CLAP
        source, in_folder = CLAP_SUBFOLDER, True
    return {
        "clap_source": source,
        "clap_in_folder": in_folder,
        "clap_model_cfg": {} if in_folder else dict(hparams["clap_model_cfg"] or {}),
        "clap_tokenizer": None if in_folder else hparams["clap_tokenizer"],
    }


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


def _clap_folder_writer(hparams, encoder):
    """``write_files`` of a folder (CLAPSep, weaksup) whose CLAP goes into
    ``clap/``."""
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
        The frozen CLAP of a CLAPSep or weaksup run when it is already built
        (else it is built from ``clap_source`` when the folder must hold it).

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
