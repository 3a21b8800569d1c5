"""What a model folder may build, and the checks that enforce it.

A ``hyperparams.yaml`` is HyperPyYAML: its tags build Python objects
(``!new:``, ``!name:``, ``!apply:``), so a folder from the hub could run any
code. Unless the caller passes ``trust_remote_code=True``, a folder may
build only the objects of :data:`ALLOWED_CALLABLES` (the exact classes the
package's own folders use, by full name) and read public data attributes
of them (``!apply:getattr``, what ``<object.attribute>`` references
become). Everything else is refused before anything is built
(:func:`hyperparams_problems`):

- every other object tag; ``!include:`` (reads other files), ``!module:``
  (hands out a module), ``!applyref:`` (calls while resolving references);
  the Python tags of YAML (``!!python/object/apply:``...); unknown tags;
  ``%TAG`` directives; tagged or non-scalar mapping keys;
- strings HyperPyYAML turns into tuples (``"(...)"``, parsed as YAML with
  PyYAML's unsafe loader) unless they hold plain values;
- sizes: more than :data:`MAX_HPARAMS_BYTES` bytes (256 KiB), more than
  :data:`MAX_NODES` nodes (5000; counted on libyaml's event stream first,
  then once aliases are expanded, each node visited once), recursive
  aliases, nesting deeper than :data:`MAX_DEPTH`
  (:mod:`speechbrain_textsep.inference.yaml_graph`);
- references (``!ref``, ``!copy``) are first resolved in a dry run that
  mirrors HyperPyYAML's, bounded: strings of more than
  :data:`MAX_REFERENCE_CHARS` characters, integers of more than
  :data:`MAX_INT_BITS` bits, string formatting and copies past
  :data:`MAX_NODES` nodes are refused
  (:mod:`speechbrain_textsep.inference.reference_dryrun`);
- run options (``device``, ``jit``, ``compile``...) set by the folder.

After HyperPyYAML has resolved the references, the resolved text is checked
again (:func:`resolved_problems`: references may produce ``getattr`` nodes
and tuple strings) and built by
:class:`~speechbrain_textsep.inference.allowlist_loader.AllowListLoader`,
which resolves only allow-listed names (:func:`allowed_object`, never
:func:`pydoc.locate` on a name from the file), parses tuples with a safe
loader and checks every ``getattr`` result (:func:`plain_attribute`).
:data:`ARGUMENT_RULES` says which arguments of the allowed classes name files
or models; :mod:`speechbrain_textsep.inference.loading` confines them.

Authors
 * speechbrain-textsep contributors
"""

import functools
import importlib
import inspect
import re

import torch
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from speechbrain_textsep.inference.reference_dryrun import (
    MAX_INT_BITS,
    MAX_REFERENCE_CHARS,
    ReferenceDryRun,
)
from speechbrain_textsep.inference.yaml_graph import (
    MAX_DEPTH,
    MAX_NODES,
    TUPLE_STRING,
    YAML_TAG,
    Refusal,
    compose,
    count_events,
    distinct_nodes,
    has_references,
    line_of,
    shown_tag,
    tuple_problem,
)

__all__ = [
    "ALLOWED_CALLABLES",
    "ARGUMENT_RULES",
    "ATTRIBUTE_GETTER",
    "MAX_DEPTH",
    "MAX_HPARAMS_BYTES",
    "MAX_INT_BITS",
    "MAX_NODES",
    "MAX_REFERENCE_CHARS",
    "UntrustedModelError",
    "allowed_object",
    "distinct_nodes",
    "hyperparams_problems",
    "plain_attribute",
    "resolved_problems",
    "untrusted_error",
]

#: Every class a model folder may build without ``trust_remote_code``: the
#: ones the shipped templates (speechbrain_textsep.templates) name, by full
#: name. A test checks this list against the templates and the folders the
#: package writes (recipes, ``textsep export``, ``textsep import``).
ALLOWED_CALLABLES = (
    "speechbrain.dataio.preprocess.AudioNormalizer",
    "speechbrain.utils.parameter_transfer.Pretrainer",
    "speechbrain_textsep.encoders.bert.BERTQueryEncoder",
    "speechbrain_textsep.encoders.clap.CLAPQueryEncoder",
    "speechbrain_textsep.encoders.clip.CLIPQueryEncoder",
    "speechbrain_textsep.encoders.labels.LabelQueryEncoder",
    "speechbrain_textsep.models.clapsep.CLAPSep",
    "speechbrain_textsep.models.clipsep.CLIPSep",
    "speechbrain_textsep.models.separator.MaskSeparator",
    "speechbrain_textsep.models.unet.AudioUNet",
    "speechbrain_textsep.models.weaksup.WeakSupMaskNet",
    "speechbrain_textsep.models.weaksup.WeakSupSeparator",
    "speechbrain_textsep.processing.spectral.SpectralMasking",
)

