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
weaksup       ``weaksup``      ``mask_net.ckpt``; ``clap/`` as for clapsep
============  ===============  ==============================================

``pit`` models take no queries: they have no folder for the pretrained
interfaces (evaluate their recipe output folder instead).

This module is the writer and the loader of any folder it writes. Beside
it: the names a folder is made of
(:mod:`~speechbrain_textsep.inference.folder_layout`), the card it writes
(:mod:`~speechbrain_textsep.inference.model_card`) and the export of a
recipe run's checkpoint, which goes through this writer
(:mod:`~speechbrain_textsep.inference.run_export`).

Authors
 * speechbrain-textsep contributors
"""

import json
import os

import torch
import yaml
from hyperpyyaml import resolve_references

from speechbrain_textsep.inference.folder_layout import (
    HPARAMS_FILE,
    SUMMARY_FILE,
    check_exportable,
)
from speechbrain_textsep.inference.model_card import write_model_card
from speechbrain_textsep.templates import template_path

__all__ = [
    "TRAINING_ONLY_PREFIXES",
    "load_model_folder",
    "read_plain_hparams",
    "write_model_folder",
]

#: Parameters of a mask network used at training only (the NIT noise heads).
TRAINING_ONLY_PREFIXES = ("noise_heads.",)


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
        The ``model_kind`` (one of
        :data:`~speechbrain_textsep.inference.folder_layout.EXPORTABLE_KINDS`).
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
