"""Which interface class loads a model folder.

Authors
 * speechbrain-textsep contributors
"""

from speechbrain_textsep.inference.base import BaseQuerySeparator
from speechbrain_textsep.inference.clapsep import CLAPSepSeparator
from speechbrain_textsep.inference.loading import build_from_folder
from speechbrain_textsep.inference.separator import QuerySeparator
from speechbrain_textsep.inference.weaksup import WeakSupQuerySeparator

#: Interface classes by the name a model's ``interface`` hyperparameter gives.
INTERFACES = {
    "QuerySeparator": QuerySeparator,
    "CLAPSepSeparator": CLAPSepSeparator,
    "WeakSupQuerySeparator": WeakSupQuerySeparator,
}


def load_separator(source, savedir=None, trust_remote_code=False, **kwargs):
    """Loads any model folder of the package with the interface it names.

    Arguments
    ---------
    source : str
        Model folder, URL or Hugging Face repository id.
    savedir : str, optional
        Where fetched files are collected.
    trust_remote_code : bool
        Without it, the folder may build only allow-listed classes and name
        only files inside itself (see :meth:`BaseQuerySeparator.from_hparams`
        and :mod:`speechbrain_textsep.inference.loading`).
    **kwargs : dict
        ``overrides``, ``run_opts``, ``fetch_config``.

    Returns
    -------
    BaseQuerySeparator
    """
    run_opts = kwargs.pop("run_opts", None)
    hparams = build_from_folder(
        source, savedir=savedir, trust_remote_code=trust_remote_code, **kwargs
    )
    name = hparams.get("interface", "QuerySeparator")
    if name not in INTERFACES:
        raise ValueError(
            f"{source}: unknown interface {name!r} (known: {', '.join(INTERFACES)})"
        )
    cls = INTERFACES[name]
    assert issubclass(cls, BaseQuerySeparator)
    return cls(modules=hparams["modules"], hparams=hparams, run_opts=run_opts)