#: The one function a folder may apply: ``!apply:getattr [object, name]``
#: (what HyperPyYAML writes for ``<object.name>``), on public data
#: attributes only (:func:`plain_attribute`).
ATTRIBUTE_GETTER = "getattr"

#: Arguments of allowed classes that name files, folders, models or caches,
#: and what an untrusted folder may give them (enforced by
#: :mod:`speechbrain_textsep.inference.loading`):
#:
#: - ``location``: a name (hub id, checkpoint name, pretrained tag) or a
#:   path inside the model folder (no absolute path, ``..``, symlink leaving
#:   it, nor a file of the current directory);
#: - ``clip_model``: an open_clip model name, ``hf-hub:`` id, or
#:   ``local-dir:<path>`` with a path inside the model folder;
#: - ``unset``: must be absent or null (download caches, hooks);
#: - ``relative``: a relative path without ``..`` (a download cache);
#: - ``folder_files``: a mapping of paths inside the model folder;
#: - ``plain``: a mapping of plain values (never called).
ARGUMENT_RULES = {
    "speechbrain_textsep.encoders.clip.CLIPQueryEncoder": {
        "model_name": "clip_model",
        "pretrained": "location",
        "cache_dir": "unset",
    },
    "speechbrain_textsep.encoders.clap.CLAPQueryEncoder": {
        "source": "location",
        "tokenizer": "location",
        "cache_dir": "unset",
    },
    "speechbrain_textsep.encoders.bert.BERTQueryEncoder": {
        "source": "location",
        "save_path": "relative",
    },
    "speechbrain.utils.parameter_transfer.Pretrainer": {
        "collect_in": "unset",
        "custom_hooks": "unset",
        "paths": "folder_files",
        "conditions": "plain",
    },
}

#: Largest ``hyperparams.yaml`` read without ``trust_remote_code`` (bytes).
MAX_HPARAMS_BYTES = 1 << 18
# The other limits are enforced (and defined) where they apply: MAX_NODES
# and MAX_DEPTH in yaml_graph, MAX_REFERENCE_CHARS and MAX_INT_BITS in
# reference_dryrun.

_PLAIN_TAGS = frozenset(YAML_TAG + t for t in ("str", "int", "float", "bool", "null"))
_CONTAINER_TAGS = {MappingNode: YAML_TAG + "map", SequenceNode: YAML_TAG + "seq"}
_OBJECT_TAGS = ("!new:", "!name:", "!apply:")
_REFERENCE_TAGS = ("!ref", "!copy", "!PLACEHOLDER")
_DIRECTIVE = re.compile(r"^%", re.MULTILINE)


class UntrustedModelError(PermissionError):
    """A model folder that would build, run or read what it may not."""


def untrusted_error(source, problems, name="hyperparams.yaml"):
    """The :class:`UntrustedModelError` for a folder and its problems.

    Example
    -------
    >>> print(untrusted_error("evil/", ["builds !apply:os.system (line 1)"]))
    refusing to load evil/: its hyperparams.yaml builds !apply:os.system (line 1). \
Loading it could run code or read files outside the folder; if you trust this \
model, pass trust_remote_code=True (textsep: --trust-remote-code).
    """
    return UntrustedModelError(
        f"refusing to load {source}: its {name} {'; '.join(problems)}. Loading it "
        "could run code or read files outside the folder; if you trust this "
        "model, pass trust_remote_code=True (textsep: --trust-remote-code)."
    )


