"""Where the weights of a LAION-CLAP encoder come from: source resolution.

:func:`resolve_clap_source` turns the ``source`` of ``CLAPQueryEncoder`` into
a weights file, a model config and a tokenizer source:

- a known checkpoint name of the ``lukewys/laion_clap`` hub repository
  (:data:`~speechbrain_textsep.encoders.clap_config.LAION_CLAP_CHECKPOINTS`):
  downloaded and cached by ``huggingface_hub.hf_hub_download``, then found
  offline in the cache (:func:`hub_download`);
- ``"hf-hub:<org>/<repo>/<file>"`` (a laion_clap checkpoint in any repo) or
  ``"hf-hub:<org>/<repo>"`` (a repo holding a CLAP folder,
  :func:`hub_snapshot`);
- a local laion_clap checkpoint file;
- a local CLAP folder (see :mod:`speechbrain_textsep.encoders.clap_checkpoint`,
  whose files must resolve inside it);
- None: random weights from the given model config.

A file that cannot be obtained raises
:class:`~speechbrain_textsep.encoders.clap_errors.CLAPWeightsUnavailableError`
with what to do about it.

Authors
 * speechbrain-textsep contributors
"""

import os

from speechbrain_textsep.encoders.clap_checkpoint import (
    locate_clap_dir,
    read_clap_config,
)
from speechbrain_textsep.encoders.clap_config import (
    LAION_CLAP_CHECKPOINTS,
    LAION_CLAP_REPO,
    laion_clap_cfg,
)
from speechbrain_textsep.encoders.clap_errors import CLAPWeightsUnavailableError

__all__ = ["HUB_PREFIX", "hub_download", "hub_snapshot", "resolve_clap_source"]

#: Prefix of the hub sources (``"hf-hub:<org>/<repo>[/<file>]"``).
HUB_PREFIX = "hf-hub:"


def _missing_file_message(repo_id, filename, cache_dir, cause):
    """The error message of a hub file neither cached nor downloadable."""
    import huggingface_hub

    offline = huggingface_hub.constants.HF_HUB_OFFLINE
    return (
        f"cannot get the CLAP file {filename!r} of the hub repository "
        f"{repo_id!r}: it is not in the Hugging Face cache "
        f"({cache_dir or 'default cache'}) and "
        + (
            "HF_HUB_OFFLINE is set"
            if offline
            else "could not be downloaded (offline? no such file?)"
        )
        + ". Download it once with network access (same cache_dir), e.g. "
        f"`huggingface-cli download {repo_id} {filename}`, or give a local "
        f"checkpoint file or folder as source=<path>. Cause: {cause}"
    )


def hub_download(repo_id, filename, cache_dir):
    """``hf_hub_download`` with a clear error when it cannot get the file.

    Arguments
    ---------
    repo_id : str
        Hub repository (``"<org>/<repo>"``).
    filename : str
        File of the repository.
    cache_dir : str or None
        Hugging Face cache (None: its default).

    Returns
    -------
    str
        The path of the file in the cache.

    Raises
    ------
    CLAPWeightsUnavailableError
        The file is neither cached nor downloadable.
    """
    import huggingface_hub
    from huggingface_hub import errors

    try:
        return huggingface_hub.hf_hub_download(repo_id, filename, cache_dir=cache_dir)
    except (
        errors.RepositoryNotFoundError,
        errors.RevisionNotFoundError,
    ) as e:
        raise CLAPWeightsUnavailableError(
            f"cannot get {filename!r} of the hub repository {repo_id!r}: {e}"
        ) from e
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled, OSError) as e:
        raise CLAPWeightsUnavailableError(
            _missing_file_message(repo_id, filename, cache_dir, e)
        ) from e
    except errors.EntryNotFoundError as e:
        raise CLAPWeightsUnavailableError(
            f"the hub repository {repo_id!r} has no file {filename!r}: {e}"
        ) from e


def hub_snapshot(repo_id, cache_dir):
    """``snapshot_download`` of a CLAP folder repo, with a clear error.

    Arguments
    ---------
    repo_id : str
        Hub repository (``"<org>/<repo>"``) holding a CLAP folder.
    cache_dir : str or None
        Hugging Face cache (None: its default).

    Returns
    -------
    str
        The snapshot folder in the cache.

    Raises
    ------
    CLAPWeightsUnavailableError
        The repository is neither cached nor downloadable.
    """
    import huggingface_hub

    try:
        return huggingface_hub.snapshot_download(repo_id, cache_dir=cache_dir)
    except Exception as e:
        raise CLAPWeightsUnavailableError(
            f"cannot get the CLAP folder of the hub repository {repo_id!r}: it is "
            f"not in the Hugging Face cache ({cache_dir or 'default cache'}) and "
            "could not be downloaded (offline? HF_HUB_OFFLINE="
            f"{os.environ.get('HF_HUB_OFFLINE', '')!r}). Cause: {e}"
        ) from e


