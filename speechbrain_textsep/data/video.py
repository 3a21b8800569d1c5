"""Preparation of a video dataset: extraction, manifests and report.

Every video becomes one clip; a prepared ``save_folder`` holds::

    audio/<ID>.wav                    16 kHz mono wav (16-bit PCM by default)
    frames/<ID>/000001.jpg ...        1 frame per second, 224 x 224
    extracted/<ID>.json               per-clip done marker, written last
    train.csv, valid.csv, test.csv    ID,audio,frames,n_frames,label,duration
    test_mixtures.csv                 ID,source1,label1,source2,label2
    failed.csv                        ID,video,label,split,reason,message
    prepare_report.json               counts, failures by reason, timings
    <dataset>_opts.json               options of the last completed run

The manifests have the SynthMUSIC layout, so the same recipes and
:func:`speechbrain_textsep.data.clips.clip_dataset` read them.

How one video is decoded (PyAV) into its wav file and frames is described
in :mod:`speechbrain_textsep.data.video_decode`; how the clips are extracted
in parallel and resumed after an interruption (the done markers), in
:mod:`speechbrain_textsep.data.video_jobs`. Clips that cannot be used are
never replaced by silence: :func:`prepare_video_dataset` leaves them out of
the manifests, lists them in ``failed.csv`` and ``prepare_report.json``
(with one of the :data:`~speechbrain_textsep.data.video_decode.
FAILURE_REASONS`) and prints a summary.

Authors
 * speechbrain-textsep contributors
"""

import json
import os
import time

from speechbrain.utils.logger import get_logger

from speechbrain_textsep.data.synthmusic import (
    MANIFEST_FIELDS,
    MIXTURE_FIELDS,
    SPLITS,
    write_csv,
)
from speechbrain_textsep.data.video_decode import check_config, extraction_settings
from speechbrain_textsep.data.video_jobs import (
    VideoClip,
    extract_clips,
    listing_fingerprint,
    write_json,
)

logger = get_logger(__name__)

#: Columns of ``failed.csv``.
FAILED_FIELDS = ["ID", "video", "label", "split", "reason", "message"]


def manifest_paths(save_folder):
    """Paths of the manifests written in ``save_folder``.

    Arguments
    ---------
    save_folder : str
        Root of the prepared dataset.

    Returns
    -------
    dict
        Keys ``"train"``, ``"valid"``, ``"test"``, ``"test_mixtures"``.

    Example
    -------
    >>> sorted(manifest_paths("/out"))
    ['test', 'test_mixtures', 'train', 'valid']
    """
    save_folder = os.path.abspath(os.fspath(save_folder))
    paths = {split: os.path.join(save_folder, f"{split}.csv") for split in SPLITS}
    paths["test_mixtures"] = os.path.join(save_folder, "test_mixtures.csv")
    return paths


def _opts_ok(manifests, opts_file, opts):
    """True if every manifest exists and opts_file records the same options."""
    if not all(os.path.isfile(p) for p in manifests.values()):
        return False
    try:
        with open(opts_file, encoding="utf-8") as f:
            return json.load(f) == opts
    except (OSError, ValueError):
        return False


def prepare_video_dataset(
    name,
    clips,
    save_folder,
    make_mixtures,
    options,
    config=None,
    min_duration=1.0,
    num_workers=1,
    extra_report=None,
    assign_splits=None,
):
    """Extracts listed clips and writes the manifests, the report and the options.

    Writes in ``save_folder``: ``train.csv``, ``valid.csv``, ``test.csv``
    (``ID,audio,frames,n_frames,label,duration``, rows sorted by label and
    ID, failed clips left out), ``test_mixtures.csv``
    (``ID,source1,label1,source2,label2``), ``failed.csv``
    (``ID,video,label,split,reason,message``), ``prepare_report.json`` and
    ``<name>_opts.json``. When the manifests exist and the options file
    records the same options and the same listed files, nothing is done.

    Arguments
    ---------
    name : str
        Dataset name, used in messages and in ``<name>_opts.json``.
    clips : list of VideoClip
        Every listed clip, with its split (or any split, e.g. None, if
        ``assign_splits`` gives them).
    save_folder : str
        Output root.
    make_mixtures : callable
        ``make_mixtures(test_rows) -> list of dict`` with the
        :data:`MIXTURE_FIELDS`; ``test_rows`` are the test manifest rows.
    options : dict
        json-serialisable options of the preparation (compared on reruns).
    config : ExtractionConfig, optional
        Extraction settings.
    min_duration : float
        Minimum audio duration in seconds.
    num_workers : int
        Worker processes.
    extra_report : dict, optional
        More entries for ``prepare_report.json`` (e.g. skipped listings).
    assign_splits : callable, optional
        ``assign_splits(clips) -> clips``: sets the split of the clips that
        were extracted successfully (so that unusable videos do not leave a
        split short); by default the clips keep the split they were listed
        with.

    Returns
    -------
    dict
        Paths of the manifests (see :func:`manifest_paths`).

    Raises
    ------
    RuntimeError
        If every clip failed (the report is written first).
    """
    start = time.time()
    save_folder = os.path.abspath(os.fspath(save_folder))
    clips = [VideoClip(*c) for c in clips]
    if assign_splits is None:
        bad = sorted({str(c.split) for c in clips} - set(SPLITS))
        if bad:
            raise ValueError(f"unknown split name(s) {bad}; expected {SPLITS}")
    config = check_config(config)
    manifests = manifest_paths(save_folder)
    opts = _run_options(options, config, min_duration, clips)
    opts_file = os.path.join(save_folder, f"{name.lower()}_opts.json")
    if _opts_ok(manifests, opts_file, opts):
        logger.info("%s is already prepared in %s, skipping", name, save_folder)
        return manifests
    os.makedirs(save_folder, exist_ok=True)
    if os.path.lexists(opts_file):
        os.remove(opts_file)  # a crash from here on must not look "prepared"

    results = extract_clips(clips, save_folder, config, min_duration, num_workers)
    usable, failed = _sort_out(clips, results)
    if assign_splits is not None:
        usable = _assign_splits(usable, assign_splits)
    rows = _manifest_rows(usable)
    failed.sort(key=lambda r: r["ID"])
    write_csv(os.path.join(save_folder, "failed.csv"), FAILED_FIELDS, failed)
    report = _report(name, save_folder, clips, results, rows, extra_report)
    report_path = os.path.join(save_folder, "prepare_report.json")
    if not any(rows.values()):
        report["seconds"] = round(time.time() - start, 3)
        write_json(report_path, report)
        _print_summary(report, failed)
        raise RuntimeError(
            f"{name}: none of the {len(clips)} listed videos could be used; "
            f"see {report['failed_csv']}"
        )

    report["n_test_mixtures"] = _write_manifests(manifests, rows, make_mixtures)
    report["seconds"] = round(time.time() - start, 3)
    write_json(report_path, report)
    write_json(opts_file, opts)
    _print_summary(report, failed)
    return manifests


