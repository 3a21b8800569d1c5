"""Bounded walks over the YAML of an untrusted ``hyperparams.yaml``.

The structural half of the checks of
:mod:`speechbrain_textsep.inference.allowlist`, which need no allow-list:

- :func:`count_events` streams libyaml's events and stops past
  :data:`MAX_NODES` nodes, before the slower composition;
- :func:`compose` builds the node graph with ruamel.yaml, as HyperPyYAML
  does;
- :func:`distinct_nodes` visits each node of the graph once and refuses
  more than :data:`MAX_NODES` nodes once aliases are expanded, recursive
  aliases and nesting deeper than :data:`MAX_DEPTH`, without expanding the
  aliases;
- :func:`tuple_problem` checks the strings HyperPyYAML turns into tuples
  (parsed with PyYAML's unsafe loader): they may hold plain values only.

A reason to refuse is raised as :class:`Refusal`, which the checks turn
into the list of problems they return.

Authors
 * speechbrain-textsep contributors
"""

import re

import yaml
from ruamel.yaml.loader import SafeLoader
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "TUPLE_STRING",
    "YAML_TAG",
    "Refusal",
    "compose",
    "count_events",
    "distinct_nodes",
    "has_references",
    "line_of",
    "shown_tag",
    "tuple_problem",
]

#: Most YAML nodes a folder may hold once its aliases are expanded (the
#: package's folders hold about 200).
MAX_NODES = 5_000
#: Deepest nesting of YAML nodes.
MAX_DEPTH = 64

#: Prefix of the tags of YAML's own types (``!!str``, ``!!python/...``).
YAML_TAG = "tag:yaml.org,2002:"
#: A string HyperPyYAML reads as a tuple: ``"(...)"``.
TUPLE_STRING = re.compile(r"^\(.*\)$", re.DOTALL)
# Tags PyYAML gives the plain values of a tuple string.
_TUPLE_TAGS = frozenset(
    YAML_TAG + t
    for t in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")
)


class Refusal(Exception):
    """One reason to refuse a folder (the checks return it as a problem)."""


def line_of(node):
    """The line (1-based) where a node starts."""
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
                raise Refusal(
                    f"holds more than {MAX_NODES} nodes once its aliases are "
                    f"expanded (line {line_of(node)})"
                )
            if heights[key] > MAX_DEPTH:
                raise Refusal(f"nests deeper than {MAX_DEPTH} levels")
            continue
        if key in sizes:
            continue
        open_nodes.add(key)
        order.append(node)
        stack.append((node, True))
        for child in reversed(list(_children(node))):
            if id(child) in open_nodes:
                raise Refusal(f"holds a recursive alias (line {line_of(child)})")
            if id(child) not in sizes:
                stack.append((child, False))
    return order


def has_references(root):
    """Whether a composed document holds ``!ref`` or ``!copy`` nodes."""
    return any(
        isinstance(node, ScalarNode) and node.tag in ("!ref", "!copy")
        for node in distinct_nodes(root)
    )


def shown_tag(tag, limit=100):
    """A tag as written (``!!`` for YAML's), cut at ``limit`` characters."""
    if tag.startswith(YAML_TAG):
        tag = "!!" + tag[len(YAML_TAG) :]
    return tag if len(tag) <= limit else tag[: limit - 3] + "..."


def tuple_problem(node):
    """Why a string HyperPyYAML reads as a tuple is refused, or None."""
    text = node.value
    shown = f"the tuple string {text[:60]!r} (line {line_of(node)})"
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
                f"loader: it holds the tag {shown_tag(item.tag)}"
            )
        if isinstance(item, yaml.MappingNode):
            stack.extend(n for pair in item.value for n in pair)
        elif isinstance(item, yaml.SequenceNode):
            stack.extend(item.value)
    return None


def count_events(text):
    """Refuses a text of more than :data:`MAX_NODES` nodes, fast.

    Streams the parser events of libyaml (PyYAML's C parser; its Python one
    when missing) and stops at the limit, before the slower composition.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        for count, _ in enumerate(yaml.parse(text, Loader=loader)):
            if count > 2 * MAX_NODES + 4:  # a node is one or two events
                raise Refusal(f"holds more than {MAX_NODES} nodes")
    except yaml.YAMLError as e:
        raise Refusal(f"is not valid YAML ({str(e).splitlines()[0]})") from e


def compose(text):
    """The node graph of a text, composed by ruamel.yaml (as HyperPyYAML does).

    Composition only: the loader builds nothing (ruamel.yaml's safe loader
    composes as :class:`~speechbrain_textsep.inference.allowlist_loader.AllowListLoader`
    does).

    Returns
    -------
    tuple
        The loader and the root node.
    """
    loader = SafeLoader(text)
    try:
        return loader, loader.get_single_node()
    except RecursionError as e:
        raise Refusal(f"nests deeper than {MAX_DEPTH} levels") from e
    except Exception as e:  # ruamel's parser and composer errors
        raise Refusal(f"is not valid YAML ({str(e).splitlines()[0]})") from e
