"""Inference hyperparameter templates of the model folders, shipped as package data.

Each ``<name>.yaml`` is the ``hyperparams.yaml`` of one family of model
folders, with HyperPyYAML tags; an export fills in the values of the trained
model (see :mod:`speechbrain_textsep.inference.model_folder`). They are read
with :mod:`importlib.resources`, so they work from an installed wheel.

Authors
 * speechbrain-textsep contributors
"""

from importlib import resources

__all__ = ["TEMPLATE_NAMES", "template_path", "template_text"]

#: The templates this package ships (file names without ``.yaml``).
TEMPLATE_NAMES = ("clipsep", "labelsep", "bertsep", "clapsep", "weaksup")


def template_path(name):
    """Path of a shipped template, as a real file on disk.

    Arguments
    ---------
    name : str
        One of :data:`TEMPLATE_NAMES`.

    Returns
    -------
    str

    Example
    -------
    >>> import os
    >>> os.path.basename(template_path("clipsep"))
    'clipsep.yaml'
    >>> template_path("nope")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: no template 'nope' (shipped: clipsep, labelsep, bertsep, clapsep, ...)
    """
    if name not in TEMPLATE_NAMES:
        raise ValueError(f"no template {name!r} (shipped: {', '.join(TEMPLATE_NAMES)})")
    # Packages are installed as plain folders (zip-safe = False in setup.cfg),
    # so the resource is a file with a path.
    return str(resources.files(__name__).joinpath(f"{name}.yaml"))


def template_text(name):
    """Content of a shipped template.

    Example
    -------
    >>> "interface: CLAPSepSeparator" in template_text("clapsep")
    True
    """
    with open(template_path(name), encoding="utf-8") as f:
        return f.read()
