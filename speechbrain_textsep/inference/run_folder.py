"""What a recipe run holds: its model kind, the validation key of its best
checkpoint and which weights belong to the run.

Shared by the training runner (what to checkpoint and export), the model
folder writer (``textsep export`` of a run) and the evaluation of a
recipe's output folder (what to restore).

Authors
 * speechbrain-textsep contributors
"""

import os

__all__ = [
    "CLIPSEP_KINDS",
    "MODEL_KINDS",
    "SELECTION_KEYS",
    "is_trainable",
    "model_kind",
    "query_encoder_in_checkpoint",
    "query_encoder_is_local",
    "selection_key",
]

#: The CLIPSep-family model kinds (one U-Net mask separator, four queries).
CLIPSEP_KINDS = ("clipsep", "labelsep", "bertsep", "pit")

#: Every ``model_kind`` a recipe may state.
MODEL_KINDS = CLIPSEP_KINDS + ("clapsep", "clap", "weaksup")

#: Validation metric (key of :mod:`speechbrain_textsep.utils.metric_keys`)
#: whose highest value selects the best checkpoint of each model kind.
SELECTION_KEYS = {
    **dict.fromkeys(CLIPSEP_KINDS, "sdri_plain"),
    "clapsep": "si_sdri",
    "clap": "retrieval",
    "weaksup": "sdri_plain",
}


def is_trainable(module):
    """True when ``module`` has parameters that require gradients.

    Example
    -------
    >>> import torch
    >>> layer = torch.nn.Linear(2, 2)
    >>> is_trainable(layer), is_trainable(layer.requires_grad_(False))
    (True, False)
    """
    return any(p.requires_grad for p in module.parameters())


def model_kind(hparams):
    """The recipe's ``model_kind``, checked.

    Example
    -------
    >>> model_kind({"model_kind": "labelsep"})
    'labelsep'
    >>> model_kind({"model_kind": "clipsep2"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: model_kind must be one of clipsep, ..., weaksup; got 'clipsep2'
    >>> model_kind({})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: the recipe has no model_kind (one of clipsep, labelsep, ...)
    """
    known = ", ".join(MODEL_KINDS)
    if "model_kind" not in hparams:
        raise ValueError(f"the recipe has no model_kind (one of {known})")
    kind = hparams["model_kind"]
    if kind not in MODEL_KINDS:
        raise ValueError(f"model_kind must be one of {known}; got {kind!r}")
    return kind


def selection_key(kind):
    """The validation key of the best checkpoint of a model kind.

    Example
    -------
    >>> selection_key("bertsep"), selection_key("clapsep"), selection_key("clap")
    ('sdri_plain', 'si_sdri', 'retrieval')
    """
    return SELECTION_KEYS[model_kind({"model_kind": kind})]


def query_encoder_is_local(hparams):
    """True when the CLIP weights cannot be fetched by name.

    That is a random-init or inline-config CLIP, or weights from a local file:
    their weights go into the checkpoints and the exported model folder.

    Example
    -------
    >>> query_encoder_is_local({"clip_pretrained": "openai", "clip_model_cfg": {}})
    False
    >>> query_encoder_is_local({"clip_pretrained": None, "clip_model_cfg": {}})
    True
    """
    pretrained = hparams["clip_pretrained"]
    return (
        bool(hparams["clip_model_cfg"])
        or pretrained is None
        or os.path.isfile(str(pretrained))
    )


def query_encoder_in_checkpoint(hparams):
    """True when the query encoder's weights belong to the experiment.

    That is a trainable encoder (LabelSep) or a CLIP that cannot be fetched
    by name; never for a frozen BERT (fetched by name or read from its
    folder) or a query-free model.
    """
    encoder = hparams.get("query_encoder")
    if encoder is None or hparams["query_mode"] == "none":
        return False
    if is_trainable(encoder):
        return True
    if model_kind(hparams) == "clipsep":
        return query_encoder_is_local(hparams)
    return False
