#!/usr/bin/env python3
"""The CLIPSep evaluation protocol for a MUSIC-trained (or any) separator.

Thin command line over :mod:`speechbrain_textsep.evaluation.protocol`: each
target clip is mixed with one interferer (centre segments, each halved),
the separator is queried for the target by text (prompt ensemble) and/or
image (frames of the target clip), and BSS Eval v4 SDR/SIR/SAR of the target
are reported as mean ± SEM and median. ``--model`` is a recipe output folder
(best validation checkpoint) or an exported model folder.

MUSIC test pairs written by the recipe's data preparation::

    python evaluate.py --model results/clipsep/1234 \\
        --pairs data/MUSIC/test_mixtures.csv --clips data/MUSIC/test.csv \\
        --output_folder results/clipsep/1234/eval/music

Any target list with the authors' interferer draw (here MUSIC test clips
with non-music VGGSound test clips, the paper's "MUSIC+")::

    python evaluate.py --model results/clipsep/1234/model \\
        --targets data/MUSIC/test.csv --interferers data/VGGSound/test.csv \\
        --no_music_interferers --queries text image \\
        --output_folder results/clipsep/1234/eval/music_plus

Authors
 * speechbrain-textsep contributors
"""

from speechbrain_textsep.evaluation.protocol import main

if __name__ == "__main__":
    main()