def allowed_object(name):
    """The allow-listed class (or :func:`plain_attribute`) of a full name.

    Arguments
    ---------
    name : str
        Full name as a tag gives it (``speechbrain_textsep.models.unet.AudioUNet``).

    Returns
    -------
    object

    Example
    -------
    >>> allowed_object("speechbrain_textsep.models.unet.AudioUNet").__name__
    'AudioUNet'
    >>> try:
    ...     allowed_object("os.system")
    ... except UntrustedModelError as e:
    ...     print(e)
    os.system is not on the allow-list (speechbrain_textsep.inference.allowlist)
    """
    if name == ATTRIBUTE_GETTER:
        return plain_attribute
    if name not in ALLOWED_CALLABLES:
        raise UntrustedModelError(f"{name} is not on the allow-list ({__name__})")
    module, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def _is_code(value, depth=0):
    """Whether a value is, or holds, a module, class or function."""
    if inspect.ismodule(value):
        return True
    if callable(value) and not isinstance(value, torch.nn.Module):
        return True
    if depth < 4 and isinstance(value, dict):
        items = list(value.keys()) + list(value.values())
    elif depth < 4 and isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
    else:
        return False
    return any(_is_code(item, depth + 1) for item in items[:10000])


def plain_attribute(obj, name):
    """``getattr`` limited to public data attributes of built objects.

    What ``!apply:getattr`` runs in an untrusted folder: the attribute must
    be a public name, ``obj`` a built object (not a module, class or
    function), and the value data or a ``torch.nn.Module`` (not a method,
    function, class or module, nor a container of them).

    Example
    -------
    >>> import torch
    >>> plain_attribute(torch.nn.Linear(2, 3), "out_features")
    3
    >>> import os
    >>> for obj, name in [(torch.nn.Linear(2, 3), "forward"), (os, "system")]:
    ...     try:
    ...         plain_attribute(obj, name)
    ...     except UntrustedModelError as e:
    ...         print(e)
    !apply:getattr refuses Linear.forward: it is code (method), not data
    !apply:getattr refuses 'system' of the module os: only attributes of built objects
    """
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise UntrustedModelError(
            f"!apply:getattr refuses the attribute {name!r}: only public names"
        )
    if (
        inspect.ismodule(obj)
        or inspect.isclass(obj)
        or inspect.isroutine(obj)
        or isinstance(obj, functools.partial)
    ):
        kind = "module" if inspect.ismodule(obj) else type(obj).__name__
        shown = obj.__name__ if hasattr(obj, "__name__") else repr(obj)[:80]
        raise UntrustedModelError(
            f"!apply:getattr refuses {name!r} of the {kind} {shown}: only "
            "attributes of built objects"
        )
    value = getattr(obj, name)
    if _is_code(value):
        kind = type(value).__name__
        raise UntrustedModelError(
            f"!apply:getattr refuses {type(obj).__name__}.{name}: it is code "
            f"({kind}), not data"
        )
    return value


# ------------------------------------------------------------ node checks
def _object_problem(prefix, name, node):
    """Why an object tag is refused, or None."""
    line = line_of(node)
    if prefix == "!apply:" and name == ATTRIBUTE_GETTER:
        attribute = None
        if isinstance(node, SequenceNode) and len(node.value) == 2:
            last = node.value[1]
            if isinstance(last, ScalarNode) and last.tag == YAML_TAG + "str":
                attribute = last.value
        if attribute and attribute.isidentifier() and not attribute.startswith("_"):
            return None
        return (
            f"uses !apply:getattr (line {line}) on {attribute!r}: only "
            "[object, public_name] reads a data attribute"
        )
    if name in ALLOWED_CALLABLES:
        return None
    return (
        f"builds {shown_tag(prefix + name)} (line {line}), which is not on the "
        "allow-list"
    )


def _tag_problem(tag, node):
    """Why a tag that is neither plain nor an object tag is refused."""
    line = line_of(node)
    for prefix, what in (
        (
            "!include:",
            "includes the file {} (!include:, line {}): a folder may not "
            "read other files",
        ),
        ("!module:", "hands out the module {} (!module:, line {})"),
        ("!applyref:", "calls {} while references are resolved (!applyref:, line {})"),
    ):
        if tag.startswith(prefix):
            return what.format(shown_tag(tag)[len(prefix) :], line)
    if tag.startswith(YAML_TAG + "python/"):
        return f"uses the Python tag {shown_tag(tag)} (line {line})"
    return f"uses the tag {shown_tag(tag)} (line {line}), which builds nothing allowed"


