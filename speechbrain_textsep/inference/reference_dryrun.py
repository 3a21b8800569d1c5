"""A bounded dry run of HyperPyYAML's reference resolution.

HyperPyYAML resolves ``!ref`` and ``!copy`` by substituting ``<name>``
references into strings, evaluating the arithmetic of the result and deep
copying what ``!copy`` names: a few lines of YAML can make it build huge
strings or integers. Before an untrusted folder is resolved for real,
:class:`ReferenceDryRun` replays the resolution on a copy of its tree and
raises :class:`~speechbrain_textsep.inference.yaml_graph.Refusal` for
strings of more than :data:`MAX_REFERENCE_CHARS` characters, integers of
more than :data:`MAX_INT_BITS` bits, ``%`` string formatting, copies past
:data:`~speechbrain_textsep.inference.yaml_graph.MAX_NODES` nodes and
references nested deeper than
:data:`~speechbrain_textsep.inference.yaml_graph.MAX_DEPTH`.

Authors
 * speechbrain-textsep contributors
"""

import ast
import operator
import re

from hyperpyyaml.core import deref, recursive_update
from ruamel.yaml import YAML

from speechbrain_textsep.inference.yaml_graph import MAX_DEPTH, MAX_NODES, Refusal

__all__ = ["MAX_INT_BITS", "MAX_REFERENCE_CHARS", "ReferenceDryRun"]

#: Longest string a reference may produce, and deepest chain of references.
MAX_REFERENCE_CHARS = 100_000
#: Largest integer (bits) the arithmetic of a reference may compute.
MAX_INT_BITS = 4096

_REFERENCE = re.compile(r"<[^>]*>")
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


class _Stop(Exception):
    """The dry run stops where HyperPyYAML itself raises (internal)."""


class ReferenceDryRun:
    """HyperPyYAML's reference resolution, replayed on a copy with bounds.

    Mirrors ``hyperpyyaml.core`` (``_walk_tree_and_resolve``,
    ``recursive_resolve``, ``parse_arithmetic``): same tree, same walk
    order, same ``deref``. Where HyperPyYAML would raise, the dry run stops
    (the real resolution then raises the same error); where it would grow
    without bound, the folder is refused.

    Arguments
    ---------
    text : str
        Content of the ``hyperparams.yaml``.
    overrides : dict or None
        The caller's overrides, applied as HyperPyYAML applies them.

    Example
    -------
    >>> ReferenceDryRun("a: 2\\nb: !ref <a> * 3", None).run()
    >>> try:
    ...     ReferenceDryRun("a: 9\\nb: !ref <a> ** <a> ** <a> ** <a>", None).run()
    ... except Refusal as e:
    ...     print(e)
    has the reference b: !ref <a> ** <a> ** <a> ** <a>, which computes 9 ** \
387420489, an integer past 4096 bits
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
        """Resolves the references; raises :class:`Refusal` past a bound."""
        if self.tree is None:
            return
        try:
            self.walk("root", self.tree)
        except (RecursionError, MemoryError) as e:
            # HyperPyYAML might get further: refuse rather than stop here.
            raise Refusal(
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
        raise Refusal(f"has the reference {shown}, which {what}")

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
        except (Refusal, RecursionError, MemoryError):
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
