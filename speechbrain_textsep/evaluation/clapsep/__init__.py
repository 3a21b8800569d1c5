"""The CLAPSep evaluation (Ma et al., 2024): five benchmarks, P / N / P+N queries.

The paper evaluates on AudioCaps (test), AudioSet (eval), ESC-50,
FSDKaggle2018 (test) and MUSIC21 with fixed lists of 2-source mixtures that
the authors publish in their repository (``metadata/evaluation/*.csv`` of
Aisaka0v0/CLAPSep). The sub-package reproduces their evaluation code
(``evaluation/eval_audiocaps.py`` and ``model/CLAPSep.py``):

- :mod:`.lists`: the mixture lists and query-sample lists in the authors'
  layout (:func:`read_benchmark_csv`, :func:`read_query_samples`), and new
  lists built as the paper does (:func:`make_label_benchmark`,
  :func:`label_query`: "The sound of {label}");
- :mod:`.mixing`: clips read as the authors (mono, 32 kHz, 10 s,
  :func:`load_clip`) and mixed at 0 dB with peak limiting
  (:func:`mix_at_snr`);
- :mod:`.queries`: P / N / P+N text, audio (k-shot) and audio+text queries,
  and the callables made from a CLAPSep and a CLAP
  (:func:`clapsep_separate_fn`, :func:`clap_embed_fns`);
- :mod:`.scoring`: the per-item scores (:func:`clapsep_metrics`, keys of
  :mod:`speechbrain_textsep.utils.metric_keys`): ``sdr_bss_v3`` /
  ``sdri_bss_v3``, the BSS Eval v3 SDR of the paper's tables (torchmetrics'
  ``signal_distortion_ratio``, 512-tap distortion filter); ``si_sdr_nzm`` /
  ``si_sdri_nzm``, torchmetrics' SI-SDR without zero-mean (the paper's equation
  16); ``sdr_plain`` / ``sdri_plain``, the plain SDR (the paper's equation
  15, AudioSep's "SDR"); improvements over the mixture; and the Markdown
  table of a run (:func:`results_table`);
- :mod:`.loop`: :func:`evaluate_clapsep_benchmark` (its options:
  :class:`EvaluationSettings`), every mixture under every condition,
  per-condition CSVs and summaries (mean and sample std, ``ddof=1``, as the
  authors' torch ``std``).

Deliberate differences from the authors' code (see also the CLAPSep model):

- their test code feeds the condition **without** the L2 normalisation of
  their training (BUG); our CLAPSep always normalises inside its forward, so
  this evaluation sees the conditions of training;
- their query CLAP runs a SpecAugment forward hook that stays on at
  evaluation (BUG); embeddings given to :func:`evaluate_clapsep_benchmark`
  are expected without augmentation (``CLAPQueryEncoder`` never augments);
- their script for audio queries is not public: the paper only says that
  ``k`` clips per class are averaged; which ``k`` of the 10 listed clips is
  our choice (the first ``k``, or a random subset with ``shot_seed``); the
  query clips are embedded at their own length (the CLAP encoder handles
  the 10-s input), not padded.

Authors
 * speechbrain-textsep contributors
"""

from speechbrain_textsep.evaluation.clapsep.lists import (
    BENCHMARKS,
    CSV_COLUMNS,
    LABEL_TEMPLATE,
    SAMPLES_COLUMNS,
    BenchmarkItem,
    label_query,
    make_label_benchmark,
    read_benchmark_csv,
    read_query_samples,
    write_benchmark_csv,
)
from speechbrain_textsep.evaluation.clapsep.loop import (
    EvaluationSettings,
    condition_file_stem,
    evaluate_clapsep_benchmark,
)
from speechbrain_textsep.evaluation.clapsep.mixing import (
    benchmark_mixture,
    load_clip,
    mix_at_snr,
)
from speechbrain_textsep.evaluation.clapsep.queries import (
    MODALITIES,
    VALENCES,
    QueryEmbeddings,
    average_shots,
    clap_embed_fns,
    clapsep_separate_fn,
    condition_name,
    embed_query_samples,
)
from speechbrain_textsep.evaluation.clapsep.scoring import (
    SCORE_KEYS,
    SDR_DEFINITION,
    clapsep_metrics,
    results_table,
    si_sdr_no_zero_mean,
)

__all__ = [
    "BENCHMARKS",
    "CSV_COLUMNS",
    "LABEL_TEMPLATE",
    "MODALITIES",
    "SAMPLES_COLUMNS",
    "SCORE_KEYS",
    "SDR_DEFINITION",
    "VALENCES",
    "BenchmarkItem",
    "EvaluationSettings",
    "QueryEmbeddings",
    "average_shots",
    "benchmark_mixture",
    "clap_embed_fns",
    "clapsep_metrics",
    "clapsep_separate_fn",
    "condition_file_stem",
    "condition_name",
    "embed_query_samples",
    "evaluate_clapsep_benchmark",
    "label_query",
    "load_clip",
    "make_label_benchmark",
    "mix_at_snr",
    "read_benchmark_csv",
    "read_query_samples",
    "results_table",
    "si_sdr_no_zero_mean",
    "write_benchmark_csv",
]
