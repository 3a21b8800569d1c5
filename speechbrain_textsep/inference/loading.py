"""Safe loading of model folders: local, from the hub, or offline from the cache.

A ``hyperparams.yaml`` builds Python objects (``!new:``, ``!apply:``...), so a
folder from the hub could run arbitrary code. Before anything is built, every
object the file names is checked against :data:`ALLOWED_PACKAGES`; a file
that names anything else is refused unless the caller trusts it. Weights are
then loaded with ``torch.load(weights_only=True)`` and strict key matching.

Authors
 * speechbrain-textsep contributors
"""

import io
import os
import re

import huggingface_hub
import torch
import yaml
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.fetching import FetchConfig, FetchFrom, fetch, guess_source

#: Top-level packages whose classes and functions a model folder may use.
ALLOWED_PACKAGES = (
    "speechbrain",
    "speechbrain_textsep",
    "torch",
    "open_clip",
    "laion_clap",
)

#: Names inside allowed packages that can load or run arbitrary code.
DENIED_NAMES = (
    "torch.hub",
    "torch.load",
    "torch.jit.load",
    "torch.package",
    "torch.utils.cpp_extension",
    "speechbrain.utils.importutils",
)

#: HyperPyYAML tags that name a Python object.
_OBJECT_TAGS = ("!new:", "!name:", "!module:", "!apply:", "!applyref:")
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


class UntrustedModelError(PermissionError):
    """A model folder whose hyperparameters use code outside the allow-list."""


class ModelNotAvailableError(OSError):
    """A model that is neither a local folder nor fetchable (offline, missing)."""


