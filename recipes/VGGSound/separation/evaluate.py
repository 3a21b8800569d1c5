#!/usr/bin/env python3
"""The CLIPSep evaluation protocol for a VGGSound-trained (or any) separator.

Thin command line over :mod:`speechbrain_textsep.evaluation.protocol`: each
target clip is mixed with one interferer (centre segments, each halved),
the separator is queried for the target by text (prompt ensemble) and/or
image (frames of the target clip), and BSS Eval v4 SDR/SIR/SAR of the target
are reported as mean ± SEM and median. ``--model`` is a recipe output folder
(best validation checkpoint) or an exported model folder.

"VGGSound-Clean+" (the test targets of the data preparation, e.g. a clean
subset given as ``--test_targets``, each with a non-music test clip)::

    python evaluate.py --model results/clipsep_nit/1234 \\
        --pairs data/VGGSound/test_mixtures.csv --clips data/VGGSound/test.csv \\
        --output_folder results/clipsep_nit/1234/eval/vggsound_clean_plus

"MUSIC+" (MUSIC test clips, interferers drawn from the non-music VGGSound
test clips as in the authors' evaluation)::

    python evaluate.py --model results/clipsep_nit/1234 \\
        --targets data/MUSIC/test.csv --interferers data/VGGSound/test.csv \\
        --no_music_interferers --output_folder results/clipsep_nit/1234/eval/music_plus

Authors
 * speechbrain-textsep contributors
"""

from speechbrain_textsep.evaluation.protocol import main

if __name__ == "__main__":
    main()
