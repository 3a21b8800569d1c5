"""The files of a model folder, kept inside it.

:class:`ModelFolder` gives the local path of each file or sub-folder a model
folder names (fetched with
:mod:`~speechbrain_textsep.inference.model_fetching` when remote) and, for
an untrusted folder, refuses with :class:`UntrustedPathError` what would
leave it: absolute names, ``..``, symlinks leading out of the folder (or,
for a hub repository, out of its cache), names of files in the current
directory, and sub-folders whose transformers configs name code to run
(``auto_map``, ``trust_remote_code``).

Authors
 * speechbrain-textsep contributors
"""

import json
import os

import huggingface_hub
from huggingface_hub.file_download import repo_folder_name
from speechbrain.utils.fetching import FetchConfig, FetchFrom, guess_source

from speechbrain_textsep.inference.allowlist import (
    MAX_HPARAMS_BYTES,
    UntrustedModelError,
)
from speechbrain_textsep.inference.model_fetching import (
    HUB_ID,
    ModelNotAvailableError,
    fetch_model_file,
    fetch_model_folder,
)
from speechbrain_textsep.utils.paths import (
    PathEscapeError,
    check_relative_path,
    check_tree_confined,
    confined_path,
    is_inside,
)

__all__ = ["ModelFolder", "UntrustedPathError"]

_HF_HUB = "hf-hub:"

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


class UntrustedPathError(UntrustedModelError, PathEscapeError):
    """A model folder naming a file or folder outside itself."""


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
        if ("/" in value or "\\" in value) and not HUB_ID.match(value):
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
