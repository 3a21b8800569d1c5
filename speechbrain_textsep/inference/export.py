"""Export of a trained separator as a model folder for ``from_hparams``.

Authors
 * speechbrain-textsep contributors
"""

import os

import torch
from hyperpyyaml import resolve_references

MASK_NET_FILE = "mask_net.ckpt"
QUERY_ENCODER_FILE = "query_encoder.ckpt"
TRAINING_ONLY_PREFIXES = ("noise_heads.",)


def export_model(out_dir, template, overrides, mask_net, query_encoder=None):
    """Writes ``hyperparams.yaml`` and the checkpoints of an inference folder.

    Arguments
    ---------
    out_dir : str
        Folder to create (it is what ``from_hparams(source=...)`` takes).
    template : str
        Inference hyperparameters with HyperPyYAML tags (``hparams/clipsep.yaml``).
    overrides : dict
        Values that describe the trained model (sizes, CLIP name and tag,
        prompts...), resolved into the written ``hyperparams.yaml``.
    mask_net : torch.nn.Module
        The trained mask network. Training-only parameters (NIT noise heads)
        are left out.
    query_encoder : torch.nn.Module, optional
        Saved as ``query_encoder.ckpt`` when its weights cannot be fetched
        by open_clip (a random-init or locally trained CLIP); set
        ``query_encoder_in_folder: True`` in ``overrides`` then.

    Returns
    -------
    str
        Path of the written ``hyperparams.yaml``.
    """
    if not os.path.isfile(template):
        raise FileNotFoundError(
            f"inference hyperparameters template not found: {template} (it is "
            "hparams/clipsep.yaml in the repository; set `inference_hparams`)"
        )
    os.makedirs(out_dir, exist_ok=True)
    with open(template) as f:
        resolved = resolve_references(
            f, overrides, overrides_must_match=True
        ).getvalue()
    hparams_path = os.path.join(out_dir, "hyperparams.yaml")
    with open(hparams_path, "w") as f:
        f.write(resolved)
    state = {
        key: value
        for key, value in mask_net.state_dict().items()
        if not key.startswith(TRAINING_ONLY_PREFIXES)
    }
    torch.save(state, os.path.join(out_dir, MASK_NET_FILE))
    if overrides.get("query_encoder_in_folder"):
        if query_encoder is None:
            raise ValueError(
                "query_encoder_in_folder is set but no query_encoder given"
            )
        torch.save(
            query_encoder.state_dict(), os.path.join(out_dir, QUERY_ENCODER_FILE)
        )
    return hparams_path
