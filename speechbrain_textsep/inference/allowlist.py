"""What a model folder may build, and the checks that enforce it.

A ``hyperparams.yaml`` is HyperPyYAML: its tags build Python objects
(``!new:``, ``!name:``, ``!apply:``), so a folder from the hub could run any
code. Unless the caller passes ``trust_remote_code=True``, a folder may
build only the objects of :data:`ALLOWED_CALLABLES` (the exact classes the
package's own folders use, by full name) and read public data attributes
of them (``!apply:getattr``, what ``<object.attribute>`` references
become). Everything else is refused before anything is built:

- every other object tag; ``!include:`` (reads other files), ``!module:``
  (hands out a module), ``!applyref:`` (calls while resolving references);
  the Python tags of YAML (``!!python/object/apply:``...); unknown tags;
  ``%TAG`` directives; tagged or non-scalar mapping keys;
- strings HyperPyYAML turns into tuples (``"(...)"``, parsed as YAML with
  PyYAML's unsafe loader) unless they hold plain values;
- sizes: more than :data:`MAX_HPARAMS_BYTES` bytes (256 KiB), more than
  :data:`MAX_NODES` nodes (5000; counted on libyaml's event stream first,
  then once aliases are expanded, each node visited once), recursive
  aliases, nesting deeper than :data:`MAX_DEPTH`;
- references (``!ref``, ``!copy``) are first resolved in a dry run that
  mirrors HyperPyYAML's, bounded: strings of more than
  :data:`MAX_REFERENCE_CHARS` characters, integers of more than
  :data:`MAX_INT_BITS` bits, string formatting and copies past
  :data:`MAX_NODES` nodes are refused;
- run options (``device``, ``jit``, ``compile``...) set by the folder.

After HyperPyYAML has resolved the references, the resolved text is checked
again (references may produce ``getattr`` nodes and tuple strings) and built
by :class:`AllowListLoader`, which resolves only allow-listed names (never
:func:`pydoc.locate` on a name from the file), parses tuples with a safe
loader and checks every ``getattr`` result (:func:`plain_attribute`).
:data:`ARGUMENT_RULES` says which arguments of the allowed classes name files
or models; :mod:`speechbrain_textsep.inference.loading` confines them.

Authors
 * speechbrain-textsep contributors
"""

import ast
import functools
import importlib
import inspect
import operator
import re

import torch
import yaml
from hyperpyyaml.core import deref, recursive_update
from ruamel.yaml import YAML
from ruamel.yaml.loader import SafeLoader
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

