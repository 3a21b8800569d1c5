"""What a model folder is made of: its file names, sub-folders and weights.

The names shared by the one model-folder writer
(:mod:`~speechbrain_textsep.inference.model_folder`, which describes the
format), its model card (:mod:`~speechbrain_textsep.inference.model_card`)
and the export of recipe runs (:mod:`~speechbrain_textsep.inference.run_export`):
which model kinds have a folder, which weights each keeps, and where a
folder puts its CLAP or BERT. It imports none of them, so that each can
import it.

Authors
 * speechbrain-textsep contributors
"""

import os

from speechbrain_textsep.inference.run_folder import model_kind

__all__ = [
    "BERT_SUBFOLDER",
    "CARD_FILE",
    "CLAP_SUBFOLDER",
    "EXPORTABLE_KINDS",
    "HPARAMS_FILE",
    "SUMMARY_FILE",
    "WEIGHTS",
    "check_exportable",
    "clap_reference",
]

#: Model kinds that have a model folder.
EXPORTABLE_KINDS = ("clipsep", "labelsep", "bertsep", "clapsep", "clap", "weaksup")
#: Weights of a run's checkpoint that a model folder keeps, per model kind.
WEIGHTS = {
    "clipsep": ("mask_net", "query_encoder"),
    "labelsep": ("mask_net", "query_encoder"),
    "bertsep": ("mask_net",),
    "clapsep": ("clapsep",),
    "clap": ("clap",),
    "weaksup": ("mask_net",),
}
#: Sub-folder of a CLAPSep model folder that holds a CLAP not fetchable by name.
CLAP_SUBFOLDER = "clap"
#: Sub-folder of a BERTSep model folder that holds a local BERT folder.
BERT_SUBFOLDER = "bert"
HPARAMS_FILE = "hyperparams.yaml"
SUMMARY_FILE = "test_summary.json"
CARD_FILE = "README.md"


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
