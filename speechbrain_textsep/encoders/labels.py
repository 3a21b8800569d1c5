"""Learned label embeddings: the query encoder of the LabelSep baseline.

LabelSep (the label-queried baseline of CLIPSep, Dong et al., ICLR 2023)
replaces the frozen CLIP encoder with a trainable ``Embedding(n_labels, 512)``
of the class label; the embedding then goes through the same
``Linear(512, 32)`` conditioning as CLIPSep (the mask network is
:class:`~speechbrain_textsep.models.clipsep.CLIPSep` unchanged). As in the
authors' code, the embedding keeps PyTorch's default ``N(0, 1)``
initialisation.

The label list comes from the training manifests (:func:`labels_from_manifests`)
and is stored in the module's state dict, so a checkpoint or an exported
model always maps the same label to the same row.

Authors
 * speechbrain-textsep contributors
"""

import csv
import os

import torch
from torch import nn

__all__ = ["LabelQueryEncoder", "UnknownLabelError", "labels_from_manifests"]


class UnknownLabelError(KeyError):
    """A query is not one of the labels a LabelSep model was trained on."""

    def __str__(self):
        return str(self.args[0])


def labels_from_manifests(csv_paths):
    """Sorted distinct ``label`` values of one or more CSV manifests.

    Arguments
    ---------
    csv_paths : str or list of str
        Manifests with a ``label`` column (``ID, audio, frames, n_frames,
        label, duration``).

    Returns
    -------
    list of str
        The labels, sorted.

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "train.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("ID,label\\na,violin\\nb,flute\\nc,violin\\n")
    >>> labels_from_manifests(path)
    ['flute', 'violin']
    """
    if isinstance(csv_paths, (str, os.PathLike)):
        csv_paths = [csv_paths]
    labels = set()
    for path in csv_paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"manifest not found: {path}")
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if "label" not in (reader.fieldnames or []):
                raise ValueError(f"manifest {path} has no 'label' column")
            labels.update(row["label"] for row in reader)
    if not labels:
        raise ValueError(f"no labels found in {list(csv_paths)}")
    return sorted(labels)


class LabelQueryEncoder(nn.Module):
    """Trainable embedding of class labels (the LabelSep query encoder).

    It has the text API of the other query encoders (``encode_text`` with a
    template or a prompt ensemble), but a formatted prompt must be one of the
    known labels: use the template ``"{}"``. Labels outside the list raise
    :class:`UnknownLabelError` naming the known labels.

    The module can be created without labels (``labels=None``, as in a recipe
    whose manifests are written after the hyperparameters are loaded); the
    embedding is then built by :meth:`set_labels` or when a checkpoint is
    loaded (the label list travels in the state dict).

    Arguments
    ---------
    labels : list of str, optional
        The class labels, in embedding-row order.
    embedding_dim : int
        Size of the label embeddings (512 in the paper, the CLIP size).

    Example
    -------
    >>> encoder = LabelQueryEncoder(["flute", "violin"], embedding_dim=8)
    >>> encoder(["violin", "flute", "violin"]).shape
    torch.Size([3, 8])
    >>> encoder.encode_text(["violin"], ensemble=["{}"]).shape
    torch.Size([1, 8])
    >>> try:
    ...     encoder(["erhu"])
    ... except UnknownLabelError as error:
    ...     print(error)
    LabelSep has no embedding for 'erhu'; its labels: ['flute', 'violin']
    >>> restored = LabelQueryEncoder(embedding_dim=8)
    >>> _ = restored.load_state_dict(encoder.state_dict())
    >>> restored.labels, torch.equal(restored(["flute"]), encoder(["flute"]))
    (['flute', 'violin'], True)
    """

    def __init__(self, labels=None, embedding_dim=512):
        super().__init__()
        self.embedding_dim = int(embedding_dim)
        self.labels = None
        self.embedding = None
        self._index = {}
        if labels is not None:
            self.set_labels(labels)

    def set_labels(self, labels):
        """Builds the embedding for ``labels`` (or checks they are the same).

        Arguments
        ---------
        labels : list of str
            Distinct, non-empty label strings.
        """
        labels = [labels] if isinstance(labels, str) else list(labels)
        if not labels:
            raise ValueError("LabelQueryEncoder needs at least one label")
        for label in labels:
            if not isinstance(label, str) or not label.strip():
                raise ValueError(f"labels must be non-empty strings, got {label!r}")
        if len(set(labels)) != len(labels):
            raise ValueError(f"duplicate labels in {labels}")
        if self.labels is not None:
            if labels != self.labels:
                raise ValueError(
                    "this LabelSep encoder was built for the labels "
                    f"{self.labels}, not {labels}: the label list of the "
                    "checkpoint and of the manifests differ"
                )
            return
        self.labels = labels
        self._index = {label: i for i, label in enumerate(labels)}
        self.embedding = nn.Embedding(len(labels), self.embedding_dim)

    def _check_built(self):
        if self.embedding is None:
            raise RuntimeError(
                "LabelQueryEncoder has no labels yet: call set_labels(labels) "
                "or load a checkpoint"
            )

    def label_indices(self, labels):
        """``[B]`` row indices of ``labels`` (raises for unknown labels)."""
        self._check_built()
        labels = [labels] if isinstance(labels, str) else list(labels)
        if not labels:
            raise ValueError("empty label list")
        for label in labels:
            if label not in self._index:
                raise UnknownLabelError(
                    f"LabelSep has no embedding for {label!r}; its labels: "
                    f"{self.labels}"
                )
        return torch.tensor(
            [self._index[label] for label in labels],
            dtype=torch.long,
            device=self.embedding.weight.device,
        )

    def forward(self, labels):
        """``[B, D]`` embeddings of a batch of labels (differentiable)."""
        return self.embedding(self.label_indices(labels))

    def encode_text(self, texts, template=None, ensemble=None):
        """Embeds label queries, with the text API of the CLIP encoder.

        Arguments
        ---------
        texts : str or list of str
            Labels.
        template : str or None
            Template applied to each text (``"{}"`` or None: the label itself).
        ensemble : list of str or None
            Templates whose embeddings are averaged; every formatted prompt
            must be a known label, so in practice ``["{}"]``.

        Returns
        -------
        torch.Tensor
            ``[B, D]`` label embeddings.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        if template is not None and ensemble is not None:
            raise ValueError("give either a template or an ensemble, not both")
        templates = [template] if ensemble is None else list(ensemble)
        if not templates:
            raise ValueError("empty prompt ensemble")
        embeddings = [
            self(texts if tpl is None else [tpl.format(text) for text in texts])
            for tpl in templates
        ]
        return torch.stack(embeddings).mean(dim=0)

    def get_extra_state(self):
        """The label list, saved with the embedding weights."""
        return {"labels": self.labels}

    def set_extra_state(self, state):
        """Builds (or checks) the embedding from a saved label list."""
        if state.get("labels") is not None:
            self.set_labels(state["labels"])
