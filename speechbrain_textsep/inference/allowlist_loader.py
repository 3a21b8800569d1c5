"""Building a resolved ``hyperparams.yaml`` from allow-listed classes only.

:class:`AllowListLoader` is the loader that builds an untrusted folder once
:mod:`speechbrain_textsep.inference.allowlist` has accepted it and
HyperPyYAML has resolved its references: it reads HyperPyYAML's object tags
but resolves only the names of
:data:`~speechbrain_textsep.inference.allowlist.ALLOWED_CALLABLES` (never
:func:`pydoc.locate` on a name from the file), runs ``!apply:getattr`` as
:func:`~speechbrain_textsep.inference.allowlist.plain_attribute`, and parses
tuple strings with PyYAML's safe loader.

Authors
 * speechbrain-textsep contributors
"""

import functools
import inspect

import yaml
from ruamel.yaml.loader import SafeLoader
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from speechbrain_textsep.inference.allowlist import (
    ATTRIBUTE_GETTER,
    UntrustedModelError,
    allowed_object,
)
from speechbrain_textsep.inference.yaml_graph import TUPLE_STRING, YAML_TAG

__all__ = ["AllowListLoader"]


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
            and node.tag == YAML_TAG + "str"
            and node.style is None
            and TUPLE_STRING.match(node.value)
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
