"""What the separation recipes share: data, training, test evaluation and export.

A recipe's ``train.py`` prepares its dataset, then calls :func:`run_experiment`.
The model family is named by the recipe key ``model_kind``:

- ``clipsep`` (default): CLIPSep, CLIPSep-Text, CLIPSep-NIT (frozen CLIP);
- ``labelsep``: a trainable label embedding
  (:class:`~speechbrain_textsep.encoders.labels.LabelQueryEncoder`) whose
  label list comes from the training manifest when not given;
- ``bertsep``: frozen BERT sentence embeddings
  (:class:`~speechbrain_textsep.encoders.bert.BERTQueryEncoder`);
- ``pit``: the query-free PIT baseline (``query_mode: none``, no
  ``query_encoder``); it is evaluated from the recipe's output folder, not
  exported (the pretrained interfaces take queries).

Authors
 * speechbrain-textsep contributors
"""

import json
import os

import torch
from speechbrain.dataio.sampler import ReproducibleRandomSampler
from speechbrain.utils.distributed import if_main_process, run_on_main
from speechbrain.utils.logger import get_logger

from speechbrain_textsep.evaluation.mixtures import evaluate_mixture_list
from speechbrain_textsep.evaluation.protocol import (
    evaluate_test_set,
    evaluation_model_from_hparams,
    format_result,
)
from speechbrain_textsep.templates import template_path
from speechbrain_textsep.inference.run_folder import (
    model_kind,
    query_encoder_in_checkpoint,
)
from speechbrain_textsep.inference.export import export_model, write_model_card
from speechbrain_textsep.training.brain import QuerySeparationBrain
from speechbrain_textsep.data.clips import clip_dataset

logger = get_logger(__name__)

DEFAULT_INFERENCE_HPARAMS = template_path("clipsep")

#: Recipe keys of the audio front end and U-Net (every exported model).
MODEL_KEYS = (
    "sample_rate",
    "n_fft",
    "hop_length",
    "win_length",
    "n_warped",
    "levels",
    "ngf",
    "n_maps",
    "query_dim",
)

#: Recipe keys copied into the exported inference hyperparameters (CLIPSep).
EXPORTED_KEYS = MODEL_KEYS[:-1] + (
    "clip_model",
    "clip_pretrained",
    "clip_model_cfg",
    "query_dim",
)

#: Inference templates and recipe keys of every exportable ``model_kind``.
EXPORTS = {
    "clipsep": (DEFAULT_INFERENCE_HPARAMS, EXPORTED_KEYS),
    "labelsep": (template_path("labelsep"), MODEL_KEYS),
    "bertsep": (
        template_path("bertsep"),
        MODEL_KEYS + ("bert_source", "bert_pooling"),
    ),
}

def prepare_query_encoder(hparams):
    """Gives a LabelSep encoder its labels (from ``train_csv``) if it has none."""
    encoder = hparams.get("query_encoder")
    if getattr(encoder, "labels", False) is None and hasattr(encoder, "set_labels"):
        from speechbrain_textsep.encoders.labels import labels_from_manifests

        encoder.set_labels(labels_from_manifests(hparams["train_csv"]))
        logger.info(f"LabelSep labels ({len(encoder.labels)}): {encoder.labels}")


def dataio_prepare(hparams):
    """Train and valid datasets of single-source clips (frames for image queries)."""
    preprocess = None
    if hparams["query_mode"] not in ("text", "none"):
        preprocess = hparams["query_encoder"].preprocess
    common = {
        "segment_samples": hparams["segment_samples"],
        "sample_rate": hparams["sample_rate"],
        "image_preprocess": preprocess,
        "n_query_frames": hparams["n_query_frames"],
    }
    train = clip_dataset(hparams["train_csv"], train=True, **common)
    valid = clip_dataset(hparams["valid_csv"], train=False, **common)
    return train, valid


def epoch_sampler(train_data, hparams):
    """A sampler of ``steps_per_epoch`` batches per process, or None.

    With ``steps_per_epoch`` set, an "epoch" is that many optimiser steps
    of random clips (reshuffled when the manifest runs out), whatever the
    size of the dataset: the step budget and the validation frequency of
    the paper's schedule do not depend on the dataset. Under DDP every
    process draws its share of ``steps_per_epoch * batch_size * world``.
    """
    steps = hparams.get("steps_per_epoch")
    if not steps:
        return None
    world = 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        world = torch.distributed.get_world_size()
    batch = hparams["train_dataloader_opts"]["batch_size"]
    return ReproducibleRandomSampler(
        train_data,
        seed=hparams.get("seed", 563375142),
        num_samples=int(steps) * batch * world,
    )


def text_separate_fn(separator, query_encoder, prompts, device):
    """``separate(mixture [1, L], labels) -> [1, Q, L]`` with prompt-ensembled text."""

    def separate(mixture, labels):
        queries = query_encoder.encode_text(labels, ensemble=prompts)
        return separator(mixture.to(device), queries[None])

    return separate


