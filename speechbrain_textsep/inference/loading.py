"""Safe loading of model folders: local, from the hub, or offline from the cache.

A model folder is a ``hyperparams.yaml`` (HyperPyYAML, whose tags build
Python objects) and the files it names (weights, sub-folders). Unless the
caller passes ``trust_remote_code=True``, :func:`build_from_folder` loads it
without running code the folder chose and without reading files outside it:

What is checked, before anything is built
    - the objects the file builds: only the classes of
      :data:`~speechbrain_textsep.inference.allowlist.ALLOWED_CALLABLES`
      (exact full names: the classes the package's own folders use), and
      ``!apply:getattr`` on public data attributes of built objects;
      ``!include:``, ``!module:``, ``!applyref:``, the YAML Python tags
      (``!!python/...``), unknown tags, ``%TAG`` directives, objects in
      mapping keys, tuple strings holding tags and run options (``device``,
      ``jit``...) are refused (:mod:`speechbrain_textsep.inference.allowlist`);
    - sizes: at most 256 KiB, 5000 nodes once aliases are expanded (each node
      visited once), no recursive alias; references resolved in a bounded dry
      run first (no string past 100,000 characters, integer past 4096 bits,
      ``%`` formatting, nor copies past 5000 nodes);
    - the resolved file again (what ``<object.attribute>`` references and
      interpolations produce), then built by a loader that resolves only
      allow-listed names and checks each ``getattr`` result;
    - paths: ``hyperparams.yaml`` and the weights (``<name>.ckpt`` or the
      Pretrainer's ``paths``) must be inside the folder (relative, no ``..``,
      no symlink leaving it; for a hub repository, inside its cache); the
      arguments of :data:`~speechbrain_textsep.inference.allowlist.ARGUMENT_RULES`
      (CLIP, CLAP and BERT sources, tokenizers, CLIP ``local-dir:`` folders)
      are names (hub ids, checkpoint names, pretrained tags), or paths inside
      the folder, given to the encoders as absolute paths; a sub-folder they
      name must hold no symlink leaving the folder; absolute paths, ``..``
      and names of files in the current directory are refused; download
      caches, Pretrainer hooks and callable conditions cannot be set;
    - weights load with ``torch.load(weights_only=True)`` (also when trusted)
      and strict keys.

What is not checked
    - what the allowed classes do with the values they are given: a folder
      chooses model sizes (memory), prompts, and names that the encoders
      fetch from the network (open_clip tags, ``hf-hub:`` ids, LAION-CLAP
      checkpoint names, BERT hub ids), loaded by those libraries with
      ``weights_only=True``;
    - the files inside a CLAP or CLIP sub-folder beyond symlinks: their own
      loaders read them (config JSON, weights with ``weights_only=True``,
      tokenizer files);
    - anything, with ``trust_remote_code=True`` (except ``weights_only``).

Refusals are :class:`UntrustedModelError` (:class:`UntrustedPathError` for
paths, :class:`UntrustedWeightsError` for weights that are not plain
tensors); a folder that cannot be found is :class:`ModelNotAvailableError`.

Where the checks are
    - what the file builds: :mod:`~speechbrain_textsep.inference.allowlist`
      (sizes: :mod:`~speechbrain_textsep.inference.yaml_graph`; references:
      :mod:`~speechbrain_textsep.inference.reference_dryrun`), then built by
      :mod:`~speechbrain_textsep.inference.allowlist_loader`;
    - paths: :mod:`~speechbrain_textsep.inference.confined_folder` (files and
      sub-folders, fetched by
      :mod:`~speechbrain_textsep.inference.model_fetching`) and
      :mod:`~speechbrain_textsep.inference.confined_arguments` (arguments that
      name files or models);
    - weights: this module, which runs the checks in that order.

Authors
 * speechbrain-textsep contributors
"""

import io
import os

import torch
import yaml
from hyperpyyaml import load_hyperpyyaml, resolve_references
from speechbrain.utils.parameter_transfer import Pretrainer

from speechbrain_textsep.inference.allowlist import (
    MAX_HPARAMS_BYTES,
    UntrustedModelError,
    hyperparams_problems,
    resolved_problems,
    untrusted_error,
)
from speechbrain_textsep.inference.allowlist_loader import AllowListLoader
from speechbrain_textsep.inference.confined_arguments import confine_arguments
from speechbrain_textsep.inference.confined_folder import (
    ModelFolder,
    UntrustedPathError,
)
from speechbrain_textsep.inference.model_fetching import (
    ModelNotAvailableError,
    fetch_model_file,
    fetch_model_folder,
)