__all__ = [
    "ALLOWED_CALLABLES",
    "ARGUMENT_RULES",
    "ATTRIBUTE_GETTER",
    "MAX_DEPTH",
    "MAX_HPARAMS_BYTES",
    "MAX_INT_BITS",
    "MAX_NODES",
    "MAX_REFERENCE_CHARS",
    "AllowListLoader",
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
#: Most YAML nodes a folder may hold once its aliases are expanded (the
#: package's folders hold about 200).
MAX_NODES = 5_000
#: Deepest nesting of YAML nodes.
MAX_DEPTH = 64
#: Longest string a reference may produce, and deepest chain of references.
MAX_REFERENCE_CHARS = 100_000
#: Largest integer (bits) the arithmetic of a reference may compute.
MAX_INT_BITS = 4096

_YAML_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = frozenset(_YAML_TAG + t for t in ("str", "int", "float", "bool", "null"))
_CONTAINER_TAGS = {MappingNode: _YAML_TAG + "map", SequenceNode: _YAML_TAG + "seq"}
_OBJECT_TAGS = ("!new:", "!name:", "!apply:")
_REFERENCE_TAGS = ("!ref", "!copy", "!PLACEHOLDER")
_TUPLE = re.compile(r"^\(.*\)$", re.DOTALL)
_REFERENCE = re.compile(r"<[^>]*>")
_DIRECTIVE = re.compile(r"^%", re.MULTILINE)
# Tags PyYAML gives the plain values of a tuple string.
_TUPLE_TAGS = frozenset(
    _YAML_TAG + t
    for t in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")
)


class UntrustedModelError(PermissionError):
    """A model folder that would build, run or read what it may not."""


class _Refused(Exception):
    """One reason to refuse a folder (internal)."""


class _Stop(Exception):
    """The dry run stops where HyperPyYAML itself raises (internal)."""


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
def _line(node):
    return node.start_mark.line + 1


def _children(node):
    if isinstance(node, MappingNode):
        for key, value in node.value:
            yield key
            yield value
    elif isinstance(node, SequenceNode):
        yield from node.value


def distinct_nodes(root):
    """The distinct nodes of a composed YAML graph, each visited once.

    Sizes and depths are counted as if aliases were expanded, without
    expanding them.

    Arguments
    ---------
    root : ruamel.yaml.nodes.Node

    Returns
    -------
    list
        The nodes, in document order.

    Example
    -------
    >>> bomb = "a: &a [1, 1]\\n" + "".join(
    ...     f"{n}: &{n} [*{p}, *{p}, *{p}]\\n"
    ...     for p, n in zip("abcdefghij", "bcdefghijk")
    ... )
    >>> try:
    ...     distinct_nodes(SafeLoader(bomb).get_single_node())
    ... except Exception as e:
    ...     print(e)
    holds more than 5000 nodes once its aliases are expanded (line 8)
    """
    sizes, heights, order, open_nodes = {}, {}, [], set()
    stack = [(root, False)]
    while stack:
        node, closing = stack.pop()
        key = id(node)
        if closing:
            open_nodes.discard(key)
            children = list(_children(node))
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            heights[key] = 1 + max((heights[id(c)] for c in children), default=0)
            if sizes[key] > MAX_NODES:
                raise _Refused(
                    f"holds more than {MAX_NODES} nodes once its aliases are "
                    f"expanded (line {_line(node)})"
                )
            if heights[key] > MAX_DEPTH:
                raise _Refused(f"nests deeper than {MAX_DEPTH} levels")
            continue
        if key in sizes:
            continue
        open_nodes.add(key)
        order.append(node)
        stack.append((node, True))
        for child in reversed(list(_children(node))):
            if id(child) in open_nodes:
                raise _Refused(f"holds a recursive alias (line {_line(child)})")
            if id(child) not in sizes:
                stack.append((child, False))
    return order


def _shown(tag, limit=100):
    """A tag as written (``!!`` for YAML's), cut at ``limit`` characters."""
    if tag.startswith(_YAML_TAG):
        tag = "!!" + tag[len(_YAML_TAG) :]
    return tag if len(tag) <= limit else tag[: limit - 3] + "..."


def _tuple_problem(node):
    """Why a string HyperPyYAML reads as a tuple is refused, or None."""
    text = node.value
    shown = f"the tuple string {text[:60]!r} (line {_line(node)})"
    try:
        parsed = yaml.compose("[" + text[1:-1] + "]", Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return f"has {shown}, which HyperPyYAML cannot parse"
    stack, seen = [parsed], set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if item.tag not in _TUPLE_TAGS:
            return (
                f"has {shown}, which HyperPyYAML parses with PyYAML's unsafe "
                f"loader: it holds the tag {_shown(item.tag)}"
            )
        if isinstance(item, yaml.MappingNode):
            stack.extend(n for pair in item.value for n in pair)
        elif isinstance(item, yaml.SequenceNode):
            stack.extend(item.value)
    return None


def _object_problem(prefix, name, node):
    """Why an object tag is refused, or None."""
    line = _line(node)
    if prefix == "!apply:" and name == ATTRIBUTE_GETTER:
        attribute = None
        if isinstance(node, SequenceNode) and len(node.value) == 2:
            last = node.value[1]
            if isinstance(last, ScalarNode) and last.tag == _YAML_TAG + "str":
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
        f"builds {_shown(prefix + name)} (line {line}), which is not on the allow-list"
    )


def _tag_problem(tag, node):
    """Why a tag that is neither plain nor an object tag is refused."""
    line = _line(node)
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
            return what.format(_shown(tag)[len(prefix) :], line)
    if tag.startswith(_YAML_TAG + "python/"):
        return f"uses the Python tag {_shown(tag)} (line {line})"
    return f"uses the tag {_shown(tag)} (line {line}), which builds nothing allowed"


def _node_problems(node, resolved):
    """The problems of one node (its tag, its keys)."""
    tag = node.tag or ""
    if isinstance(node, MappingNode):
        for key, _ in node.value:
            if not (isinstance(key, ScalarNode) and key.tag in _PLAIN_TAGS):
                yield (
                    f"builds {_shown(key.tag or '?')} in a mapping key (line "
                    f"{_line(key)}): keys must be plain values"
                )
    if isinstance(node, ScalarNode) and tag in (_YAML_TAG + "str", "!tuple"):
        if tag == "!tuple" or _TUPLE.match(node.value):
            problem = _tuple_problem(node)
            if problem:
                yield problem
        return
    if tag == _CONTAINER_TAGS.get(type(node)) or (
        isinstance(node, ScalarNode) and tag in _PLAIN_TAGS
    ):
        return
    if isinstance(node, ScalarNode) and tag in _REFERENCE_TAGS:
        if resolved:
            yield f"keeps the unresolved {tag} {node.value!r} (line {_line(node)})"
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
    if not isinstance(root, MappingNode) or root.tag != _YAML_TAG + "map":
        return ["is not a plain mapping of hyperparameters"]
    try:
        nodes = distinct_nodes(root)
    except _Refused as e:
        return [str(e)]
    problems = []
    for node in nodes:
        problems.extend(_node_problems(node, resolved))
    return list(dict.fromkeys(problems))


def _compose(text):
    """The node graph of a text, composed by ruamel.yaml (as HyperPyYAML does)."""
    loader = AllowListLoader(text)
    try:
        return loader, loader.get_single_node()
    except RecursionError as e:
        raise _Refused(f"nests deeper than {MAX_DEPTH} levels") from e
    except Exception as e:  # ruamel's parser and composer errors
        raise _Refused(f"is not valid YAML ({str(e).splitlines()[0]})") from e


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
        _count_events(text)
        _, root = _compose(text)
        problems = _graph_problems(root, resolved=False)
        if problems:
            return problems
        options = set(_run_options())
        for key, _ in root.value:
            if key.value in options:
                problems.append(
                    f"sets the run option {key.value!r} (line {_line(key)}): run "
                    "options are the caller's (run_opts=)"
                )
        if not problems and _has_references(root):
            _DryRun(text, overrides).run()
    except _Refused as e:
        problems.append(str(e))
    return problems


def _count_events(text):
    """Refuses a text of more than :data:`MAX_NODES` nodes, fast.

    Streams the parser events of libyaml (PyYAML's C parser; its Python one
    when missing) and stops at the limit, before the slower composition.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        for count, _ in enumerate(yaml.parse(text, Loader=loader)):
            if count > 2 * MAX_NODES + 4:  # a node is one or two events
                raise _Refused(f"holds more than {MAX_NODES} nodes")
    except yaml.YAMLError as e:
        raise _Refused(f"is not valid YAML ({str(e).splitlines()[0]})") from e


def _has_references(root):
    return any(
        isinstance(node, ScalarNode) and node.tag in ("!ref", "!copy")
        for node in distinct_nodes(root)
    )


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


# ------------------------------------------------------ reference dry run
_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
}


def _bits(value):
    return abs(value).bit_length() if isinstance(value, int) else 0


class _DryRun:
    """HyperPyYAML's reference resolution, replayed on a copy with bounds.

    Mirrors ``hyperpyyaml.core`` (``_walk_tree_and_resolve``,
    ``recursive_resolve``, ``parse_arithmetic``): same tree, same walk
    order, same ``deref``. Where HyperPyYAML would raise, the dry run stops
    (the real resolution then raises the same error); where it would grow
    without bound, the folder is refused.
    """

    def __init__(self, text, overrides):
        self.tree = YAML().load(text)
        self.copied = 0
        self.key = None
        self.expression = None
        if overrides:
            try:
                recursive_update(self.tree, overrides, must_match=True)
            except (KeyError, TypeError):
                self.tree = None  # HyperPyYAML raises on these overrides

    def run(self):
        if self.tree is None:
            return
        try:
            self.walk("root", self.tree)
        except (RecursionError, MemoryError) as e:
            # HyperPyYAML might get further: refuse rather than stop here.
            raise _Refused(
                f"nests the references or arithmetic of {self.key} too deeply"
            ) from e
        except _Stop:
            pass

    def walk(self, key, node):
        if isinstance(node, list):
            for i, sub in enumerate(node):
                node[i] = self.walk(i if key == "root" else f"{key}[{i}]", sub)
        elif isinstance(node, dict):
            for k, sub in node.items():
                node[k] = self.walk(k if key == "root" else f"{key}[{k}]", sub)
        tag = getattr(getattr(node, "tag", None), "value", None) or ""
        if tag in ("!ref", "!copy"):
            self.key, self.expression = key, f"{tag} {node.value}"
            return self.resolve(node.value, [], tag == "!copy", 0)
        if tag == "!PLACEHOLDER":
            raise _Stop
        return node

    def refuse(self, what):
        shown = f"{self.key}: {self.expression}"
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise _Refused(f"has the reference {shown}, which {what}")

    def resolve(self, reference, chain, copy_mode, depth):
        if depth > MAX_DEPTH:
            self.refuse(f"nests references deeper than {MAX_DEPTH}")
        if not isinstance(reference, str) or not _REFERENCE.search(reference):
            return reference
        if len(chain) > 1 and reference in chain[1:]:
            raise _Stop  # HyperPyYAML: "Circular reference detected"
        if _REFERENCE.fullmatch(reference):
            value = self.deref(reference.strip("<>"), copy_mode)
            chain += [reference]
            return self.resolve(value, chain, copy_mode, depth + 1)
        chain += [match[0] for match in _REFERENCE.findall(reference)]
        value = self.resolve(
            self.substituted(reference, copy_mode), chain, copy_mode, depth + 1
        )
        return self.arithmetic(value)

    def substituted(self, reference, copy_mode):
        """``re.sub`` of the references, refused as soon as it grows too long."""
        pieces, total, end = [], 0, 0
        for match in _REFERENCE.finditer(reference):
            text = self.interpolated(match[0].strip("<>"), copy_mode)
            pieces += [reference[end : match.start()], text]
            total += match.start() - end + len(text)
            end = match.end()
            if total > MAX_REFERENCE_CHARS:
                self.refuse(
                    f"builds a string of more than {MAX_REFERENCE_CHARS} characters"
                )
        return "".join(pieces) + reference[end:]

    def deref(self, reference, copy_mode):
        try:
            value = deref(reference, self.tree, False)
        except Exception as e:  # HyperPyYAML raises the same error
            raise _Stop from e
        if copy_mode:
            self.copied += _count_objects(value, MAX_NODES + 1 - self.copied)
            if self.copied > MAX_NODES:
                self.refuse(f"copies more than {MAX_NODES} nodes")
        return value

    def interpolated(self, reference, copy_mode):
        value = self.deref(reference, copy_mode)
        if isinstance(value, (dict, list)):
            self.refuse(f"writes the object <{reference}> into a string")
        try:
            text = str(value)
        except ValueError as e:  # an integer too long to print: HyperPyYAML raises
            raise _Stop from e
        if len(text) > MAX_REFERENCE_CHARS:
            self.refuse(
                f"builds a string of more than {MAX_REFERENCE_CHARS} characters"
            )
        return text

    def arithmetic(self, text):
        try:
            return self.evaluate(ast.parse(text, mode="eval").body)
        except (TypeError, SyntaxError, KeyError):
            return text  # HyperPyYAML keeps the string
        except (_Refused, RecursionError, MemoryError):
            raise
        except Exception as e:  # HyperPyYAML raises (ZeroDivisionError...)
            raise _Stop from e

    def evaluate(self, node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.BinOp):
            function = _OPERATORS[type(node.op)]
            left, right = self.evaluate(node.left), self.evaluate(node.right)
            self.check_operation(node.op, left, right)
            return function(left, right)
        if isinstance(node, ast.UnaryOp):
            raise KeyError(type(node.op))
        raise TypeError(node)

    def check_operation(self, op, left, right):
        shown = f"{str(left)[:20]} {type(op).__name__} {str(right)[:20]}"
        if isinstance(op, ast.Pow) and isinstance(left, int) and isinstance(right, int):
            if right > 0 and abs(left) > 1 and right * _bits(left) > MAX_INT_BITS:
                self.refuse(
                    f"computes {left} ** {right}".replace("\n", " ")[:60]
                    + f", an integer past {MAX_INT_BITS} bits"
                )
        elif isinstance(op, ast.Mult):
            sizes = [len(v) for v in (left, right) if isinstance(v, (str, bytes))]
            counts = [v for v in (left, right) if isinstance(v, int)]
            if sizes and counts and sizes[0] * max(counts[0], 0) > MAX_REFERENCE_CHARS:
                self.refuse(f"repeats a string past {MAX_REFERENCE_CHARS} characters")
            if len(counts) == 2 and _bits(left) + _bits(right) > MAX_INT_BITS:
                self.refuse(f"computes {shown}, an integer past {MAX_INT_BITS} bits")
        elif isinstance(op, ast.Mod) and isinstance(left, (str, bytes)):
            self.refuse("formats a string with %")


def _count_objects(value, limit):
    """Distinct containers and values of a data tree, counted up to ``limit``."""
    seen, stack = set(), [value]
    while stack and len(seen) < limit:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return len(seen)


# ------------------------------------------------------------ construction
class AllowListLoader(SafeLoader):
    """ruamel.yaml's safe loader with HyperPyYAML's tags, allow-listed.

    Builds a resolved ``hyperparams.yaml`` like ``load_hyperpyyaml`` does
    (``!new:``, ``!name:``, ``!apply:``, ``!tuple``, deep construction), but
    resolves only the names of :data:`ALLOWED_CALLABLES`, runs
    ``!apply:getattr`` as :func:`plain_attribute`, and parses tuple strings
    with PyYAML's safe loader. Python tags and every other tag are
    construction errors.

    Example
    -------
    >>> loader = AllowListLoader("n: 4\\nshape: (1, 2)\\nnet: !new:"
    ...     "speechbrain_textsep.models.unet.AudioUNet {out_channels: 4}")
    >>> hparams = loader.get_single_data()
    >>> hparams["shape"], type(hparams["net"]).__name__
    ((1, 2), 'AudioUNet')
    >>> try:
    ...     AllowListLoader("x: !apply:os.getcwd []").get_single_data()
    ... except UntrustedModelError as e:
    ...     print(e)
    os.getcwd is not on the allow-list (speechbrain_textsep.inference.allowlist)
    """

    def construct_object(self, node, deep=True):
        """Deep by default, as HyperPyYAML makes it while it loads."""
        if (
            isinstance(node, ScalarNode)
            and node.tag == _YAML_TAG + "str"
            and node.style is None
            and _TUPLE.match(node.value)
        ):
            return _construct_tuple(self, node)
        return super().construct_object(node, deep=deep)


def _arguments(loader, node):
    if isinstance(node, MappingNode):
        return [], loader.construct_mapping(node, deep=True)
    if isinstance(node, SequenceNode):
        return loader.construct_sequence(node, deep=True), {}
    return [], {}


def _construct_new(loader, name, node):
    cls = allowed_object(name)
    if not inspect.isclass(cls):
        raise ValueError(f"!new:{name} should be a class, but is {cls}")
    args, kwargs = _arguments(loader, node)
    return cls(*args, **kwargs)


def _construct_name(loader, name, node):
    if name == ATTRIBUTE_GETTER:
        raise UntrustedModelError("!name:getattr is not on the allow-list")
    target = allowed_object(name)
    args, kwargs = _arguments(loader, node)
    return functools.partial(target, *args, **kwargs) if args or kwargs else target


def _construct_apply(loader, name, node):
    function = allowed_object(name)
    args, kwargs = _arguments(loader, node)
    return function(*args, **kwargs)


def _construct_tuple(loader, node):
    text = loader.construct_scalar(node)
    return tuple(yaml.safe_load("[" + text[1:-1] + "]"))


AllowListLoader.add_multi_constructor("!new:", _construct_new)
AllowListLoader.add_multi_constructor("!name:", _construct_name)
AllowListLoader.add_multi_constructor("!apply:", _construct_apply)
AllowListLoader.add_constructor("!tuple", _construct_tuple)
