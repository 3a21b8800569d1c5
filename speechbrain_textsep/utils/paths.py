"""Paths named inside a folder must stay inside it.

A model folder (or an encoder's folder) names other files: checkpoints,
weights, tokenizer files, sub-folders. Whoever wrote the folder chose those
names, so a name must not reach outside it: :func:`check_relative_path`
refuses absolute paths, ``~`` and ``..``; :func:`confined_path` also
refuses a name whose real path (symlinks followed) leaves the folder;
:func:`check_tree_confined` refuses a sub-folder that holds a symlink
leaving it. Symlinks that stay inside the folder (a Hugging Face cache
snapshot links to the blobs of the same repository) are fine.

Authors
 * speechbrain-textsep contributors
"""

import os

__all__ = [
    "PathEscapeError",
    "check_relative_path",
    "check_tree_confined",
    "confined_path",
    "is_inside",
]

#: Entries :func:`check_tree_confined` looks at before giving up.
MAX_TREE_ENTRIES = 10000


class PathEscapeError(PermissionError):
    """A path named inside a folder that points outside it."""


def check_relative_path(name, what="path"):
    """A path named inside a folder, as a relative POSIX path; refuses escapes.

    Arguments
    ---------
    name : str or os.PathLike
        The name as the folder gives it.
    what : str
        What the path is, for the error message.

    Returns
    -------
    str
        The name with ``/`` separators and without ``.`` parts.

    Raises
    ------
    PathEscapeError
        For an absolute path, a ``~`` path, a ``..`` part or an empty name.

    Example
    -------
    >>> check_relative_path("./clap//tokenizer.json")
    'clap/tokenizer.json'
    >>> for name in ("../secret.ckpt", "/etc/passwd"):
    ...     try:
    ...         check_relative_path(name, "weights")
    ...     except PathEscapeError as e:
    ...         print(e)
    weights '../secret.ckpt' leaves its folder ('..')
    weights '/etc/passwd' is absolute: it must be relative to its folder
    """
    name = os.fspath(name)
    if not isinstance(name, str):
        raise PathEscapeError(f"{what} {name!r} is not a text path")
    posix = name.replace("\\", "/")
    if "\0" in name or not posix.strip("/. "):
        raise PathEscapeError(f"{what} {name!r} names no file inside its folder")
    if (
        posix.startswith(("/", "~"))
        or os.path.isabs(name)
        or (len(posix) > 1 and posix[1] == ":")
    ):
        raise PathEscapeError(
            f"{what} {name!r} is absolute: it must be relative to its folder"
        )
    parts = [part for part in posix.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise PathEscapeError(f"{what} {name!r} leaves its folder ('..')")
    return "/".join(parts)


def is_inside(path, root):
    """Whether the real path of ``path`` is ``root``'s real path or below it.

    Example
    -------
    >>> is_inside("/usr/lib/../bin", "/usr")
    True
    >>> is_inside("/usr/../etc", "/usr")
    False
    """
    real = os.path.realpath(path)
    real_root = os.path.realpath(root)
    try:
        return os.path.commonpath([real, real_root]) == real_root
    except ValueError:  # different drives
        return False


def confined_path(root, name, what="path"):
    """The path of ``name`` inside ``root``; refuses one that resolves outside.

    Arguments
    ---------
    root : str or os.PathLike
        The folder.
    name : str
        The path the folder names (relative to it).
    what : str
        What the path is, for the error message.

    Returns
    -------
    str
        ``root/name`` (not resolved: names are kept).

    Raises
    ------
    PathEscapeError
        See :func:`check_relative_path`; also when a symlink on the way
        leads outside ``root``.

    Example
    -------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> os.symlink("/etc/hostname", os.path.join(root, "mask_net.ckpt"))
    >>> confined_path(root, "query_encoder.ckpt") == os.path.join(
    ...     root, "query_encoder.ckpt")
    True
    >>> try:
    ...     confined_path(root, "mask_net.ckpt")
    ... except PathEscapeError as e:
    ...     print(e)  # doctest: +ELLIPSIS
    path 'mask_net.ckpt' is a symlink to /etc/hostname, outside its folder ...
    """
    relative = check_relative_path(name, what)
    path = os.path.join(os.fspath(root), *relative.split("/"))
    if not is_inside(path, root):
        raise PathEscapeError(
            f"{what} {name!r} is a symlink to {os.path.realpath(path)}, outside "
            f"its folder {os.fspath(root)}"
        )
    return path


def check_tree_confined(root, folder=None, what="folder"):
    """Refuses a folder holding a symlink that leads outside ``root``.

    Arguments
    ---------
    root : str or os.PathLike
        The folder no path may leave.
    folder : str or os.PathLike, optional
        The sub-folder to check (default: ``root`` itself).
    what : str
        What the folder is, for the error message.

    Returns
    -------
    str
        ``folder``.

    Raises
    ------
    PathEscapeError
        When ``folder`` itself or an entry below it resolves outside
        ``root``, or it holds more than :data:`MAX_TREE_ENTRIES` entries.

    Example
    -------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(root, "clap"))
    >>> check_tree_confined(root, os.path.join(root, "clap")) == os.path.join(
    ...     root, "clap")
    True
    >>> os.symlink("/etc", os.path.join(root, "clap", "tokenizer"))
    >>> try:
    ...     check_tree_confined(root)
    ... except PathEscapeError as e:
    ...     print(e)  # doctest: +ELLIPSIS
    folder ... holds .../clap/tokenizer, a symlink to /etc, outside ...
    """
    root = os.fspath(root)
    folder = root if folder is None else os.fspath(folder)
    if not is_inside(folder, root):
        raise PathEscapeError(
            f"{what} {folder} resolves to {os.path.realpath(folder)}, outside {root}"
        )
    seen = 0
    for parent, dirs, files in os.walk(folder, followlinks=False):
        for entry in dirs + files:
            seen += 1
            if seen > MAX_TREE_ENTRIES:
                raise PathEscapeError(
                    f"{what} {folder} holds more than {MAX_TREE_ENTRIES} entries"
                )
            path = os.path.join(parent, entry)
            if os.path.islink(path) and not is_inside(path, root):
                raise PathEscapeError(
                    f"{what} {folder} holds {path}, a symlink to "
                    f"{os.path.realpath(path)}, outside {root}"
                )
    return folder
