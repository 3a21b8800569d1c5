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
    >>> text = "a: &a 1\\nd: !apply:getattr [*a, imag]\\ne: !apply:getattr [*a, _x]"
    >>> untrusted_objects(text)
    ['!apply:getattr']
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
        if tag == "!apply:getattr":
            # What HyperPyYAML writes for an attribute reference <obj.attr>.
            if not _plain_attribute(node):
                refused.append(tag)
        else:
            for prefix in _OBJECT_TAGS:
                if tag.startswith(prefix) and not _allowed(tag[len(prefix) :]):
                    refused.append(tag)
        if isinstance(node, yaml.MappingNode):
            for key, value in reversed(node.value):
                stack.extend([value, key])
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
    return refused


def _plain_attribute(node):
    """True for ``!apply:getattr [obj, name]`` with a public attribute name."""
    if not isinstance(node, yaml.SequenceNode) or len(node.value) != 2:
        return False
    name = node.value[1]
    return (
        isinstance(name, yaml.ScalarNode)
        and name.value.isidentifier()
        and not name.value.startswith("_")
    )


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


class _PlainLoader(yaml.SafeLoader):
    """Reads the plain values of a HyperPyYAML text; tagged nodes become None."""


_PlainLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def fetch_model_folder(subfolder, source, savedir=None, fetch_config=None):
    """Local path of a sub-folder of a model folder (local or hub repository).

    Arguments
    ---------
    subfolder : str
        Path of the sub-folder inside the model folder (e.g. ``clap``).
    source : str
        Local model folder or Hugging Face repository id.
    savedir : str, optional
        Unused for folders (hub files stay in the Hugging Face cache).
    fetch_config : speechbrain.utils.fetching.FetchConfig, optional
        Token, revision, ``allow_network``.

    Returns
    -------
    str
    """
    source = os.fspath(source)
    if os.path.isdir(source):
        path = os.path.join(source, subfolder)
        if not os.path.isdir(path):
            raise ModelNotAvailableError(f"model folder {source} has no {subfolder}/")
        return path
    config = fetch_config or FetchConfig()
    try:
        root = huggingface_hub.snapshot_download(
            source,
            allow_patterns=[f"{subfolder}/*"],
            revision=config.revision,
            token=config.token,
            local_files_only=not config.allow_network
            or huggingface_hub.constants.HF_HUB_OFFLINE,
        )
    except (
        huggingface_hub.errors.LocalEntryNotFoundError,
        huggingface_hub.errors.OfflineModeIsEnabled,
        huggingface_hub.errors.RepositoryNotFoundError,
    ) as e:
        raise ModelNotAvailableError(
            f"cannot load {subfolder}/ of {source!r}: not a local folder, and "
            f"not in the Hugging Face cache or the hub ({e})"
        ) from e
    path = os.path.join(root, subfolder)
    if not os.path.isdir(path):
        raise ModelNotAvailableError(f"{source!r} has no {subfolder}/ folder")
    return path


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
        if hasattr(module, "load_trainable_state_dict"):
            # Models that keep only their trained part (CLAPSep): the frozen
            # rest comes from a pretrained encoder.
            module.load_trainable_state_dict(state)
        else:
            module.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError) as e:
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
    overrides = dict(overrides or {})
    plain = yaml.load(text, Loader=_PlainLoader) or {}
    if plain.get("clap_in_folder") and "clap_source" not in overrides:
        overrides["clap_source"] = fetch_model_folder(
            plain["clap_source"], source, savedir, fetch_config
        )
    hparams = load_hyperpyyaml(io.StringIO(text), overrides)
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
