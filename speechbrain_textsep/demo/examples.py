"""The bundled examples of the demo page: SynthMUSIC test mixtures.

The first start renders a few SynthMUSIC test clips (the same seeds as the
recipes' test split, :func:`~speechbrain_textsep.data.synthmusic.prepare_synthmusic`)
into a cache folder and mixes pairs of them at 0 dB
(:func:`~speechbrain_textsep.processing.mixing.mix_at_snr`); later starts
find them there and render nothing.

Authors
 * speechbrain-textsep contributors
"""

import os
from typing import NamedTuple

from speechbrain_textsep.data.synthmusic import prepare_synthmusic
from speechbrain_textsep.evaluation.mixtures import read_manifest
from speechbrain_textsep.inference.audio import read_audio, write_audio
from speechbrain_textsep.processing.mixing import mix_at_snr

__all__ = ["Example", "default_examples_dir", "prepare_examples"]

#: Length of the example clips in seconds (that of the recipes' clips).
EXAMPLE_SECONDS = 6.0


class Example(NamedTuple):
    """One bundled example: a mixture of two instruments and what to ask.

    Arguments
    ---------
    path : str
        The mixture (16-bit WAV).
    query : str
        The instrument to separate (the first of the pair).
    other : str
        The other instrument of the mixture.
    """

    path: str
    query: str
    other: str


def default_examples_dir():
    """Where the examples are rendered by default.

    ``$XDG_CACHE_HOME/speechbrain-textsep/demo-examples`` (``~/.cache`` when
    the variable is not set).

    Example
    -------
    >>> os.path.basename(default_examples_dir())
    'demo-examples'
    """
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return os.path.join(cache, "speechbrain-textsep", "demo-examples")


def prepare_examples(folder, n_examples=6, classes=None, seed=1234):
    """Renders (if absent) and lists the example mixtures.

    Arguments
    ---------
    folder : str
        Cache folder: ``synthmusic/`` holds the rendered clips,
        ``mixtures/`` the mixtures.
    n_examples : int
        Number of mixtures (0: none, nothing is rendered).
    classes : list of str, optional
        SynthMUSIC instruments (default: the MUSIC instruments General MIDI
        plays, those of the quickstart model).
    seed : int
        Seed of the SynthMUSIC rendering.

    Returns
    -------
    list of Example

    Example
    -------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> examples = prepare_examples(folder, 1, classes=["flute", "tuba"])
    >>> [(os.path.basename(e.path), e.query, e.other) for e in examples]
    [('mix_00000_flute+tuba.wav', 'flute', 'tuba')]
    >>> read_audio(examples[0].path)[0].shape
    torch.Size([1, 96000])
    """
    if n_examples < 0:
        raise ValueError(f"the number of examples must be >= 0, got {n_examples}")
    if n_examples == 0:
        return []
    manifests = prepare_synthmusic(
        os.path.join(folder, "synthmusic"),
        classes=classes,
        n_train=0,
        n_valid=0,
        n_test=1,
        duration=EXAMPLE_SECONDS,
        n_frames=1,
        n_test_mixtures=n_examples,
        seed=seed,
        num_workers=1,
    )
    clips = read_manifest(manifests["test"])
    examples = []
    for row in read_manifest(manifests["test_mixtures"]).values():
        name = f"{row['ID']}_{row['label1']}+{row['label2']}.wav"
        path = os.path.join(folder, "mixtures", name)
        if not os.path.isfile(path):
            target, rate = read_audio(clips[row["source1"]]["audio"])
            interferer, _ = read_audio(clips[row["source2"]]["audio"])
            mixture, _, _ = mix_at_snr(target[0], interferer[0])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_audio(path, mixture, rate, subtype="PCM_16")
        examples.append(Example(path, row["label1"], row["label2"]))
    return examples