__all__ = [
    "ModelFolder",
    "ModelNotAvailableError",
    "UntrustedModelError",
    "UntrustedPathError",
    "UntrustedWeightsError",
    "build_allowlisted",
    "build_from_folder",
    "check_trusted",
    "confine_arguments",
    "fetch_model_file",
    "fetch_model_folder",
    "load_weights",
]


class UntrustedWeightsError(UntrustedModelError, ValueError):
    """Weights that are not plain tensors (``weights_only=True`` refuses them)."""


def check_trusted(text, source, overrides=None):
    """Raises :class:`UntrustedModelError` if a hyperparameters text is refused.

    Arguments
    ---------
    text : str
        Content of a ``hyperparams.yaml``.
    source : str
        The folder, for the message.
    overrides : dict, optional
        The caller's overrides.

    Example
    -------
    >>> check_trusted("n: 4", "my_model")
    >>> try:
    ...     check_trusted("x: !apply:os.getcwd []", "evil/model")
    ... except UntrustedModelError as e:
    ...     print(e)  # doctest: +ELLIPSIS
    refusing to load evil/model: its hyperparams.yaml builds !apply:os.getcwd ...
    """
    problems = hyperparams_problems(text, overrides)
    if problems:
        raise untrusted_error(source, problems)


def load_weights(module, path, name):
    """Loads a state dict with ``weights_only=True`` and strict keys.

    Arguments
    ---------
    module : torch.nn.Module
        Receives the weights.
    path : str
        Checkpoint file (a state dict).
    name : str
        Name of the module, for error messages.

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "net.ckpt")
    >>> torch.save({"weight": torch.ones(1, 1), "bias": torch.ones(1)}, path)
    >>> net = torch.nn.Linear(1, 1)
    >>> load_weights(net, path, "net")
    >>> float(net.weight.detach())
    1.0
    >>> torch.save({"weight": torch.ones(1, 1), "bias": io.StringIO()}, path)
    >>> try:
    ...     load_weights(net, path, "net")
    ... except UntrustedWeightsError as e:
    ...     print(e)  # doctest: +ELLIPSIS
    refusing the net weights in ...: they are not plain tensors and are only ...
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        reason = next((line for line in lines if "Unsupported" in line), lines[0])
        raise UntrustedWeightsError(
            f"refusing the {name} weights in {path}: they are not plain tensors "
            f"and are only loaded with weights_only=True ({reason})"
        ) from e
    try:
        if hasattr(module, "load_trainable_state_dict"):
            # Models that keep only their trained part (CLAPSep): the frozen
            # rest comes from a pretrained encoder.
            module.load_trainable_state_dict(state)
        else:
            module.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(
            f"the {name} weights in {path} do not fit the model its "
            f"hyperparams.yaml builds: {e}"
        ) from e


class _PlainLoader(yaml.SafeLoader):
    """Reads the plain values of a HyperPyYAML text; tagged nodes become None."""


_PlainLoader.add_multi_constructor("!", lambda loader, suffix, node: None)
_PlainLoader.add_multi_constructor(
    "tag:yaml.org,2002:python/", lambda loader, suffix, node: None
)


def _build_trusted(text, folder, overrides):
    """HyperPyYAML as is (``trust_remote_code=True``)."""
    overrides = dict(overrides or {})
    plain = yaml.load(text, Loader=_PlainLoader) or {}
    if plain.get("clap_in_folder") and "clap_source" not in overrides:
        clap_folder = folder.folder(plain["clap_source"])
        overrides["clap_source"] = clap_folder
        # Model folders are written with their references resolved
        # (inference.model_folder), so the `clap` object names the relative
        # sub-folder itself: it gets the absolute path too.
        overrides["clap"] = {"source": clap_folder}
    bert = plain.get("bert_source")
    if isinstance(bert, str) and "query_encoder" not in overrides:
        # A BERT copied into the folder (bert_source: bert) is relative to
        # the folder, not to the working directory; a hub name stays a name.
        local = folder.locate(bert, "BERT folder")
        if local is not None:
            overrides["query_encoder"] = {"source": local}
    return load_hyperpyyaml(io.StringIO(text), overrides)


def build_allowlisted(text, folder, overrides=None, name="hyperparams.yaml"):
    """Builds a hyperparameters text of an untrusted folder (see the module).

    Arguments
    ---------
    text : str
        Content of the folder's ``hyperparams.yaml``.
    folder : ModelFolder
        Where the paths it names must be.
    overrides : dict, optional
        The caller's overrides (trusted).
    name : str
        Name of the file, for the messages.

    Returns
    -------
    dict

    Example
    -------
    >>> import tempfile
    >>> folder = ModelFolder(tempfile.mkdtemp())
    >>> hp = build_allowlisted("n: 2\\nnorm: !new:speechbrain.dataio.preprocess."
    ...     "AudioNormalizer {sample_rate: !ref <n>}\\nrate: !ref <norm.sample_rate>",
    ...     folder)
    >>> hp["rate"]
    2
    >>> build_allowlisted("x: !!python/name:os.system", folder)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    speechbrain_textsep.inference.allowlist.UntrustedModelError: refusing to load ...: \
