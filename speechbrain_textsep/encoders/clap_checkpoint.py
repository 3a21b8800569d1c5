"""Checkpoint files and CLAP folders of the LAION-CLAP encoder.

Two formats hold CLAP weights:

- a laion_clap checkpoint file: ``{"state_dict": {"module.<name>": ...}}``
  as laion_clap's training writes it, or a bare state dict; read by
  :func:`load_clap_checkpoint` with ``torch.load(weights_only=True)`` and
  strict keys;
- a CLAP folder, written by :func:`save_clap_dir` (and
  ``CLAPQueryEncoder.save_pretrained_dir``): ``clap_config.json``
  (``{"model_cfg": ...}``), ``clap_model.pt`` (the state dict) and the
  tokenizer files. :func:`locate_clap_dir` finds its files and
  :func:`read_clap_config` reads its config.

Every file read from a CLAP folder must resolve inside it
(:func:`resolve_in_folder`, :func:`check_folder_files`): absolute names,
``..`` and symlinks leading out of the folder are refused with a ValueError.
A folder of the Hugging Face cache (``.../snapshots/<commit>``) may link into
its repository's ``blobs`` folder, where the hub keeps the file contents.

Authors
 * speechbrain-textsep contributors
"""

import json
import os
from pathlib import Path, PurePath

import torch

from speechbrain_textsep.encoders.clap_config import check_clap_cfg
from speechbrain_textsep.encoders.clap_errors import CLAPWeightsUnavailableError

__all__ = [
    "CLAP_CONFIG_FILE",
    "CLAP_WEIGHTS_FILE",
    "check_folder_files",
    "clap_folder_roots",
    "load_clap_checkpoint",
    "locate_clap_dir",
    "read_clap_config",
    "resolve_in_folder",
    "save_clap_dir",
]

#: Config file of a CLAP folder (``{"model_cfg": ...}``).
CLAP_CONFIG_FILE = "clap_config.json"

#: Weights file of a CLAP folder (state dict of laion_clap's ``CLAP``).
CLAP_WEIGHTS_FILE = "clap_model.pt"

# Buffers of old transformers versions (persistent before 4.31) that laion_clap
# also drops when loading a checkpoint.
_OBSOLETE_KEYS = (
    "text_branch.embeddings.position_ids",
    "text_branch.embeddings.token_type_ids",
)


# ------------------------------------------------------------- folder files
def clap_folder_roots(folder):
    """The folders that the files of a CLAP folder may resolve into.

    The folder itself (symlinks resolved); for a snapshot of the Hugging Face
    cache (``<repo cache>/snapshots/<commit>``, whose files are symlinks to
    ``<repo cache>/blobs``), also that ``blobs`` folder.

    Arguments
    ---------
    folder : str or os.PathLike
        A CLAP folder.

    Returns
    -------
    tuple of pathlib.Path

    Example
    -------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> clap_folder_roots(folder) == (folder.resolve(),)
    True
    """
    folder = Path(folder).resolve()
    roots = [folder]
    if folder.parent.name == "snapshots":
        blobs = folder.parent.parent / "blobs"
        if blobs.is_dir():
            roots.append(blobs)
    return tuple(roots)


def resolve_in_folder(folder, name, roots=None):
    """The path of the file ``name`` of ``folder``, refused unless inside it.

    Arguments
    ---------
    folder : str or os.PathLike
        A CLAP folder.
    name : str or os.PathLike
        A file name relative to ``folder``.
    roots : tuple of pathlib.Path or None
        Folders the file may resolve into (default:
        :func:`clap_folder_roots` of ``folder``).

    Returns
    -------
    pathlib.Path
        The resolved path (symlinks followed).

    Raises
    ------
    ValueError
        ``name`` is absolute, holds ``..``, or resolves (through symlinks)
        outside ``roots``.

    Example
    -------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "clap_config.json").write_text("{}")
    >>> resolve_in_folder(folder, "clap_config.json").name
    'clap_config.json'
    >>> resolve_in_folder(folder, "../clap_model.pt")
    Traceback (most recent call last):
    ...
    ValueError: the file '../clap_model.pt' of the CLAP folder ... is refused: ...
    >>> (folder / "clap_model.pt").symlink_to(Path(tempfile.mkdtemp()) / "w.pt")
    >>> resolve_in_folder(folder, "clap_model.pt")
    Traceback (most recent call last):
    ...
    ValueError: the file 'clap_model.pt' of the CLAP folder ... leads outside it ...
    """
    name = os.fspath(name)
    if os.path.isabs(name) or ".." in PurePath(name).parts:
        raise ValueError(
            f"the file {name!r} of the CLAP folder {os.fspath(folder)!r} is "
            "refused: file names must be relative to the folder, without '..'"
        )
    roots = roots or clap_folder_roots(folder)
    path = (Path(folder).resolve() / name).resolve()
    if not any(path == root or root in path.parents for root in roots):
        raise ValueError(
            f"the file {name!r} of the CLAP folder {os.fspath(folder)!r} leads "
            f"outside it (to {str(path)!r}, through a symlink): refused"
        )
    return path


