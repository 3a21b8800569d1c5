"""One experiment runner for every model family.

Every recipe's ``train.py`` prepares its data, then calls
:func:`run_experiment`. The recipe's ``model_kind`` (``clipsep``,
``labelsep``, ``bertsep``, ``pit``, ``clapsep`` or ``clap``; required in
every recipe yaml) chooses the family
(:mod:`speechbrain_textsep.training.families`), which supplies what differs;
the runner does the shared steps once:

1. ``family.prepare()``, then the family's extra recoverables are added to
   the recipe's ``checkpointer``;
2. ``family.datasets()`` -> train and valid sets; the ``brain_class`` of the
   family is built from the recipe's ``modules``, ``opt_class`` and
   ``checkpointer``; ``family.prepare_fit(brain, train)`` gives the loader
   options (samplers, tokenizers are set on the brain);
3. ``brain.fit(...)`` (resumes from the last checkpoint);
4. the best checkpoint, by the family's validation key
   (:data:`~speechbrain_textsep.inference.run_folder.SELECTION_KEYS`), is
   recovered;
5. on the main process, ``family.evaluate(brain)`` scores it on the test
   data (per-item CSVs under ``<output_folder>/test/<set>/<query kind>/``)
   and the runner writes ``<output_folder>/test_summary.json`` in the result
   schema of :mod:`speechbrain_textsep.evaluation.report`;
6. on the main process, ``family.export(brain, summary)`` writes
   ``model_folder`` with the one model-folder writer
   (:mod:`speechbrain_textsep.inference.model_folder`, through
   :func:`~speechbrain_textsep.inference.run_export.export_checkpoint`),
   unless the recipe says ``export: False`` or the family cannot export
   (PIT).

How a new family plugs in (e.g. weakly-supervised separation):

- add its ``model_kind`` to
  :data:`~speechbrain_textsep.inference.run_folder.MODEL_KINDS` with its
  validation key in ``SELECTION_KEYS``, and any new metric key to
  :mod:`speechbrain_textsep.utils.metric_keys`;
- write ``training/families/<name>.py`` with a
  :class:`~speechbrain_textsep.training.families.base.Family` subclass
  (``kinds``, ``brain_class``, ``datasets``, ``evaluate`` returning
  ``{test set: {query kind: stats}}`` from
  :func:`~speechbrain_textsep.evaluation.report.write_item_results`; and,
  if needed, ``prepare``, ``recoverables``, ``prepare_fit``, ``can_export``,
  ``export_options``), and list it in ``training/families/__init__.py``;
- if it has a model folder, ship its template in ``templates/`` (with
  ``interface`` and ``model_kind`` keys) and add it to
  :mod:`~speechbrain_textsep.inference.folder_layout` (``EXPORTABLE_KINDS``,
  ``WEIGHTS``) and :mod:`~speechbrain_textsep.inference.run_export`
  (``REQUIRED_KEYS``): the recipe export, ``textsep export`` and the model
  card then work for it;
- its recipe's ``train.py`` calls :func:`run_experiment` like the others.

Authors
 * speechbrain-textsep contributors
"""

import os

import torch
from speechbrain.utils.distributed import if_main_process, run_on_main
from speechbrain.utils.logger import get_logger

from speechbrain_textsep.evaluation.report import SUMMARY_FILE, write_summary
from speechbrain_textsep.inference.run_folder import model_kind
from speechbrain_textsep.training.families import family_class

logger = get_logger(__name__)

__all__ = ["run_experiment"]


def run_experiment(hparams, run_opts, evaluate=True, export=True):
    """Trains, tests and exports a model of any family (module docstring).

    Arguments
    ---------
    hparams : dict
        Loaded recipe hyperparameters, with ``model_kind``, ``experiment``,
        ``output_folder``, ``model_folder``, ``export``, ``modules``,
        ``opt_class``, ``checkpointer``, ``epoch_counter``, the dataloader
        options and what the family reads.
    run_opts : dict
        SpeechBrain run options (device, ``--debug``, DDP...).
    evaluate : bool
        Tests the best checkpoint and writes ``test_summary.json``.
    export : bool
        Writes ``model_folder`` (``export: False`` in the recipe, or a
        query-free model, skips it too).

    Returns
    -------
    dict
        ``brain`` and ``summary`` (the test summary in the result schema,
        on the main process; None if not evaluated).
    """
    kind = model_kind(hparams)
    family = family_class(kind)(hparams)
    family.prepare()
    for name, recoverable in family.recoverables().items():
        hparams["checkpointer"].add_recoverable(name, recoverable)
    train_data, valid_data = family.datasets()
    brain = family.brain_class(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    train_kwargs, valid_kwargs = family.prepare_fit(brain, train_data)
    brain.fit(
        brain.hparams.epoch_counter,
        train_data,
        valid_data,
        train_loader_kwargs=train_kwargs,
        valid_loader_kwargs=valid_kwargs,
    )
    result = {"brain": brain, "summary": None}
    if export and hparams["export"] and not family.can_export():
        logger.warning(f"a {kind} model has no model folder: not exported")
    export = export and hparams["export"] and family.can_export()
    if not (evaluate or export):
        return result
    brain.checkpointer.recover_if_possible(max_key=family.selection_key)
    brain.modules.eval()
    if evaluate and if_main_process():
        with torch.no_grad():
            results = family.evaluate(brain)
        result["summary"] = write_summary(
            os.path.join(hparams["output_folder"], SUMMARY_FILE),
            kind,
            hparams["experiment"],
            results,
        )
        log_results(result["summary"])
    if export:
        run_on_main(family.export, args=[brain, result["summary"]])
    return result


def log_results(summary):
    """Logs the mean of every metric of a summary (result schema)."""
    for test_set, kinds in summary["results"].items():
        for query_kind, metrics in kinds.items():
            means = ", ".join(
                f"{key} {stats['mean']:.3f}"
                for key, stats in metrics.items()
                if stats["mean"] is not None
            )
            logger.info(f"Test {test_set} ({query_kind} queries): {means}")
