"""The arguments of allowed classes that name files or models, confined.

:func:`confine_arguments` applies
:data:`~speechbrain_textsep.inference.allowlist.ARGUMENT_RULES` to the
resolved document of an untrusted folder before it is built: sources,
tokenizers and CLIP ``local-dir:`` folders must be names or paths inside
the folder (rewritten to absolute paths, so that the encoders read them
there and not in the current directory), download caches and Pretrainer
hooks cannot be set, the Pretrainer's ``paths`` stay inside the folder and
its ``conditions`` are plain values. Refusals are
:class:`~speechbrain_textsep.inference.confined_folder.UntrustedPathError`.

Authors
 * speechbrain-textsep contributors
"""

import inspect
import os

from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from speechbrain_textsep.inference.allowlist import (
    ARGUMENT_RULES,
    allowed_object,
    distinct_nodes,
)
from speechbrain_textsep.utils.paths import PathEscapeError, check_relative_path

__all__ = ["confine_arguments"]

_LOCAL_DIR = "local-dir:"


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