def check_folder_files(folder, roots=None):
    """Checks that every file and subfolder of a folder resolves inside it.

    The tokenizer of a CLAP folder is read from the folder by transformers,
    which picks its own file names: every entry is checked.

    Arguments
    ---------
    folder : str or os.PathLike
        A CLAP folder.
    roots : tuple of pathlib.Path or None
        Folders the entries may resolve into (default:
        :func:`clap_folder_roots` of ``folder``).

    Raises
    ------
    ValueError
        Naming the first entry that leads outside (see
        :func:`resolve_in_folder`).

    Example
    -------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "vocab.json").symlink_to(Path(tempfile.mkdtemp()) / "v.json")
    >>> check_folder_files(folder)
    Traceback (most recent call last):
    ...
    ValueError: the file 'vocab.json' of the CLAP folder ... leads outside it ...
    """
    roots = roots or clap_folder_roots(folder)
    top = Path(folder).resolve()
    for parent, dirs, files in os.walk(top):
        for entry in sorted(dirs) + sorted(files):
            name = os.path.relpath(os.path.join(parent, entry), top)
            resolve_in_folder(folder, name, roots)


def locate_clap_dir(folder):
    """The config and weights files of a CLAP folder, checked.

    Arguments
    ---------
    folder : str or os.PathLike
        A folder written by :func:`save_clap_dir`.

    Returns
    -------
    tuple of pathlib.Path
        ``(config file, weights file)``, resolved.

    Raises
    ------
    CLAPWeightsUnavailableError
        The folder lacks its config or weights file.
    ValueError
        A file of the folder leads outside it (see :func:`resolve_in_folder`).

    Example
    -------
    >>> import tempfile
    >>> locate_clap_dir(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    speechbrain_textsep.encoders.clap_errors.CLAPWeightsUnavailableError: ...
    """
    roots = clap_folder_roots(folder)
    paths = []
    for name in (CLAP_CONFIG_FILE, CLAP_WEIGHTS_FILE):
        path = resolve_in_folder(folder, name, roots)
        if not path.is_file():
            raise CLAPWeightsUnavailableError(
                f"the CLAP folder {os.fspath(folder)!r} has no {name} (write it "
                "with CLAPQueryEncoder.save_pretrained_dir or save_local_clap)"
            )
        paths.append(path)
    check_folder_files(folder, roots)
    return tuple(paths)


def read_clap_config(path):
    """The model config in the config file of a CLAP folder.

    Arguments
    ---------
    path : str or os.PathLike
        A ``clap_config.json`` (see :func:`locate_clap_dir`).

    Returns
    -------
    dict
    """
    with open(path, encoding="utf-8") as f:
        return json.load(f)["model_cfg"]


# --------------------------------------------------------------- weights
def _read_state_dict(path):
    """State dict of a laion_clap checkpoint file (weights_only, no prefixes)."""
    path = os.fspath(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise CLAPWeightsUnavailableError(
            f"CLAP checkpoint file not found: {path}"
        ) from e
    except Exception as e:
        raise ValueError(
            f"cannot read the CLAP checkpoint {path!r} with "
            f"torch.load(weights_only=True) (not a torch file, or it holds "
            f"objects other than tensors and plain containers): {e}"
        ) from e
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, dict) or not all(
        isinstance(v, torch.Tensor) for v in checkpoint.values()
    ):
        raise ValueError(
            f"{path!r} is not a CLAP checkpoint: expected a state dict or a "
            "dict with a 'state_dict' entry"
        )
    # DistributedDataParallel prefixes ("module.") as in laion_clap's files.
    return {
        (k[len("module.") :] if k.startswith("module.") else k): v
        for k, v in checkpoint.items()
    }


