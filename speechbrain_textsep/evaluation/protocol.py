"""The evaluation protocol of the CLIPSep paper (Dong et al., ICLR 2023).

Each clip of a target list (e.g. the MUSIC solo test set, or the hand-picked
"VGGSound-Clean" clips) is mixed with one interferer from a second list
(e.g. VGGSound test clips without music): the interferer of target ``i`` is
``interferers[random.Random(i).randint(0, n - 1)]``, the draw of the
authors' ``MixDatasetV2`` (redrawn from the same generator if it is the
target itself or, optionally, has its label). The centre ``segment_samples``
of both clips are taken, each divided by 2 and summed; the separator is
queried for the target only, by text (the label, through the prompt
ensemble of the model) or by image (the CLIP embeddings of the target
clip's frames around the segment centre, averaged); the soft-mask estimate
is scored with BSS Eval v4 (museval, one window over the whole segment)
against ``[target, interferer]``. Results are reported as mean ± standard
error of the mean, and median, of the target's SDR (plus SIR, SAR, SDRi,
SI-SDR and the SDR of the unprocessed mixture). Query-free models (PIT)
are scored with their best output for each target (oracle selection, by
the BSS Eval SDR of the target; the authors compare the first output with
its complement, we compare the model's two outputs).

Differences from the authors' code, all minor: the segment is centred on
the middle of the clip rather than on the middle frame ``(n // 2 - 0.5) /
fps``, short clips are zero-padded rather than tiled, and the query frames
are those of the training pipeline around the segment centre.

The same code serves a model trained by a recipe (its output folder, best
validation checkpoint) and an exported model folder
(:class:`~speechbrain_textsep.inference.QuerySeparator`). Command line::

    python -m speechbrain_textsep.evaluation.protocol --model results/clipsep/1234 \\
        --targets data/MUSIC/test.csv --interferers data/VGGSound/test_no_music.csv \\
        --queries text image --output_folder results/clipsep/1234/test/music_plus

Authors
 * speechbrain-textsep contributors
"""

import argparse
import csv
import json
import os
import random
from dataclasses import dataclass, field

import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.logger import get_logger

from speechbrain_textsep.data.clips import FRAME_NAME, frame_indices
from speechbrain_textsep.evaluation.mixtures import (
    evaluate_mixture_list,
    read_manifest,
)
from speechbrain_textsep.evaluation.report import SUMMARY_FILE, write_summary
from speechbrain_textsep.inference.run_folder import (
    query_encoder_in_checkpoint,
    selection_key,
)

logger = get_logger(__name__)

__all__ = [
    "EvaluationModel",
    "MIXTURE_FIELDS",
    "QUERY_MODES",
    "evaluate_protocol",
    "evaluate_test_set",
    "format_result",
    "load_evaluation_model",
    "main",
    "make_protocol_pairs",
]

#: Query kinds of the protocol (``none``: a query-free model, e.g. PIT).
QUERY_MODES = ("text", "image", "none")

#: Columns of a pair list (the ``test_mixtures.csv`` layout of the recipes).
MIXTURE_FIELDS = ["ID", "source1", "label1", "source2", "label2"]


