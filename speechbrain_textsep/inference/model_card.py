"""The model card (``README.md``) of a model folder.

What a model is (its family, sizes and query encoder), how to load it, what
it was trained on and its test figures, as tables in the result schema of
:mod:`speechbrain_textsep.evaluation.report` with the description of every
metric. The one model-folder writer
(:mod:`~speechbrain_textsep.inference.model_folder`) writes it with
:func:`write_model_card`; the export of a recipe run
(:mod:`~speechbrain_textsep.inference.run_export`) gives it the "Training"
section of :func:`run_training_text`.

Authors
 * speechbrain-textsep contributors
"""

import csv
import os

from speechbrain_textsep.inference.folder_layout import BERT_SUBFOLDER, CARD_FILE
from speechbrain_textsep.inference.run_folder import model_kind, selection_key
from speechbrain_textsep.utils.metric_keys import describe

__all__ = [
    "FAMILY_NAMES",
    "USAGE",
    "run_training_text",
    "write_model_card",
]

#: Family names of the model kinds, for the model cards.
FAMILY_NAMES = {
    "clipsep": "CLIPSep",
    "labelsep": "LabelSep",
    "bertsep": "BERTSep",
    "pit": "PIT",
    "clapsep": "CLAPSep",
    "clap": "CLAP",
    "weaksup": "weakly-supervised bi-modal separator",
}
#: How the card says to load the folder, per interface.
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
    "WeakSupQuerySeparator": (
        "`speechbrain_textsep.inference.WeakSupQuerySeparator.from_hparams("
        "source=...)` or `textsep separate IN --model <this folder> --query TEXT "
        "--out DIR`."
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
    clap = (
        "the CLAP in `clap/`"
        if hp.get("clap_in_folder")
        else f"the CLAP `{hp.get('clap_source')}`"
    )
    if kind == "weaksup":
        return (
            "A text-queried separator trained as in weakly-supervised bi-modal "
            "separation (Mahmud et al., ICLR 2024): U-Net of "
            f"{hp.get('levels')} levels, ngf {hp.get('ngf')}, {hp.get('n_maps')} "
            f"maps, self- and cross-attention ({hp.get('heads')} heads) to the "
            f"{hp.get('n_tokens')} text tokens of {clap} at the "
            f"{hp.get('attn_levels')} deepest levels, CLIPSep late conditioning "
            f"by its text embedding; {hp.get('sample_rate')} Hz. Text queries."
        )
    if kind == "clapsep":
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