def _check_state_matches(state, expected, path):
    """Raises ValueError unless ``state`` has the keys and shapes of ``expected``."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"the CLAP checkpoint {os.fspath(path)!r} does not match the model "
            f"config: {len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]} (a fusion "
            "checkpoint? HTSAT-tiny checkpoints (630k-*) need "
            "laion_clap_cfg('HTSAT-tiny'), the music ones HTSAT-base)"
        )
    mismatched = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if state[k].shape != v.shape
    ]
    if mismatched:
        raise ValueError(
            f"the CLAP checkpoint {os.fspath(path)!r} does not match the model "
            f"config, shapes differ (checkpoint vs model): {mismatched[:5]}"
        )


def load_clap_checkpoint(clap, path):
    """Loads a laion_clap checkpoint file into a CLAP, with strict keys.

    Accepts laion_clap's format (``{"state_dict": {"module.<name>": ...},
    ...}``) and a bare state dict, read with ``torch.load(weights_only=True)``.
    The obsolete RoBERTa buffers ``position_ids`` / ``token_type_ids`` of old
    transformers versions are dropped (as laion_clap does); any other missing
    or unexpected key is an error.

    Arguments
    ---------
    clap : torch.nn.Module
        A CLAP from :func:`~speechbrain_textsep.encoders.clap.create_clap`.
    path : str or os.PathLike
        Checkpoint file.

    Returns
    -------
    torch.nn.Module
        ``clap``.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_textsep.encoders.clap import create_clap
    >>> from speechbrain_textsep.encoders.clap_config import TINY_CLAP_CFG
    >>> state = create_clap(TINY_CLAP_CFG).state_dict()
    >>> path = Path(tempfile.mkdtemp()) / "tiny.pt"
    >>> torch.save({"state_dict": {"module." + k: v for k, v in state.items()}}, path)
    >>> clap = load_clap_checkpoint(create_clap(TINY_CLAP_CFG), path)
    >>> all(torch.equal(v, state[k]) for k, v in clap.state_dict().items())
    True
    """
    state = _read_state_dict(path)
    expected = clap.state_dict()
    for key in _OBSOLETE_KEYS:
        if key in state and key not in expected:
            del state[key]
    _check_state_matches(state, expected, path)
    clap.load_state_dict(state, strict=True)
    return clap


def save_clap_dir(path, clap, model_cfg, tokenizer):
    """Writes a CLAP folder that ``CLAPQueryEncoder`` loads.

    The folder holds ``clap_config.json`` (``{"model_cfg": ...}``),
    ``clap_model.pt`` (the state dict of laion_clap's ``CLAP``, no
    prefixes: it also loads with :func:`load_clap_checkpoint`) and the
    tokenizer files (``tokenizer.save_pretrained``).

    Arguments
    ---------
    path : str or os.PathLike
        Folder to write (created if needed).
    clap : torch.nn.Module
        The CLAP (e.g. ``encoder.clap`` or a trained one).
    model_cfg : dict
        Its config.
    tokenizer : transformers.PreTrainedTokenizerBase
        Its tokenizer.

    Returns
    -------
    pathlib.Path
        The folder.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_textsep.encoders.clap import create_clap
    >>> from speechbrain_textsep.encoders.clap_config import TINY_CLAP_CFG
    >>> from speechbrain_textsep.encoders.clap_tokenizer import (
    ...     build_tiny_tokenizer,
    ...     load_clap_tokenizer,
    ... )
    >>> tokenizer = load_clap_tokenizer(build_tiny_tokenizer(tempfile.mkdtemp(), "a"))
    >>> folder = save_clap_dir(
    ...     tempfile.mkdtemp(), create_clap(TINY_CLAP_CFG), TINY_CLAP_CFG, tokenizer
    ... )
    >>> config, weights = locate_clap_dir(folder)
    >>> read_clap_config(config) == check_clap_cfg(TINY_CLAP_CFG), weights.name
    (True, 'clap_model.pt')
    """
    cfg = check_clap_cfg(model_cfg)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / CLAP_CONFIG_FILE, "w", encoding="utf-8") as f:
        json.dump({"model_cfg": cfg}, f, indent=2)
    state = {k: v.detach().cpu() for k, v in clap.state_dict().items()}
    torch.save(state, path / CLAP_WEIGHTS_FILE)
    tokenizer.save_pretrained(str(path))
    return path