its hyperparams.yaml uses the Python tag !!python/name:os.system (line 1). ...
    """
    problems = hyperparams_problems(text, overrides)
    if problems:
        raise untrusted_error(folder.source, problems, name)
    resolved = resolve_references(text, overrides, overrides_must_match=True)
    loader = AllowListLoader(resolved.getvalue())
    try:
        root = loader.get_single_node()
        problems = resolved_problems(root)
        if problems:
            raise untrusted_error(folder.source, problems, f"{name} (resolved)")
        confine_arguments(root, folder)
        try:
            hparams = loader.construct_document(root)
        except UntrustedModelError as e:  # a getattr result that is code
            raise untrusted_error(folder.source, [f"is refused as built: {e}"]) from e
    finally:
        loader.dispose()
    for key in [key for key in hparams if str(key).startswith("__")]:
        del hparams[key]
    return hparams


def _read_hparams(folder, hparams_file):
    path = folder.file(hparams_file, "hyperparameters file")
    if folder.confine and os.path.getsize(path) > MAX_HPARAMS_BYTES:
        raise untrusted_error(
            folder.source, [f"has more than {MAX_HPARAMS_BYTES} bytes"], hparams_file
        )
    with open(path, encoding="utf-8") as f:
        return f.read()


def _load_pretrained(hparams, folder):
    """Loads the weights of the Pretrainer's loadables, from the folder."""
    pretrainer = hparams["pretrainer"]
    if folder.confine and not isinstance(pretrainer, Pretrainer):
        raise ValueError(f"{folder.source}: `pretrainer` is not a Pretrainer")
    for name, module in pretrainer.loadables.items():
        if folder.confine:
            condition = pretrainer.conditions.get(name, True)
            if callable(condition):
                raise folder.refuse(f"the condition of {name} is code")
            if not condition:
                continue
            filename = pretrainer.paths.get(name, f"{name}.ckpt")
            path = folder.file(filename, f"{name} weights")
        else:
            if not pretrainer.is_loadable(name):
                continue
            file_source, filename = folder.source, f"{name}.ckpt"
            if name in pretrainer.paths:
                file_source, filename = pretrainer.split_path(pretrainer.paths[name])
            path = fetch_model_file(
                filename, file_source, folder.savedir, folder.fetch_config
            )
        load_weights(module, path, name)


def build_from_folder(
    source,
    hparams_file="hyperparams.yaml",
    savedir=None,
    overrides=None,
    trust_remote_code=False,
    fetch_config=None,
):
    """Builds and loads the hyperparameters of a model folder, safely.

    Without ``trust_remote_code``, the folder may build only allow-listed
    classes and name only files inside itself (see the module docstring for
    exactly what is and is not checked); what it would build or read
    otherwise is refused with :class:`UntrustedModelError` before anything
    is built. Weights always load with ``weights_only=True`` and strict keys.

    Arguments
    ---------
    source : str
        Local folder, URL or hub repository id.
    hparams_file : str
        Name of the hyperparameters file in the folder.
    savedir : str, optional
        Where the fetched files are collected.
    overrides : dict, optional
        Hyperparameter overrides (the caller's: not checked).
    trust_remote_code : bool
        Builds whatever ``hyperparams.yaml`` names, with plain HyperPyYAML,
        and fetches the files it names wherever they are.
    fetch_config : speechbrain.utils.fetching.FetchConfig, optional
        Token, revision, ``allow_network``...

    Returns
    -------
    dict
        The loaded hyperparameters, with weights in their modules.
    """
    folder = ModelFolder(source, savedir, fetch_config, confine=not trust_remote_code)
    text = _read_hparams(folder, hparams_file)
    if trust_remote_code:
        hparams = _build_trusted(text, folder, overrides)
    else:
        hparams = build_allowlisted(text, folder, overrides, hparams_file)
    hparams["savedir"] = savedir
    _load_pretrained(hparams, folder)
    return hparams
