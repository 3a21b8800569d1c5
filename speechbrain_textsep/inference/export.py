"""Export of a trained separator as a model folder for ``from_hparams``.

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

MASK_NET_FILE = "mask_net.ckpt"
QUERY_ENCODER_FILE = "query_encoder.ckpt"
TRAINING_ONLY_PREFIXES = ("noise_heads.",)


def export_model(out_dir, template, overrides, mask_net, query_encoder=None):
    """Writes ``hyperparams.yaml`` and the checkpoints of an inference folder.

    Arguments
    ---------
    out_dir : str
        Folder to create (it is what ``from_hparams(source=...)`` takes).
    template : str
        Inference hyperparameters with HyperPyYAML tags (``hparams/clipsep.yaml``).
    overrides : dict
        Values that describe the trained model (sizes, CLIP name and tag,
        prompts...), resolved into the written ``hyperparams.yaml``.
    mask_net : torch.nn.Module
        The trained mask network. Training-only parameters (NIT noise heads)
        are left out.
    query_encoder : torch.nn.Module, optional
        Saved as ``query_encoder.ckpt`` when its weights cannot be fetched
        by open_clip (a random-init or locally trained CLIP); set
        ``query_encoder_in_folder: True`` in ``overrides`` then.

    Returns
    -------
    str
        Path of the written ``hyperparams.yaml``.
    """
    encoder_state = None
    if overrides.get("query_encoder_in_folder"):
        if query_encoder is None:
            raise ValueError(
                "query_encoder_in_folder is set but no query_encoder given"
            )
        encoder_state = query_encoder.state_dict()
    return write_model_folder(
        out_dir, template, overrides, mask_net.state_dict(), encoder_state
    )


def write_model_folder(
    out_dir, template, overrides, mask_net_state, query_encoder_state=None
):
    """Writes ``hyperparams.yaml`` and the weight files of a model folder.

    Arguments
    ---------
    out_dir : str
        Folder to create.
    template : str
        Inference hyperparameters with HyperPyYAML tags.
    overrides : dict
        Values resolved into ``hyperparams.yaml``.
    mask_net_state : dict
        State dict of the mask network (training-only keys are dropped).
    query_encoder_state : dict, optional
        State dict of the query encoder, for ``query_encoder_in_folder``.

    Returns
    -------
    str
        Path of the written ``hyperparams.yaml``.
    """
    if not os.path.isfile(template):
        raise FileNotFoundError(
            f"inference hyperparameters template not found: {template} (it is "
            "hparams/clipsep.yaml in the repository; set `inference_hparams`)"
        )
    if overrides.get("query_encoder_in_folder") and query_encoder_state is None:
        raise ValueError("query_encoder_in_folder is set but no query encoder state")
    os.makedirs(out_dir, exist_ok=True)
    with open(template) as f:
        resolved = resolve_references(
            f, overrides, overrides_must_match=True
        ).getvalue()
    hparams_path = os.path.join(out_dir, "hyperparams.yaml")
    with open(hparams_path, "w") as f:
        f.write(resolved)
    state = {
        key: value
        for key, value in mask_net_state.items()
        if not key.startswith(TRAINING_ONLY_PREFIXES)
    }
    torch.save(state, os.path.join(out_dir, MASK_NET_FILE))
    if overrides.get("query_encoder_in_folder"):
        torch.save(query_encoder_state, os.path.join(out_dir, QUERY_ENCODER_FILE))
    return hparams_path


class _TolerantLoader(yaml.SafeLoader):
    """Reads plain values of a HyperPyYAML file; tagged objects become None."""


_TolerantLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def read_plain_hparams(path):
    """Plain values (numbers, strings, lists, dicts) of a saved recipe yaml.

    Objects (``!new:`` ...) are not built: exporting a run needs none of
    them, nor the network access a pretrained CLIP would need.

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
        return yaml.load(f, Loader=_TolerantLoader)


