"""Fetching the files of a model folder: local, from a URL or the hub.

:func:`fetch_model_file` and :func:`fetch_model_folder` give the local path
of a file or sub-folder of a model folder, fetched with SpeechBrain's
``fetch`` (files) or ``huggingface_hub.snapshot_download`` (sub-folders),
also offline from the Hugging Face cache. A model that is neither a local
folder nor fetchable is :class:`ModelNotAvailableError`, with a message
that says why (offline, not cached, missing). They confine nothing:
:class:`~speechbrain_textsep.inference.confined_folder.ModelFolder` keeps
what they fetch inside the folder.

Authors
 * speechbrain-textsep contributors
"""

import os
import re

import huggingface_hub
from speechbrain.utils.fetching import FetchConfig, FetchFrom, fetch, guess_source

__all__ = [
    "HUB_ID",
    "ModelNotAvailableError",
    "fetch_model_file",
    "fetch_model_folder",
]

#: A Hugging Face repository id (``owner/name``).
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


class ModelNotAvailableError(OSError):
    """A model that is neither a local folder nor fetchable (offline, missing)."""


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
    if fetch_from == FetchFrom.HUGGING_FACE and not HUB_ID.match(source):
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
