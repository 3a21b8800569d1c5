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

Authors
 * speechbrain-textsep contributors
"""

import inspect
import io
import json
import os
import re

import huggingface_hub
import torch
import yaml
from huggingface_hub.file_download import repo_folder_name
from hyperpyyaml import load_hyperpyyaml, resolve_references
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from speechbrain.utils.fetching import FetchConfig, FetchFrom, fetch, guess_source
from speechbrain.utils.parameter_transfer import Pretrainer

from speechbrain_textsep.inference.allowlist import (
    ARGUMENT_RULES,
    MAX_HPARAMS_BYTES,
    AllowListLoader,
    UntrustedModelError,
    allowed_object,
    distinct_nodes,
    hyperparams_problems,
    resolved_problems,
    untrusted_error,
)
from speechbrain_textsep.utils.paths import (
    PathEscapeError,
    check_relative_path,
    check_tree_confined,
    confined_path,
    is_inside,
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

_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_HF_HUB = "hf-hub:"
_LOCAL_DIR = "local-dir:"
#: JSON configs through which transformers would run a folder's own code.
_CODE_CONFIGS = (
    "config.json",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "processor_config.json",
)
_CODE_KEYS = ("auto_map", "trust_remote_code")
_TRUST_HINT = (
    "If you trust this model, pass trust_remote_code=True (textsep: "
    "--trust-remote-code)."
)


class ModelNotAvailableError(OSError):
    """A model that is neither a local folder nor fetchable (offline, missing)."""


class UntrustedPathError(UntrustedModelError, PathEscapeError):
    """A model folder naming a file or folder outside itself."""


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
            cache_dir=config.huggingface_cache_dir,
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


class ModelFolder:
    """The files of a model folder, kept inside it.

    Arguments
    ---------
    source : str
        Local folder, ``http(s)://`` URL or Hugging Face repository id.
    savedir : str, optional
        Where fetched files are linked or copied.
    fetch_config : speechbrain.utils.fetching.FetchConfig, optional
        Token, revision, ``allow_network``...
    confine : bool
        Refuse names that leave the folder (absolute, ``..``, symlinks
        leading out); False for trusted folders.

    Example
    -------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(root, "clap"))
    >>> folder = ModelFolder(root)
    >>> folder.locate("clap") == os.path.join(root, "clap")
    True
    >>> folder.locate("roberta-base") is None  # a name, not a file of the folder
    True
    >>> try:
    ...     folder.locate("../other_model")
    ... except UntrustedPathError as e:
    ...     print(e)  # doctest: +ELLIPSIS
    refusing to load ...: path '../other_model' leaves its folder ('..'). If ...
    """

    def __init__(self, source, savedir=None, fetch_config=None, confine=True):
        self.source = os.fspath(source)
        self.savedir = savedir
        self.fetch_config = fetch_config or FetchConfig()
        self.confine = confine
        self.local = os.path.isdir(self.source)
        kind = guess_source(self.source)[0]
        self.hub = not self.local and kind == FetchFrom.HUGGING_FACE

    def refuse(self, reason):
        """The :class:`UntrustedPathError` of a path of this folder."""
        return UntrustedPathError(
            f"refusing to load {self.source}: {reason}. {_TRUST_HINT}"
        )

    def name(self, name, what="path"):
        """A name of a file of the folder, checked (relative, inside it)."""
        if not self.confine:
            return os.fspath(name)
        try:
            name = check_relative_path(name, what)
            if self.local:
                confined_path(self.source, name, what)
        except PathEscapeError as e:
            raise self.refuse(e) from None
        return name

    def hub_cache(self):
        """The Hugging Face cache folder of this repository."""
        cache = self.fetch_config.huggingface_cache_dir
        cache = cache or huggingface_hub.constants.HF_HUB_CACHE
        return os.path.join(
            cache, repo_folder_name(repo_id=self.source, repo_type="model")
        )

    def roots(self):
        """Folders the real path of a fetched file may be in."""
        if self.local:
            return [self.source]
        roots = [self.hub_cache()] if self.hub else []
        return roots + ([os.fspath(self.savedir)] if self.savedir else [])

    def file(self, name, what="file"):
        """Local path of a file of the folder (fetched if remote), confined.

        Arguments
        ---------
        name : str
            Path of the file inside the folder.
        what : str
            What the file is, for the messages.

        Returns
        -------
        pathlib.Path
        """
        name = self.name(name, what)
        path = fetch_model_file(name, self.source, self.savedir, self.fetch_config)
        if self.confine and not any(is_inside(path, root) for root in self.roots()):
            raise self.refuse(
                f"{what} {name!r} resolves to {os.path.realpath(path)}, outside "
                "the model folder"
            )
        return path

    def folder(self, name, what="folder"):
        """Local path of a sub-folder (a snapshot if remote), confined.

        Returns
        -------
        str
        """
        name = self.name(name, what)
        path = fetch_model_folder(name, self.source, self.savedir, self.fetch_config)
        if self.confine:
            root = self.source if self.local else self.hub_cache()
            try:
                check_tree_confined(root, path, what)
            except PathEscapeError as e:
                raise self.refuse(e) from None
            config = _code_config(path)
            if config:
                raise self.refuse(
                    f"{what} {name!r} has {config}, which makes transformers run "
                    "code shipped with the folder"
                )
        return path

    def locate(self, name, what="path"):
        """Absolute path of a file or sub-folder of the folder, or None.

        Arguments
        ---------
        name : str
            The path inside the folder.
        what : str
            What it is, for the messages.

        Returns
        -------
        str or None
            None when the folder has no such file or sub-folder (the name may
            then be a model name). Escaping names are refused.
        """
        name = self.name(name, what)
        if self.local:
            path = os.path.join(self.source, name)
            if not os.path.lexists(path):
                return None
            if os.path.isdir(path):
                return os.path.abspath(self.folder(name, what))
            return os.path.abspath(path)
        if not self.hub:
            return None
        for getter in (self.folder, self.file):
            try:
                return os.path.abspath(getter(name, what))
            except ModelNotAvailableError:
                continue
        return None

    def location(self, value, what):
        """A model name (kept) or a path inside the folder (made absolute).

        Arguments
        ---------
        value : str or None
            What the folder gives: a hub id, checkpoint name, pretrained tag,
            ``hf-hub:`` id, or a path relative to the folder.
        what : str
            The argument, for the messages.

        Returns
        -------
        str or None
        """
        if not value:
            return value
        if value.startswith(_HF_HUB):
            if ".." in value[len(_HF_HUB) :].replace("\\", "/").split("/"):
                raise self.refuse(f"{what} {value!r} leaves its repository ('..')")
            return value
        path = self.locate(value, what)
        if path is not None:
            return path
        if os.path.lexists(value):
            raise self.refuse(
                f"{what} {value!r} is not in the model folder but names "
                f"{os.path.abspath(value)} in the current directory, which would "
                "be read instead"
            )
        if ("/" in value or "\\" in value) and not _HUB_ID.match(value):
            raise self.refuse(f"{what} {value!r} is a path that is not in the folder")
        return value


def _has_code_key(value, depth=0):
    if isinstance(value, dict):
        if any(key in value for key in _CODE_KEYS):
            return True
        value = list(value.values())
    if isinstance(value, list) and depth < 4:
        return any(_has_code_key(item, depth + 1) for item in value)
    return False


def _code_config(folder):
    """The config file of a folder that names code to run (``auto_map``), or None.

    Example
    -------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _code_config(folder) is None
    True
    >>> with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
    ...     _ = f.write('{"auto_map": {"AutoTokenizer": ["evil.Tok", null]}}')
    >>> _code_config(folder)
    'tokenizer_config.json (auto_map)'
    """
    for name in _CODE_CONFIGS:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        if os.path.getsize(path) > MAX_HPARAMS_BYTES:
            return f"{name} (more than {MAX_HPARAMS_BYTES} bytes)"
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue  # transformers will fail to read it too
        if _has_code_key(data):
            return f"{name} (auto_map)"
    return None


# ------------------------------------------------------- argument checks
def _bound_arguments(name, node):
    """``{argument: value node}`` of an object node of an allowed class."""
    if isinstance(node, MappingNode):
        return {key.value: value for key, value in node.value}
    if isinstance(node, SequenceNode):
        target = allowed_object(name)
        params = [
            p.name
            for p in inspect.signature(target).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        return dict(zip(params, node.value))
    return {}


def _is_null(node):
    return isinstance(node, ScalarNode) and node.tag.endswith(":null")


def _string(node, what, folder):
    """The text of a plain string node (None for null); refuses other nodes."""
    if _is_null(node):
        return None
    if isinstance(node, ScalarNode) and node.tag.endswith(":str"):
        return node.value
    raise folder.refuse(f"{what} must be a plain string or null")


def _apply_rule(rule, node, what, folder):
    """Checks (and for paths, rewrites) one argument node."""
    if rule == "unset":
        empty = isinstance(node, MappingNode) and not node.value
        if not (_is_null(node) or empty):
            raise folder.refuse(f"{what} cannot be set by an untrusted folder")
    elif rule == "location":
        value = _string(node, what, folder)
        if value:
            node.value = folder.location(value, what)
    elif rule == "clip_model":
        value = _string(node, what, folder)
        if value and value.startswith(_LOCAL_DIR):
            path = folder.locate(value[len(_LOCAL_DIR) :], what)
            if path is None or not os.path.isdir(path):
                raise folder.refuse(f"{what} {value!r} is not a folder of the model")
            node.value = _LOCAL_DIR + path
    elif rule == "relative":
        value = _string(node, what, folder)
        if value:
            try:
                check_relative_path(value, what)
            except PathEscapeError as e:
                raise folder.refuse(e) from None
    elif rule in ("folder_files", "plain") and not _is_null(node):
        if not isinstance(node, MappingNode):
            raise folder.refuse(f"{what} must be a mapping")
        for key, value in node.value:
            if rule == "folder_files":
                folder.name(_string(value, what, folder) or "", what)
            elif not (isinstance(value, ScalarNode) and value.tag.startswith("tag:")):
                raise folder.refuse(f"{what}[{key.value}] must be a plain value")


def confine_arguments(root, folder):
    """Applies :data:`~speechbrain_textsep.inference.allowlist.ARGUMENT_RULES`.

    Arguments of allowed classes that name files or models are checked;
    paths inside the folder are rewritten to absolute paths (so that the
    encoders read them there, not in the current directory).

    Arguments
    ---------
    root : ruamel.yaml.nodes.Node
        The resolved document, composed (edited in place).
    folder : ModelFolder
        The folder the document comes from.
    """
    for node in distinct_nodes(root):
        tag = node.tag or ""
        prefix, _, name = tag.partition(":")
        rules = (
            ARGUMENT_RULES.get(name) if prefix in ("!new", "!name", "!apply") else None
        )
        if not rules:
            continue
        short = name.rsplit(".", 1)[-1]
        for argument, value in _bound_arguments(name, node).items():
            if argument in rules:
                _apply_rule(rules[argument], value, f"{short}.{argument}", folder)


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
