"""Data pipelines for query-conditioned separation (mix-and-separate).

Manifests are CSV files with the columns ``ID, audio, frames, n_frames,
label, duration`` (written by the SynthMUSIC, MUSIC and VGGSound preparation
scripts). Every item is one single-source clip; mixtures are formed on the
fly inside a batch by :func:`pair_partners`.

Authors
 * speechbrain-textsep contributors
"""

import os
import random

import speechbrain as sb
import torch

from speechbrain_textsep.processing.audio_io import read_audio

FRAME_NAME = "{:06d}.jpg"


def crop_bounds(n_samples, segment, train, rng=random):
    """Start and stop of a ``segment``-sample crop (random at training, else centred).

    Example
    -------
    >>> crop_bounds(100, 40, train=False)
    (30, 70)
    >>> crop_bounds(10, 40, train=False)
    (0, 10)
    """
    if n_samples <= segment:
        return 0, n_samples
    start = rng.randint(0, n_samples - segment) if train else (n_samples - segment) // 2
    return start, start + segment


def frame_indices(center_seconds, n_frames, n_query_frames, fps=1.0):
    """1-based indices of ``n_query_frames`` consecutive frames around a time.

    Example
    -------
    >>> frame_indices(2.0, 10, 3)
    [2, 3, 4]
    >>> frame_indices(0.1, 3, 3)
    [1, 2, 3]
    """
    n_query_frames = min(n_query_frames, n_frames)
    center = int(round(center_seconds * fps)) + 1
    first = min(max(1, center - n_query_frames // 2), n_frames - n_query_frames + 1)
    return list(range(first, first + n_query_frames))


def clip_dataset(
    csv_path,
    segment_samples,
    sample_rate=16000,
    train=False,
    image_preprocess=None,
    n_query_frames=3,
    fps=1.0,
):
    """A :class:`DynamicItemDataset` of single-source clips.

    Arguments
    ---------
    csv_path : str
        Manifest with ``ID, audio, frames, n_frames, label, duration``.
    segment_samples : int
        Samples per clip (65535 in CLIPSep); shorter clips are zero-padded.
    sample_rate : int
        Sample rate of the audio files.
    train : bool
        Random crops if True, centred crops otherwise.
    image_preprocess : callable, optional
        Turns an image path into a ``[3, H, W]`` tensor (the CLIP transform);
        when given, items also provide ``query_frames`` ``[N, 3, H, W]``: the
        frames around the centre of the crop.
    n_query_frames : int
        Frames per image query (3).
    fps : float
        Frame rate of the extracted frames (1).

    Returns
    -------
    speechbrain.dataio.dataset.DynamicItemDataset
        Items with ``id``, ``sig`` ``[segment_samples]``, ``label`` and, if
        ``image_preprocess`` is given, ``query_frames``.
    """
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"manifest not found: {csv_path}")
    data = sb.dataio.dataset.DynamicItemDataset.from_csv(csv_path)

    @sb.utils.data_pipeline.takes("audio", "duration")
    @sb.utils.data_pipeline.provides("sig", "segment_center")
    def audio_pipeline(path, duration):
        n_samples = int(round(float(duration) * sample_rate))
        start, stop = crop_bounds(n_samples, segment_samples, train)
        sig, _ = read_audio(path, start, stop, mono=True)
        if sig.shape[0] < segment_samples:
            sig = torch.nn.functional.pad(sig, (0, segment_samples - sig.shape[0]))
        yield sig[:segment_samples]
        yield (start + segment_samples / 2) / sample_rate

    items = [audio_pipeline]
    keys = ["id", "sig", "label"]
    if image_preprocess is not None:

        @sb.utils.data_pipeline.takes("frames", "n_frames", "segment_center")
        @sb.utils.data_pipeline.provides("query_frames")
        def frames_pipeline(folder, n_frames, center):
            indices = frame_indices(center, int(n_frames), n_query_frames, fps)
            return torch.stack(
                [
                    image_preprocess(os.path.join(folder, FRAME_NAME.format(i)))
                    for i in indices
                ]
            )

        items.append(frames_pipeline)
        keys.append("query_frames")
    for item in items:
        data.add_dynamic_item(item)
    sb.dataio.dataset.set_output_keys([data], keys)
    return data


def pair_partners(labels, generator=None):
    """Chooses, for each clip of a batch, another clip of a different label.

    Clip ``i`` is mixed with clip ``partner[i]`` (not necessarily a
    permutation: a clip can be the interferer of several others). When every
    clip shares one label the partner is simply the next clip.

    Arguments
    ---------
    labels : list of str
        Label of every clip of the batch.
    generator : torch.Generator, optional
        Source of randomness (deterministic pairing when given).

    Returns
    -------
    torch.Tensor
        ``[B]`` long tensor of partner indices, ``partner[i] != i`` for B > 1.

    Example
    -------
    >>> partner = pair_partners(["a", "a", "b", "b"], torch.Generator().manual_seed(0))
    >>> [["a", "a", "b", "b"][j] for j in partner.tolist()]
    ['b', 'b', 'a', 'a']
    """
    n = len(labels)
    if n < 2:
        raise ValueError("mix-and-separate needs at least 2 clips per batch")
    partner = torch.empty(n, dtype=torch.long)
    for i in range(n):
        others = [j for j in range(n) if labels[j] != labels[i]]
        if not others:
            partner[i] = (i + 1) % n
            continue
        pick = torch.randint(len(others), (1,), generator=generator).item()
        partner[i] = others[pick]
    return partner


def interleave_by_label(ids, labels):
    """Orders items so that consecutive ones have different labels.

    Round-robin over the labels (in order of first appearance), each label's
    items in their listed order. Evaluation batches of a manifest sorted by
    class then hold several classes, so that :func:`pair_partners` finds an
    interferer of another class for every clip.

    Arguments
    ---------
    ids : list of str
        Item IDs in manifest order.
    labels : list of str
        Label (or caption) of every item.

    Returns
    -------
    list of str
        The IDs, reordered.

    Example
    -------
    >>> interleave_by_label(["a1", "a2", "a3", "b1", "c1"],
    ...                     ["a", "a", "a", "b", "c"])
    ['a1', 'b1', 'c1', 'a2', 'a3']
    """
    if len(ids) != len(labels):
        raise ValueError(f"{len(ids)} ids for {len(labels)} labels")
    groups = {}
    for item, label in zip(ids, labels):
        groups.setdefault(label, []).append(item)
    order = []
    for rank in range(max((len(g) for g in groups.values()), default=0)):
        order.extend(group[rank] for group in groups.values() if rank < len(group))
    return order
