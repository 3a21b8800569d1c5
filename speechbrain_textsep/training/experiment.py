"""What the separation recipes share: data, training, test evaluation and export.

A recipe's ``train.py`` prepares its dataset, then calls :func:`run_experiment`.

Authors
 * speechbrain-textsep contributors
"""

import json
import os

import torch
from speechbrain.utils.distributed import if_main_process, run_on_main
from speechbrain.utils.logger import get_logger

from speechbrain_textsep.evaluation.mixtures import evaluate_mixture_list
from speechbrain_textsep.inference.export import export_model
from speechbrain_textsep.training.brain import QuerySeparationBrain
from speechbrain_textsep.training.data import clip_dataset

logger = get_logger(__name__)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_INFERENCE_HPARAMS = os.path.join(REPO_ROOT, "hparams", "clipsep.yaml")

#: Recipe keys copied into the exported inference hyperparameters.
EXPORTED_KEYS = (
    "sample_rate",
    "n_fft",
    "hop_length",
    "win_length",
    "n_warped",
    "levels",
    "ngf",
    "n_maps",
    "clip_model",
    "clip_pretrained",
    "clip_model_cfg",
    "query_dim",
)


def query_encoder_is_local(hparams):
    """True when the CLIP weights cannot be fetched by name.

    That is a random-init or inline-config CLIP, or weights from a local file:
    their weights go into the checkpoints and the exported model folder.
    """
    pretrained = hparams["clip_pretrained"]
    return (
        bool(hparams["clip_model_cfg"])
        or pretrained is None
        or os.path.isfile(str(pretrained))
    )


def dataio_prepare(hparams):
    """Train and valid datasets of single-source clips (frames for image queries)."""
    preprocess = None
    if hparams["query_mode"] != "text":
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


def text_separate_fn(separator, query_encoder, prompts, device):
    """``separate(mixture [1, L], labels) -> [1, Q, L]`` with prompt-ensembled text."""

    def separate(mixture, labels):
        queries = query_encoder.encode_text(labels, ensemble=prompts)
        return separator(mixture.to(device), queries[None])

    return separate


def export_trained_model(hparams, out_dir, summary=None):
    """Writes the inference folder of the trained model (and its test summary)."""
    overrides = {key: hparams[key] for key in EXPORTED_KEYS}
    overrides["text_prompts"] = list(hparams["eval_prompts"])
    overrides["query_encoder_in_folder"] = query_encoder_is_local(hparams)
    if overrides["query_encoder_in_folder"]:
        overrides["clip_pretrained"] = None
    template = hparams.get("inference_hparams") or DEFAULT_INFERENCE_HPARAMS
    export_model(
        out_dir, template, overrides, hparams["mask_net"], hparams["query_encoder"]
    )
    if summary is not None:
        with open(os.path.join(out_dir, "test_summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
    logger.info(f"Exported the model to {out_dir}")


def run_experiment(hparams, run_opts, evaluate=True, export=True):
    """Trains, evaluates on the test mixtures and exports a CLIPSep-family model.

    Arguments
    ---------
    hparams : dict
        Loaded recipe hyperparameters (see the SynthMUSIC recipe).
    run_opts : dict
        SpeechBrain run options (device, ``--debug``, DDP...).
    evaluate : bool
        Evaluates the best checkpoint on ``test_mixtures_csv``.
    export : bool
        Exports the best checkpoint to ``model_folder``.

    Returns
    -------
    dict
        ``brain`` and, if evaluated, the test ``summary``.
    """
    if query_encoder_is_local(hparams):
        # Random-init or locally built CLIP: its weights belong to the experiment.
        hparams["checkpointer"].add_recoverable(
            "query_encoder", hparams["query_encoder"]
        )
    train_data, valid_data = dataio_prepare(hparams)
    brain = QuerySeparationBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    brain.fit(
        brain.hparams.epoch_counter,
        train_data,
        valid_data,
        train_loader_kwargs=hparams["train_dataloader_opts"],
        valid_loader_kwargs=hparams["valid_dataloader_opts"],
    )
    result = {"brain": brain}
    if not (evaluate or export):
        return result
    brain.checkpointer.recover_if_possible(max_key="sdri")
    brain.modules.eval()
    if evaluate and if_main_process():
        separate = text_separate_fn(
            hparams["separator"],
            hparams["query_encoder"],
            hparams["eval_prompts"],
            brain.device,
        )
        with torch.no_grad():
            result["summary"] = evaluate_mixture_list(
                separate,
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