def untrusted_objects(text):
    """Python objects named by a HyperPyYAML text that the allow-list refuses.

    Arguments
    ---------
    text : str
        Content of a ``hyperparams.yaml``.

    Returns
    -------
    list of str
        The offending tags (``!new:os.system`` ...), in file order.

    Example
    -------
    >>> untrusted_objects("a: !new:torch.nn.Linear [2, 2]\\nb: !apply:os.system [ls]")
    ['!apply:os.system']
    >>> untrusted_objects("c: !apply:torch.hub.load [x, y]")
    ['!apply:torch.hub.load']
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise ValueError(f"hyperparams.yaml is not valid YAML: {e}") from e
    refused, stack = [], [root] if root is not None else []
    while stack:
        node = stack.pop()
        tag = node.tag or ""
        if tag.startswith("!include:"):
            refused.append(tag)
        for prefix in _OBJECT_TAGS:
            if tag.startswith(prefix) and not _allowed(tag[len(prefix) :]):
                refused.append(tag)
        if isinstance(node, yaml.MappingNode):
            for key, value in reversed(node.value):
                stack.extend([value, key])
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
    return refused


def _allowed(name):
    name = name.strip()
    if name.split(".")[0] not in ALLOWED_PACKAGES:
        return False
    return not any(name == d or name.startswith(d + ".") for d in DENIED_NAMES)


def check_trusted(text, source):
    """Raises :class:`UntrustedModelError` if the text names refused objects."""
    refused = untrusted_objects(text)
    if refused:
        shown = ", ".join(dict.fromkeys(refused))
        raise UntrustedModelError(
            f"refusing to load {source}: its hyperparams.yaml uses {shown}, outside "
            f"the allowed packages {', '.join(ALLOWED_PACKAGES)} (or an !include:). "
            "Loading it would run that code. If you trust this model, pass "
            "trust_remote_code=True (textsep: --trust-remote-code)."
        )


def fetch_model_file(filename, source, savedir=None, fetch_config=None):
    """Local path of a model file from a folder, a URL or a hub repository.

    Arguments
    ---------
    filename : str
        File inside the model folder (``hyperparams.yaml``, ``mask_net.ckpt``).
    source : str
        Local folder, ``http(s)://`` URL or Hugging Face repository id.
    savedir : str, optional
        Where fetched files are linked or copied.
    fetch_config : speechbrain.utils.fetching.FetchConfig, optional
        Token, revision, ``allow_network``...

    Returns
    -------
    pathlib.Path

    Example
    -------
    >>> try:
    ...     fetch_model_file("hyperparams.yaml", "/no/such/folder")
    ... except ModelNotAvailableError as e:
    ...     print(e)
    model folder not found: /no/such/folder
    """
    source = os.fspath(source)
    fetch_from, _ = guess_source(source)
    if fetch_from == FetchFrom.HUGGING_FACE and not _HUB_ID.match(source):
        raise ModelNotAvailableError(f"model folder not found: {source}")
    if fetch_from == FetchFrom.LOCAL and not os.path.isfile(
        os.path.join(source, filename)
    ):
        raise ModelNotAvailableError(f"model folder {source} has no {filename}")
    try:
        return fetch(
            filename=filename,
            source=source,
            savedir=savedir,
            fetch_config=fetch_config or FetchConfig(),
        )
    except (
        huggingface_hub.errors.LocalEntryNotFoundError,
        huggingface_hub.errors.OfflineModeIsEnabled,
    ) as e:
        offline = huggingface_hub.constants.HF_HUB_OFFLINE
        raise ModelNotAvailableError(
            f"cannot load {filename} of {source!r}: it is not a local folder and "
            + (
                "the file is not in the Hugging Face cache while HF_HUB_OFFLINE "
                "is set. Run once with network access (or unset HF_HUB_OFFLINE) "
                f"to cache it, e.g. `huggingface-cli download {source}`, or give "
                "a local model folder."
                if offline
                else "the hub could not be reached and the file is not in the "
                "Hugging Face cache."
            )
        ) from e
    except (
        huggingface_hub.errors.RepositoryNotFoundError,
        huggingface_hub.errors.EntryNotFoundError,
        huggingface_hub.errors.RevisionNotFoundError,
    ) as e:
        raise ModelNotAvailableError(
            f"cannot load {filename} of {source!r} from the Hugging Face hub: {e}"
        ) from e


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
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        reason = next((line for line in lines if "Unsupported" in line), lines[0])
        raise ValueError(
            f"refusing the {name} weights in {path}: they are not plain tensors "
            f"and are only loaded with weights_only=True ({reason})"
        ) from e
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(
            f"the {name} weights in {path} do not fit the model its "
            f"hyperparams.yaml builds: {e}"
        ) from e


def build_from_folder(
    source,
    hparams_file="hyperparams.yaml",
    savedir=None,
    overrides=None,
    trust_remote_code=False,
    fetch_config=None,
):
    """Builds and loads the hyperparameters of a model folder, safely.

    Arguments
    ---------
    source : str
        Local folder, URL or hub repository id.
    hparams_file : str
        Name of the hyperparameters file in the folder.
    savedir : str, optional
        Where the fetched files are collected.
    overrides : dict, optional
        Hyperparameter overrides.
    trust_remote_code : bool
        Builds whatever ``hyperparams.yaml`` names (no allow-list check).
    fetch_config : speechbrain.utils.fetching.FetchConfig, optional
        Token, revision, ``allow_network``...

    Returns
    -------
    dict
        The loaded hyperparameters, with weights in their modules.
    """
    hparams_path = fetch_model_file(hparams_file, source, savedir, fetch_config)
    with open(hparams_path, encoding="utf-8") as f:
        text = f.read()
    if not trust_remote_code:
        check_trusted(text, source)
    hparams = load_hyperpyyaml(io.StringIO(text), overrides or {})
    hparams["savedir"] = savedir
    pretrainer = hparams["pretrainer"]
    for name, module in pretrainer.loadables.items():
        if not pretrainer.is_loadable(name):
            continue
        file_source, filename = source, f"{name}.ckpt"
        if name in pretrainer.paths:
            file_source, filename = pretrainer.split_path(pretrainer.paths[name])
        path = fetch_model_file(filename, file_source, savedir, fetch_config)
        load_weights(module, path, name)
    return hparams