def export_trained_model(hparams, out_dir, summary=None):
    """Writes the inference folder of the trained model, its test summary and
    a model card (``README.md``)."""
    kind = model_kind(hparams)
    if kind not in EXPORTS:
        raise ValueError(
            f"a {kind} model cannot be exported for the pretrained interfaces "
            "(they take queries): evaluate its recipe output folder instead"
        )
    template, keys = EXPORTS[kind]
    overrides = {key: hparams[key] for key in keys}
    overrides["text_prompts"] = list(hparams["eval_prompts"])
    overrides["query_encoder_in_folder"] = query_encoder_in_checkpoint(hparams)
    if kind == "clipsep" and overrides["query_encoder_in_folder"]:
        overrides["clip_pretrained"] = None
    if kind == "labelsep":
        overrides["labels"] = list(hparams["query_encoder"].labels)
    template = hparams.get("inference_hparams") or template
    export_model(
        out_dir, template, overrides, hparams["mask_net"], hparams["query_encoder"]
    )
    if summary is not None:
        with open(os.path.join(out_dir, "test_summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
    best = hparams["checkpointer"].find_checkpoint(max_key="sdri")
    write_model_card(out_dir, hparams, best.meta if best else {}, summary)
    logger.info(f"Exported the model to {out_dir}")


def evaluate_test_sets(hparams, device):
    """The CLIPSep protocol on every ``test_sets`` entry of the recipe.

    Results go to ``<output_folder>/test/<set>/<query mode>/`` (see
    :func:`~speechbrain_textsep.evaluation.protocol.evaluate_protocol`).

    Returns
    -------
    dict
        ``{set: {mode: summary}}``.
    """
    model = evaluation_model_from_hparams(hparams, device)
    summaries = {}
    for name, test_set in hparams["test_sets"].items():
        paths = ("targets", "interferers", "pairs", "clips")
        unset = [key for key in paths if key in test_set and not test_set[key]]
        if unset:
            logger.info(f"Test set {name} skipped: no {', '.join(unset)} given")
            continue
        summaries[name] = evaluate_test_set(
            model,
            test_set,
            os.path.join(hparams["output_folder"], "test", name),
            query_modes=hparams.get("eval_query_modes"),
            max_mixtures=hparams.get("max_test_mixtures"),
        )
        for mode, summary in summaries[name].items():
            logger.info(
                f"Test {name} ({mode} queries): SDR "
                f"{format_result(summary['bss_sdr'])} dB"
            )
    with open(os.path.join(hparams["output_folder"], "test_summary.json"), "w") as f:
        json.dump(summaries, f, indent=2)
    return summaries


def run_experiment(hparams, run_opts, evaluate=True, export=True):
    """Trains, evaluates on the test data and exports a separation model.

    Arguments
    ---------
    hparams : dict
        Loaded recipe hyperparameters (see the SynthMUSIC, MUSIC and
        VGGSound recipes).
    run_opts : dict
        SpeechBrain run options (device, ``--debug``, DDP...).
    evaluate : bool
        Evaluates the best checkpoint: with the CLIPSep protocol on each
        ``test_sets`` entry when the recipe has them, else on the mixture
        list ``test_mixtures_csv`` (both sources queried by text).
    export : bool
        Exports the best checkpoint to ``model_folder`` (``export: False``
        in the recipe, or a query-free model, skips it).

    Returns
    -------
    dict
        ``brain`` and, if evaluated, the test ``summary``.
    """
    kind = model_kind(hparams)
    prepare_query_encoder(hparams)
    if query_encoder_in_checkpoint(hparams):
        # Trainable, random-init or locally built: its weights belong to the
        # experiment.
        hparams["checkpointer"].add_recoverable(
            "query_encoder", hparams["query_encoder"]
        )
    train_data, valid_data = dataio_prepare(hparams)
    train_loader_kwargs = dict(hparams["train_dataloader_opts"])
    sampler = epoch_sampler(train_data, hparams)
    if sampler is not None:
        train_loader_kwargs["shuffle"] = False
        train_loader_kwargs["sampler"] = sampler
    brain = QuerySeparationBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    brain.epoch_sampler = sampler
    brain.fit(
        brain.hparams.epoch_counter,
        train_data,
        valid_data,
        train_loader_kwargs=train_loader_kwargs,
        valid_loader_kwargs=hparams["valid_dataloader_opts"],
    )
    result = {"brain": brain}
    export = export and hparams.get("export", True) and kind in EXPORTS
    if not (evaluate or export):
        return result
    brain.checkpointer.recover_if_possible(max_key="sdri")
    brain.modules.eval()
    if evaluate and if_main_process():
        with torch.no_grad():
            if hparams.get("test_sets"):
                result["summary"] = evaluate_test_sets(hparams, brain.device)
            else:
                result["summary"] = evaluate_mixture_list(
                    text_separate_fn(
                        hparams["separator"],
                        hparams["query_encoder"],
                        hparams["eval_prompts"],
                        brain.device,
                    ),
                    hparams["test_mixtures_csv"],
                    hparams["test_csv"],
                    hparams["output_folder"],
                    segment_samples=hparams["segment_samples"],
                    sample_rate=hparams["sample_rate"],
                    max_mixtures=hparams.get("max_test_mixtures"),
                )
                logger.info("Test summary: " + json.dumps(_means(result["summary"])))
    if export:
        run_on_main(
            export_trained_model,
            args=[hparams, hparams["model_folder"], result.get("summary")],
        )
    return result


def _means(summary):
    return {key: round(stats["mean"], 2) for key, stats in summary.items()}