def _checkpoint_cfg(filename, model_cfg):
    """``model_cfg``, or the laion_clap config a checkpoint's file name needs."""
    amodel = LAION_CLAP_CHECKPOINTS.get(os.path.basename(filename))
    return model_cfg or laion_clap_cfg(amodel or "HTSAT-base")


def _resolve_hub(source, model_cfg, tokenizer, cache_dir):
    """A ``hf-hub:`` source: a checkpoint file, or a CLAP folder's snapshot."""
    parts = source[len(HUB_PREFIX) :].strip("/").split("/")
    if len(parts) == 2:
        folder = hub_snapshot("/".join(parts), cache_dir)
        return _resolve_folder(folder, model_cfg, tokenizer)
    if len(parts) >= 3:
        repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
        path = hub_download(repo_id, filename, cache_dir)
        return path, _checkpoint_cfg(filename, model_cfg), tokenizer
    raise ValueError(
        f"invalid hub source {source!r}: use 'hf-hub:<org>/<repo>' (a CLAP "
        "folder) or 'hf-hub:<org>/<repo>/<checkpoint file>'"
    )


def _resolve_folder(folder, model_cfg, tokenizer):
    """A CLAP folder: its weights, its config and (default) its tokenizer."""
    config_path, weights = locate_clap_dir(folder)
    if model_cfg:
        raise ValueError(
            f"source {folder!r} is a CLAP folder, which holds its own config: "
            "do not give model_cfg"
        )
    return str(weights), read_clap_config(config_path), tokenizer or folder


def resolve_clap_source(source, model_cfg, tokenizer, cache_dir):
    """The weights file, model config and tokenizer source of a CLAP source.

    Files come first (download or cache look-up), so that a missing file is
    reported before a large model is built.

    Arguments
    ---------
    source : str or os.PathLike or None
        A checkpoint name of :data:`LAION_CLAP_REPO`, ``"hf-hub:<org>/<repo>"``
        or ``"hf-hub:<org>/<repo>/<file>"``, a local checkpoint file, a CLAP
        folder, or None (random weights from ``model_cfg``).
    model_cfg : dict or None
        The model config given (None: the source's, or laion_clap's for the
        checkpoint; a CLAP folder refuses one).
    tokenizer : str or os.PathLike or None
        The tokenizer given (None: a CLAP folder's own; else None).
    cache_dir : str or None
        Hugging Face cache (None: its default).

    Returns
    -------
    tuple
        ``(weights file or None, model_cfg, tokenizer source or None)``.

    Example
    -------
    >>> from speechbrain_textsep.encoders.clap_config import TINY_CLAP_CFG
    >>> resolve_clap_source(None, TINY_CLAP_CFG, "tok", None)[::2]
    (None, 'tok')
    >>> resolve_clap_source("no_such_clap.pt", None, None, None)
    Traceback (most recent call last):
    ...
    speechbrain_textsep.encoders.clap_errors.CLAPWeightsUnavailableError: ...
    """
    if source is None:
        if not model_cfg:
            raise ValueError("source=None (random weights) needs a model_cfg")
        return None, model_cfg, tokenizer
    source = os.fspath(source)
    if source.startswith(HUB_PREFIX):
        return _resolve_hub(source, model_cfg, tokenizer, cache_dir)
    if os.path.isdir(source):
        return _resolve_folder(source, model_cfg, tokenizer)
    if os.path.isfile(source):
        return source, _checkpoint_cfg(source, model_cfg), tokenizer
    if source in LAION_CLAP_CHECKPOINTS:
        path = hub_download(LAION_CLAP_REPO, source, cache_dir)
        return path, _checkpoint_cfg(source, model_cfg), tokenizer
    raise CLAPWeightsUnavailableError(
        f"CLAP source {source!r} is neither an existing checkpoint file or CLAP "
        f"folder, nor a checkpoint of {LAION_CLAP_REPO} "
        f"({sorted(LAION_CLAP_CHECKPOINTS)}), nor 'hf-hub:<org>/<repo>[/<file>]'"
    )