def make_protocol_pairs(
    targets_csv,
    interferers_csv,
    out_csv,
    exclude_same_label=True,
    max_targets=None,
    exclude_interferer=None,
):
    """Pairs every target clip with one deterministic interferer.

    The interferer of target ``i`` (0-based row of ``targets_csv``) is the
    row ``random.Random(i).randint(0, n - 1)`` of the interferer list (the
    authors' ``random.seed(i); random.randint``); a draw that is the target
    clip itself or, with ``exclude_same_label``, has the target's label is
    redrawn from the same generator. With ``exclude_interferer`` (e.g.
    :func:`speechbrain_textsep.data.vggsound.is_music_label`: the paper's
    interferers are VGGSound clips without music), the clips whose label it
    accepts are removed from the interferer list first.

    Arguments
    ---------
    targets_csv : str
        Manifest of the target clips (``ID, audio, frames, n_frames, label,
        duration``).
    interferers_csv : str
        Manifest of the interferer clips (may be the same file).
    out_csv : str
        Pair list to write: ``ID, source1, label1, source2, label2`` with the
        target as ``source1``.
    exclude_same_label : bool
        Never pairs a target with an interferer of its label.
    max_targets : int, optional
        Only the first targets.
    exclude_interferer : callable, optional
        ``exclude_interferer(label) -> bool``: interferers to leave out.

    Returns
    -------
    str
        ``out_csv``.

    Example
    -------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "clips.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("ID,label\\na,dog\\nb,dog\\nc,cat\\n")
    >>> out = make_protocol_pairs(path, path, os.path.join(folder, "pairs.csv"))
    >>> print(open(out).read().strip())
    ID,source1,label1,source2,label2
    a+c,a,dog,c,cat
    b+c,b,dog,c,cat
    c+a,c,cat,a,dog
    """
    targets = list(read_manifest(targets_csv).values())[:max_targets]
    interferers = list(read_manifest(interferers_csv).values())
    if exclude_interferer is not None:
        interferers = [r for r in interferers if not exclude_interferer(r["label"])]
    if not targets or not interferers:
        raise ValueError(
            f"empty target or interferer list: {targets_csv}, {interferers_csv}"
        )
    rows = []
    for i, target in enumerate(targets):
        candidates = [
            row
            for row in interferers
            if row["ID"] != target["ID"]
            and not (exclude_same_label and row["label"] == target["label"])
        ]
        if not candidates:
            raise ValueError(
                f"no interferer for target {target['ID']!r} in {interferers_csv}"
                + (
                    f" with a label other than {target['label']!r}"
                    if exclude_same_label
                    else ""
                )
            )
        rng = random.Random(i)
        while True:
            other = interferers[rng.randint(0, len(interferers) - 1)]
            if other["ID"] != target["ID"] and not (
                exclude_same_label and other["label"] == target["label"]
            ):
                break
        rows.append(
            {
                "ID": f"{target['ID']}+{other['ID']}",
                "source1": target["ID"],
                "label1": target["label"],
                "source2": other["ID"],
                "label2": other["label"],
            }
        )
    os.makedirs(os.path.dirname(os.path.abspath(out_csv)), exist_ok=True)
    with open(out_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MIXTURE_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return out_csv


@dataclass
class EvaluationModel:
    """A separator and what the protocol needs to query it.

    Arguments
    ---------
    separator : torch.nn.Module
        :class:`~speechbrain_textsep.models.separator.MaskSeparator`:
        ``separator(mixtures [B, L], queries [B, Q, D]) -> [B, Q, L]``, or
        ``separator(mixtures) -> [B, K, L]`` for a query-free model.
    query_encoder : torch.nn.Module, optional
        Encoder with ``encode_text`` (and ``encode_image``, ``preprocess``
        for image queries); None for a query-free model.
    text_prompts : list of str, optional
        Prompt ensemble of text queries (``None``: the label verbatim).
    n_query_frames : int
        Frames per image query (3).
    fps : float
        Frame rate of the extracted frames (1).
    segment_samples : int
        Evaluation segment length the model was trained for.
    sample_rate : int
        Sample rate of the model.
    device : str
        Device the separator runs on.
    model_kind : str, optional
        The model's ``model_kind`` (for the summary in the result schema).
    experiment : str, optional
        The experiment's name (for the summary).
    """

    separator: torch.nn.Module
    query_encoder: torch.nn.Module = None
    text_prompts: list = field(default=None)
    n_query_frames: int = 3
    fps: float = 1.0
    segment_samples: int = 65535
    sample_rate: int = 16000
    device: str = "cpu"
    model_kind: str = None
    experiment: str = None

    @property
    def query_free(self):
        """True for a model without queries (PIT)."""
        return self.query_encoder is None

    @property
    def query_modes(self):
        """Query kinds this model takes."""
        if self.query_free:
            return ("none",)
        if hasattr(self.query_encoder, "encode_image"):
            return ("text", "image")
        return ("text",)

    def separate_fn(self, mode):
        """``separate(mixture [1, L], queries) -> [1, Q, L]`` for a query kind.

        Arguments
        ---------
        mode : str
            ``text`` (queries are labels), ``image`` (queries are manifest
            rows with ``frames``, ``n_frames`` and ``segment_center``) or
            ``none`` (query-free: every output is returned).

        Returns
        -------
        callable
        """
        if mode not in self.query_modes:
            raise ValueError(
                f"this model takes {list(self.query_modes)} queries, not {mode!r}"
            )
        device = self.device
        if mode == "none":
            return lambda mixture, queries: self.separator(mixture.to(device))
        encoder = self.query_encoder

        def separate(mixture, queries):
            if mode == "text":
                embeddings = encoder.encode_text(queries, ensemble=self.text_prompts)
            else:
                embeddings = torch.cat([self._image_embedding(row) for row in queries])
            return self.separator(mixture.to(device), embeddings.to(device)[None])

        return separate

    def _image_embedding(self, row):
        """``[1, D]`` mean CLIP embedding of a clip's frames at its segment centre."""
        if not row.get("frames") or not row.get("n_frames"):
            raise ValueError(
                f"clip {row.get('ID')!r} has no frames: image queries need the "
                "`frames` and `n_frames` columns of the manifest"
            )
        indices = frame_indices(
            float(row["segment_center"]),
            int(row["n_frames"]),
            self.n_query_frames,
            self.fps,
        )
        frames = [
            self.query_encoder.preprocess(
                os.path.join(row["frames"], FRAME_NAME.format(i))
            )
            for i in indices
        ]
        return self.query_encoder.encode_image(torch.stack(frames)[None])


def evaluation_model_from_hparams(hparams, device="cpu"):
    """An :class:`EvaluationModel` from loaded recipe hyperparameters.

    Reads ``separator``, ``query_mode``, ``query_encoder`` and
    ``eval_prompts`` (not for a query-free model), ``n_query_frames``,
    ``segment_samples``, ``sample_rate``, ``model_kind`` and ``experiment``.
    """
    query_free = hparams["query_mode"] == "none"
    return EvaluationModel(
        separator=hparams["separator"],
        query_encoder=None if query_free else hparams["query_encoder"],
        text_prompts=None if query_free else hparams["eval_prompts"],
        n_query_frames=hparams["n_query_frames"],
        segment_samples=hparams["segment_samples"],
        sample_rate=hparams["sample_rate"],
        device=str(device),
        model_kind=hparams["model_kind"],
        experiment=hparams["experiment"],
    )


def load_recipe_run(folder, device="cpu"):
    """The best-validation model of a recipe's output folder.

    The folder holds the ``hyperparams.yaml`` that the recipe saved and the
    checkpoints in ``save/``; the checkpoint with the highest validation
    ``sdri_plain`` (the selection key of the CLIPSep family) is loaded.

    Arguments
    ---------
    folder : str
        The recipe's output folder.
    device : str
        Where the model runs.

    Returns
    -------
    EvaluationModel
    """
    with open(os.path.join(folder, "hyperparams.yaml")) as f:
        hparams = load_hyperpyyaml(f)
    checkpointer = hparams["checkpointer"]
    checkpointer.checkpoints_dir = type(checkpointer.checkpoints_dir)(
        os.path.join(folder, "save")
    )
    if query_encoder_in_checkpoint(hparams):
        checkpointer.add_recoverable("query_encoder", hparams["query_encoder"])
    key = selection_key(hparams["model_kind"])
    if checkpointer.recover_if_possible(max_key=key) is None:
        raise FileNotFoundError(
            f"no checkpoint with a validation '{key}' in {folder}/save: train the "
            "recipe first"
        )
    model = evaluation_model_from_hparams(hparams, device)
    model.separator.to(device).eval()
    if model.query_encoder is not None:
        model.query_encoder.to(device).eval()
    return model


def load_evaluation_model(folder, device="cpu", savedir=None, segment_samples=None):
    """Loads a recipe output folder or an exported model folder.

    Arguments
    ---------
    folder : str
        A recipe's output folder (``hyperparams.yaml`` and ``save/``), or a
        model folder for :class:`~speechbrain_textsep.inference.QuerySeparator`
        (local or a hub id).
    device : str
        Where the model runs.
    savedir : str, optional
        Where the files of an exported model are collected.
    segment_samples : int, optional
        Evaluation segment length (default: the recipe's, or 65535 for an
        exported model, which does not record it).

    Returns
    -------
    EvaluationModel
    """
    if os.path.isdir(os.path.join(folder, "save")) and os.path.isfile(
        os.path.join(folder, "hyperparams.yaml")
    ):
        model = load_recipe_run(folder, device)
    else:
        from speechbrain_textsep.inference import QuerySeparator

        interface = QuerySeparator.from_hparams(
            source=folder, savedir=savedir, run_opts={"device": device}
        )
        model = EvaluationModel(
            separator=interface.mods.separator,
            query_encoder=interface.mods.query_encoder,
            text_prompts=list(interface.hparams.text_prompts),
            sample_rate=interface.hparams.sample_rate,
            device=str(device),
            model_kind=getattr(interface.hparams, "model_kind", "clipsep"),
        )
    if segment_samples:
        model.segment_samples = int(segment_samples)
    return model


def format_result(stats):
    """``"mean ± sem (median m)"`` of a metric's summary, in dB.

    Example
    -------
    >>> format_result({"mean": 9.712, "sem": 1.208, "median": 8.73})
    '9.71 ± 1.21 (median 8.73)'
    """
    return f"{stats['mean']:.2f} ± {stats['sem']:.2f} (median {stats['median']:.2f})"


#: Metrics of the compact protocol summary: name -> results column.
REPORTED = {
    "SDR": "sdr_bss_v4",
    "SIR": "sir_bss_v4",
    "SAR": "sar_bss_v4",
    "SDRi": "sdri_bss_v4",
    "mixture SDR": "sdr_bss_v4_mixture",
    "SI-SDRi": "si_sdri",
}


def evaluate_protocol(
    model, pairs_csv, clips_csvs, output_folder, query_modes=None, max_mixtures=None
):
    """Scores a model on a pair list with each query kind.

    Arguments
    ---------
    model : EvaluationModel
        The model and its query settings.
    pairs_csv : str
        ``ID, source1, label1, source2, label2``; ``source1`` is the target.
    clips_csvs : str or list of str
        Manifests holding every clip of the pairs.
    output_folder : str
        ``<mode>/test_results.csv`` (per-item rows in the result schema of
        :mod:`~speechbrain_textsep.evaluation.report`) are written there,
        and ``protocol_summary.json`` (mean ± SEM and median of each metric,
        per query kind, for reading).
    query_modes : list of str, optional
        Query kinds (default: every kind the model takes).
    max_mixtures : int, optional
        Only the first pairs.

    Returns
    -------
    dict
        ``{mode: {metric key: stats}}``: the ``<test set>`` level of the
        result schema.
    """
    query_modes = list(query_modes or model.query_modes)
    summaries = {}
    for mode in query_modes:
        if mode not in QUERY_MODES:
            raise ValueError(f"query mode must be one of {QUERY_MODES}, got {mode!r}")
        with torch.no_grad():
            summaries[mode] = evaluate_mixture_list(
                model.separate_fn(mode),
                pairs_csv,
                clips_csvs,
                os.path.join(output_folder, mode),
                segment_samples=model.segment_samples,
                sample_rate=model.sample_rate,
                max_mixtures=max_mixtures,
                scored_sources=(0,),
                permutation_invariant=mode == "none",
                query_rows=mode == "image",
                query_kind=mode,
            )
        logger.info(
            f"{os.path.basename(os.path.normpath(output_folder))} ({mode} queries): "
            f"SDR {format_result(summaries[mode]['sdr_bss_v4'])} dB"
        )
    compact = {
        mode: {
            name: format_result(summary[key])
            for name, key in REPORTED.items()
            if key in summary
        }
        | {"n": summary["sdr_bss_v4"]["count"]}
        for mode, summary in summaries.items()
    }
    os.makedirs(output_folder, exist_ok=True)
    with open(os.path.join(output_folder, "protocol_summary.json"), "w") as f:
        json.dump(compact, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return summaries


def evaluate_test_set(
    model, test_set, output_folder, query_modes=None, max_mixtures=None
):
    """Builds the pairs of a test set (if needed) and runs the protocol.

    Arguments
    ---------
    model : EvaluationModel
        The model.
    test_set : dict
        Either ``targets`` and ``interferers`` (manifests; the pairs are
        drawn by :func:`make_protocol_pairs` with the set's
        ``exclude_same_label``, required, and its optional
        ``exclude_interferer``) or ``pairs`` (a pair list) and ``clips``
        (manifest or list of manifests).
    output_folder : str
        Results folder of this test set (``pairs.csv`` is written there).
    query_modes : list of str, optional
        Query kinds (default: every kind the model takes).
    max_mixtures : int, optional
        Only the first pairs.

    Returns
    -------
    dict
        ``{mode: summary}``.
    """
    if "pairs" in test_set:
        pairs, clips = test_set["pairs"], test_set["clips"]
    elif "targets" in test_set and "interferers" in test_set:
        pairs = make_protocol_pairs(
            test_set["targets"],
            test_set["interferers"],
            os.path.join(output_folder, "pairs.csv"),
            exclude_same_label=test_set["exclude_same_label"],
            max_targets=max_mixtures,
            exclude_interferer=test_set.get("exclude_interferer"),
        )
        clips = [test_set["targets"], test_set["interferers"]]
    else:
        raise ValueError(
            "a test set needs `targets` and `interferers` manifests, or `pairs` "
            f"and `clips`; got keys {sorted(test_set)}"
        )
    return evaluate_protocol(
        model, pairs, clips, output_folder, query_modes, max_mixtures
    )


def main(argv=None):
    """Command line of the protocol (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        required=True,
        help="recipe output folder (hyperparams.yaml + save/) or exported model folder",
    )
    parser.add_argument("--targets", help="manifest of the target clips")
    parser.add_argument("--interferers", help="manifest of the interferer clips")
    parser.add_argument("--pairs", help="pair list (ID,source1,label1,source2,label2)")
    parser.add_argument("--clips", nargs="+", help="manifests of the clips of --pairs")
    parser.add_argument(
        "--no_music_interferers",
        action="store_true",
        help="leave music-like labels out of the interferers (the paper's "
        "VGGSound interferers; see speechbrain_textsep.data.vggsound)",
    )
    parser.add_argument(
        "--allow_same_label",
        action="store_true",
        help="let a drawn interferer have the target's label",
    )
    parser.add_argument(
        "--queries", nargs="+", choices=QUERY_MODES, help="default: all the model takes"
    )
    parser.add_argument("--output_folder", required=True)
    parser.add_argument("--segment_samples", type=int, help="default: the model's")
    parser.add_argument("--max_mixtures", type=int)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--savedir", help="where an exported model's files go")
    args = parser.parse_args(argv)

    if args.pairs:
        if not args.clips:
            parser.error("--pairs needs --clips")
        test_set = {"pairs": args.pairs, "clips": args.clips}
    elif args.targets and args.interferers:
        test_set = {
            "targets": args.targets,
            "interferers": args.interferers,
            "exclude_same_label": not args.allow_same_label,
        }
        if args.no_music_interferers:
            from speechbrain_textsep.data.vggsound import is_music_label

            test_set["exclude_interferer"] = is_music_label
    else:
        parser.error("give --targets and --interferers, or --pairs and --clips")
    model = load_evaluation_model(
        args.model, args.device, args.savedir, args.segment_samples
    )
    summaries = evaluate_test_set(
        model, test_set, args.output_folder, args.queries, args.max_mixtures
    )
    name = os.path.basename(os.path.normpath(args.output_folder))
    write_summary(
        os.path.join(args.output_folder, SUMMARY_FILE),
        model.model_kind,
        model.experiment,
        {name: summaries},
    )
    for mode, summary in summaries.items():
        print(f"{mode} queries: SDR {format_result(summary['sdr_bss_v4'])} dB")
    print(os.path.join(args.output_folder, "protocol_summary.json"))
    return summaries


if __name__ == "__main__":
    main()