def best_checkpoint(save_folder, key="sdri"):
    """The recipe checkpoint with the highest ``key`` (validation SDRi).

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


def export_recipe_run(run_folder, out_dir, exports, template=None):
    """Exports the best checkpoint of a recipe run, with a model card.

    Arguments
    ---------
    run_folder : str
        A recipe's output folder (``hyperparams.yaml``, ``save/``, and the
        ``test_summary.json`` of its test evaluation if it ran).
    out_dir : str
        Model folder to write (``from_hparams`` source).
    exports : dict
        ``model_kind`` -> (inference template, recipe keys that describe the
        model), e.g. :data:`speechbrain_textsep.training.experiment.EXPORTS`.
    template : str, optional
        Inference template to use instead of the model kind's.

    Returns
    -------
    str
        Path of the written model card (``README.md``).
    """
    hparams_path = os.path.join(run_folder, "hyperparams.yaml")
    if not os.path.isfile(hparams_path):
        raise FileNotFoundError(
            f"{run_folder} is not a recipe output folder (no hyperparams.yaml)"
        )
    hparams = read_plain_hparams(hparams_path)
    kind = hparams.get("model_kind", "clipsep")
    if kind not in exports:
        raise ValueError(
            f"a {kind} model cannot be exported for the pretrained interfaces "
            f"(exportable: {', '.join(exports)})"
        )
    kind_template, keys = exports[kind]
    missing = [key for key in keys if key not in hparams]
    if missing:
        raise ValueError(f"{hparams_path} lacks {missing} for a {kind} model")
    checkpoint = best_checkpoint(os.path.join(run_folder, "save"))
    overrides = {key: hparams[key] for key in keys}
    overrides["text_prompts"] = list(hparams["eval_prompts"])
    local = "query_encoder" in checkpoint.paramfiles
    overrides["query_encoder_in_folder"] = local
    names = ["mask_net", "query_encoder"] if local else ["mask_net"]
    states = {
        name: torch.load(checkpoint.paramfiles[name], weights_only=True)
        for name in names
    }
    if local and kind == "clipsep":
        overrides["clip_pretrained"] = None
    if kind == "labelsep":
        overrides["labels"] = list(states["query_encoder"]["_extra_state"]["labels"])
    write_model_folder(
        out_dir,
        template or kind_template,
        overrides,
        states["mask_net"],
        states.get("query_encoder"),
    )
    summary = None
    summary_path = os.path.join(run_folder, "test_summary.json")
    if os.path.isfile(summary_path):
        with open(summary_path) as f:
            summary = json.load(f)
        shutil.copy(summary_path, os.path.join(out_dir, "test_summary.json"))
    return write_model_card(out_dir, hparams, checkpoint.meta, summary)


def _training_data(hparams):
    """One line on the training clips of a run (count and labels if readable)."""
    train_csv = hparams.get("train_csv")
    if not train_csv or not os.path.isfile(train_csv):
        return f"the clips listed in `{train_csv}` (not readable from here)"
    with open(train_csv, newline="") as f:
        labels = [row.get("label", "") for row in csv.DictReader(f)]
    names = ", ".join(sorted(set(labels)))
    return (
        f"{len(labels)} single-source clips of {len(set(labels))} classes "
        f"({names}) listed in `{train_csv}`"
    )


def _summary_tables(summary, title=""):
    """(title, {metric: stats}) of a flat or nested (set/query mode) summary."""
    if summary and all(isinstance(v, dict) and "mean" in v for v in summary.values()):
        yield title, summary
        return
    for name, sub in summary.items():
        if isinstance(sub, dict):
            yield from _summary_tables(sub, f"{title} / {name}" if title else name)


def write_model_card(out_dir, hparams, meta, summary):
    """Writes ``README.md``: what the model is, its training data and figures.

    Arguments
    ---------
    out_dir : str
        The model folder.
    hparams : dict
        Plain values of the recipe run (see :func:`read_plain_hparams`).
    meta : dict
        Metadata of the exported checkpoint (validation ``sdri``...).
    summary : dict, optional
        Test summary of the run (``test_summary.json``).

    Returns
    -------
    str
        Path of the card.
    """
    kind = hparams.get("model_kind", "clipsep")
    family = {"clipsep": "CLIPSep-family", "labelsep": "LabelSep"}.get(
        kind, kind.upper() if kind == "pit" else "BERTSep"
    )
    experiment = hparams.get("experiment", f"a {family} model")
    if kind == "clipsep":
        encoder = (
            "a CLIP trained or initialised locally (weights in this folder)"
            if not hparams.get("clip_pretrained") or hparams.get("clip_model_cfg")
            else f"open_clip {hparams['clip_model']} / {hparams['clip_pretrained']}"
        )
    elif kind == "bertsep":
        encoder = f"frozen {hparams.get('bert_source')}"
    else:
        encoder = "a label embedding trained with the model (weights in this folder)"
    lines = [
        "---",
        "library_name: speechbrain",
        f"tags: [audio-source-separation, text-queried-separation, {kind}]",
        "---",
        f"# {experiment}",
        "",
        f"A {family} separator trained with {hparams.get('query_mode', 'text')} "
        f"queries (U-Net: {hparams.get('levels')} levels, ngf "
        f"{hparams.get('ngf')}, {hparams.get('n_maps')} maps; query encoder: "
        f"{encoder}; {hparams.get('sample_rate')} Hz). Load it with "
        "`speechbrain_textsep.inference.QuerySeparator.from_hparams(source=...)` "
        "or run `textsep separate IN --model <this folder> --query TEXT --out DIR`.",
        "",
        "## Training data",
        "",
        f"{_training_data(hparams)}; seed {hparams.get('seed')}, "
        f"{hparams.get('number_of_epochs')} epochs of batch "
        f"{hparams.get('batch_size')}. Exported checkpoint: validation SDRi "
        f"{float(meta.get('sdri', float('nan'))):.2f} dB.",
        "",
        "## Test results",
        "",
        "SDR is BSS Eval v4 (museval, one window over the clip); SDRi and "
        "SI-SDRi subtract the mixture's. Each 2-source test mixture is "
        "separated by querying its sources' labels.",
    ]
    tables = list(_summary_tables(summary or {}))
    for title, table in tables:
        lines += [
            "",
            f"{title or hparams.get('test_mixtures_csv')}:",
            "",
            "| metric | mean | SEM | median | count |",
            "|---|---|---|---|---|",
        ]
        for key, stats in table.items():
            lines.append(
                f"| {key} | {stats['mean']:.2f} | {stats.get('sem', float('nan')):.2f}"
                f" | {stats['median']:.2f} | {stats['count']} |"
            )
    if not tables:
        lines += ["", "The run has no test evaluation (no test_summary.json)."]
    path = os.path.join(out_dir, "README.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path