def _node_problems(node, resolved):
    """The problems of one node (its tag, its keys)."""
    tag = node.tag or ""
    if isinstance(node, MappingNode):
        for key, _ in node.value:
            if not (isinstance(key, ScalarNode) and key.tag in _PLAIN_TAGS):
                yield (
                    f"builds {shown_tag(key.tag or '?')} in a mapping key (line "
                    f"{line_of(key)}): keys must be plain values"
                )
    if isinstance(node, ScalarNode) and tag in (YAML_TAG + "str", "!tuple"):
        if tag == "!tuple" or TUPLE_STRING.match(node.value):
            problem = tuple_problem(node)
            if problem:
                yield problem
        return
    if tag == _CONTAINER_TAGS.get(type(node)) or (
        isinstance(node, ScalarNode) and tag in _PLAIN_TAGS
    ):
        return
    if isinstance(node, ScalarNode) and tag in _REFERENCE_TAGS:
        if resolved:
            yield f"keeps the unresolved {tag} {node.value!r} (line {line_of(node)})"
        return
    for prefix in _OBJECT_TAGS:
        if tag.startswith(prefix):
            problem = _object_problem(prefix, tag[len(prefix) :], node)
            if problem:
                yield problem
            return
    yield _tag_problem(tag, node)


def _graph_problems(root, resolved):
    """Problems of a composed document: structure first, then each node."""
    if not isinstance(root, MappingNode) or root.tag != YAML_TAG + "map":
        return ["is not a plain mapping of hyperparameters"]
    try:
        nodes = distinct_nodes(root)
    except Refusal as e:
        return [str(e)]
    problems = []
    for node in nodes:
        problems.extend(_node_problems(node, resolved))
    return list(dict.fromkeys(problems))


def _run_options():
    """Names of SpeechBrain's run options (the caller's, never the folder's)."""
    try:
        from speechbrain.core import RunOptions

        return tuple(RunOptions().as_dict())
    except ImportError:  # SpeechBrain 1.0
        from speechbrain.inference.interfaces import Pretrained

        return tuple(getattr(Pretrained, "run_opt_defaults", {}))


def hyperparams_problems(text, overrides=None):
    """Why a ``hyperparams.yaml`` text may not be loaded untrusted (before
    HyperPyYAML resolves its references).

    Arguments
    ---------
    text : str
        Content of the file.
    overrides : dict, optional
        The caller's overrides (they take part in the dry run).

    Returns
    -------
    list of str
        The problems (empty: it may be resolved and built).

    Example
    -------
    >>> hyperparams_problems(
    ...     "n: 2\\nunet: !new:speechbrain_textsep.models.unet.AudioUNet [4]"
    ... )
    []
    >>> hyperparams_problems("a: !apply:os.system [ls]\\nb: !include:x.yaml")
    ['builds !apply:os.system (line 1), which is not on the allow-list', \
'includes the file x.yaml (!include:, line 2): a folder may not read other files']
    >>> hyperparams_problems("a: !!python/object/apply:os.system [ls]")
    ['uses the Python tag !!python/object/apply:os.system (line 1)']
    >>> print(*hyperparams_problems("a: 9\\nb: !ref <a> ** <a> ** <a> ** <a>"))
    has the reference b: !ref <a> ** <a> ** <a> ** <a>, which computes 9 ** \
387420489, an integer past 4096 bits
    """
    if len(text.encode("utf-8")) > MAX_HPARAMS_BYTES:
        return [f"has more than {MAX_HPARAMS_BYTES} bytes"]
    if _DIRECTIVE.search(text):
        return ["uses YAML directives (%TAG, %YAML)"]
    problems = []
    try:
        count_events(text)
        _, root = compose(text)
        problems = _graph_problems(root, resolved=False)
        if problems:
            return problems
        options = set(_run_options())
        for key, _ in root.value:
            if key.value in options:
                problems.append(
                    f"sets the run option {key.value!r} (line {line_of(key)}): run "
                    "options are the caller's (run_opts=)"
                )
        if not problems and has_references(root):
            ReferenceDryRun(text, overrides).run()
    except Refusal as e:
        problems.append(str(e))
    return problems


def resolved_problems(root):
    """Why a resolved document may not be built untrusted.

    Arguments
    ---------
    root : ruamel.yaml.nodes.Node
        The document HyperPyYAML's ``resolve_references`` wrote, composed.

    Returns
    -------
    list of str
    """
    return _graph_problems(root, resolved=True)
