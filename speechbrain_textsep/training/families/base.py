"""The interface a model family implements for the experiment runner.

See :mod:`speechbrain_textsep.training.runner` for the steps the runner does
once for every family, and how a new family plugs in.

Authors
 * speechbrain-textsep contributors
"""

import os

from speechbrain.utils.logger import get_logger

from speechbrain_textsep.evaluation.report import RESULTS_FILE
from speechbrain_textsep.inference.run_export import export_checkpoint
from speechbrain_textsep.inference.run_folder import selection_key

logger = get_logger(__name__)

__all__ = ["Family"]


class Family:
    """What differs between model families; one instance per experiment.

    A subclass sets :attr:`kinds` (the ``model_kind`` values it serves) and
    :attr:`brain_class`, and implements :meth:`datasets` and
    :meth:`evaluate`; the other methods have defaults that suit a family
    without extras.

    Arguments
    ---------
    hparams : dict
        The loaded recipe hyperparameters.
    """

    #: The recipe ``model_kind`` values of this family.
    kinds = ()
    #: The :class:`speechbrain.Brain` subclass that trains it.
    brain_class = None

    def __init__(self, hparams):
        self.hparams = hparams

    @property
    def kind(self):
        """The recipe's ``model_kind``."""
        return self.hparams["model_kind"]

    @property
    def selection_key(self):
        """Validation metric whose highest value selects the best checkpoint."""
        return selection_key(self.kind)

    def prepare(self):
        """Runs before anything is built from the data (every process)."""

    def recoverables(self):
        """``{name: object}`` added to the checkpointer beyond the recipe's."""
        return {}

    def datasets(self):
        """``(train, valid)`` datasets of :meth:`speechbrain.Brain.fit`."""
        raise NotImplementedError

    def prepare_fit(self, brain, train_data):
        """Loader options of ``fit``, and what the brain needs to use them.

        Arguments
        ---------
        brain : speechbrain.Brain
            The brain (samplers, tokenizers... are set on it here).
        train_data : speechbrain.dataio.dataset.DynamicItemDataset
            The training set.

        Returns
        -------
        tuple
            ``(train_loader_kwargs, valid_loader_kwargs)``.
        """
        return (
            dict(self.hparams["train_dataloader_opts"]),
            dict(self.hparams["valid_dataloader_opts"]),
        )

    def evaluate(self, brain):
        """Scores the best checkpoint on the test data (main process only).

        Per-item rows go to :meth:`results_csv` (through
        :func:`~speechbrain_textsep.evaluation.report.write_item_results`).

        Returns
        -------
        dict
            ``{test set: {query kind: {metric key: stats}}}``, the
            ``results`` of the result schema.
        """
        raise NotImplementedError

    def results_csv(self, test_set, query_kind):
        """Where the per-item CSV of a test set and query kind goes."""
        return os.path.join(
            self.hparams["output_folder"], "test", test_set, query_kind, RESULTS_FILE
        )

    def can_export(self):
        """Whether this model has a model folder (False for query-free PIT)."""
        return True

    def export_options(self):
        """Extra keyword arguments of
        :func:`~speechbrain_textsep.inference.run_export.export_checkpoint`."""
        return {}

    def export(self, brain, summary):
        """Writes ``model_folder`` from the best checkpoint (main process).

        Arguments
        ---------
        brain : speechbrain.Brain
            The trained brain (its checkpointer).
        summary : dict or None
            The test summary (result schema) written by the runner.
        """
        best = brain.checkpointer.find_checkpoint(max_key=self.selection_key)
        if best is None:
            raise RuntimeError(
                f"no checkpoint with a validation '{self.selection_key}' to export"
            )
        export_checkpoint(
            self.hparams,
            best,
            self.hparams["model_folder"],
            summary,
            template=self.hparams.get("inference_hparams"),  # optional override
            **self.export_options(),
        )
        logger.info(f"Exported the model to {self.hparams['model_folder']}")