def _run_options(options, config, min_duration, clips):
    """What ``<name>_opts.json`` records: a rerun with the same is skipped."""
    return {
        **options,
        "extraction": extraction_settings(config),
        "min_duration": float(min_duration),
        "listing": listing_fingerprint(clips),
    }


def _sort_out(clips, results):
    """Splits the clips into usable ones and failed ones.

    Returns ``usable`` (``ID -> (clip, result)``, in listing order) and
    ``failed`` (the rows of ``failed.csv``, in listing order).
    """
    failed = []
    usable = {}
    for clip, result in zip(clips, results):
        if result["status"] != "failed":
            usable[clip.ID] = (clip, result)
            continue
        failed.append(
            {
                "ID": clip.ID,
                "video": clip.video,
                "label": clip.label,
                "split": clip.split or "",
                "reason": result["reason"],
                "message": result["message"],
            }
        )
    return usable, failed


def _assign_splits(usable, assign_splits):
    """Sets the splits of the usable clips with ``assign_splits``."""
    assigned = [VideoClip(*c) for c in assign_splits([c for c, _ in usable.values()])]
    if sorted(c.ID for c in assigned) != sorted(usable):
        raise RuntimeError("assign_splits must return every usable clip once")
    return {c.ID: (c, usable[c.ID][1]) for c in assigned}


def _manifest_rows(usable):
    """The manifest rows of the usable clips, split by split."""
    rows = {split: [] for split in SPLITS}
    for clip, result in usable.values():
        if clip.split not in SPLITS:
            raise ValueError(f"clip {clip.ID}: unknown split {clip.split!r}")
        rows[clip.split].append(
            {
                "ID": clip.ID,
                "audio": result["audio"],
                "frames": result["frames"],
                "n_frames": result["n_frames"],
                "label": clip.label,
                "duration": result["duration"],
            }
        )
    return rows


def _report(name, save_folder, clips, results, rows, extra_report):
    """The content of ``prepare_report.json`` (less the timing)."""
    counts = {
        status: sum(r["status"] == status for r in results)
        for status in ("extracted", "reused", "failed")
    }
    reasons = {}
    for result in results:
        if result["status"] == "failed":
            reasons[result["reason"]] = reasons.get(result["reason"], 0) + 1
    return {
        "dataset": name,
        "save_folder": save_folder,
        "n_listed": len(clips),
        "n_extracted": counts["extracted"],
        "n_reused": counts["reused"],
        "n_failed": counts["failed"],
        "failures": dict(sorted(reasons.items())),
        "n_clips": {split: len(rows[split]) for split in SPLITS},
        "n_labels": {split: len({r["label"] for r in rows[split]}) for split in SPLITS},
        "failed_csv": os.path.join(save_folder, "failed.csv"),
        **(extra_report or {}),
    }


def _write_manifests(manifests, rows, make_mixtures):
    """Writes the split manifests (sorted) and the test mixtures; counts these."""
    for split in SPLITS:
        rows[split].sort(key=lambda r: (r["label"], r["ID"]))
        write_csv(manifests[split], MANIFEST_FIELDS, rows[split])
    mixtures = make_mixtures(rows["test"])
    write_csv(manifests["test_mixtures"], MIXTURE_FIELDS, mixtures)
    return len(mixtures)


def _print_summary(report, failed, max_lines=20):
    """Prints the outcome of a preparation (and warns about failed clips)."""
    reasons = ", ".join(f"{k}: {v}" for k, v in report["failures"].items())
    clips = ", ".join(f"{k} {v}" for k, v in report["n_clips"].items())
    print(
        f"{report['dataset']}: {report['n_listed']} videos listed, "
        f"{report['n_extracted']} extracted, {report['n_reused']} already done, "
        f"{report['n_failed']} failed{f' ({reasons})' if reasons else ''}; "
        f"clips: {clips}; manifests in {report['save_folder']}"
    )
    for row in failed[:max_lines]:
        print(f"  skipped {row['ID']}: {row['reason']}: {row['message']}")
    if len(failed) > max_lines:
        print(f"  ... {len(failed) - max_lines} more in {report['failed_csv']}")
    if failed:
        logger.warning(
            "%s: %d video(s) skipped, listed in %s",
            report["dataset"],
            len(failed),
            report["failed_csv"],
        )
