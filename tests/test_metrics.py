"""Tests for speechbrain_textsep.evaluation.metrics and .report."""

import builtins
import csv
import json
import math

import numpy as np
import pytest
import torch

from speechbrain_textsep.evaluation import metrics
from speechbrain_textsep.evaluation.metrics import (
    bss_eval_v4,
    sdr,
    sdr_improvement,
    separation_scores,
    si_sdr,
    si_sdr_improvement,
)
from speechbrain_textsep.evaluation.report import (
    ITEM_COLUMNS,
    read_summary,
    result_document,
    summarize,
    write_item_results,
    write_results,
    write_summary,
)

pytestmark = pytest.mark.unit

SAMPLE_RATE = 16000


def _orthogonal_pair(n=1000):
    """Zero-mean, orthogonal +-1 signals with energy n each."""
    t = torch.arange(n, dtype=torch.float64)
    reference = torch.where(t % 2 == 0, 1.0, -1.0).double()  # + - + - ...
    noise = torch.where((t // 2) % 2 == 0, 1.0, -1.0).double()  # + + - - ...
    assert float(reference @ noise) == 0.0
    return reference, noise


def _rendered_like(seconds=1.0, seed=0):
    """Random target, low-pass filtered interferer, mixture, and a good estimate.

    The estimate is the target plus a little interference and white noise.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    target = rng.standard_normal(n)
    interferer = np.convolve(rng.standard_normal(n), np.ones(8) / 4)[:n]
    mixture = target + interferer
    estimate = target + 0.05 * interferer + 0.01 * rng.standard_normal(n)
    return target, interferer, mixture, estimate


# (a) hand-computed values ---------------------------------------------------


def test_sdr_hand_computed():
    reference, noise = _orthogonal_pair()
    for gain, expected in [(0.1, 20.0), (1.0, 0.0), (0.5, 10 * math.log10(4))]:
        value = sdr(reference + gain * noise, reference)
        assert value.item() == pytest.approx(expected, abs=1e-6)
    # SDR is not scale invariant: 2 * reference -> error = reference -> 0 dB
    assert sdr(2 * reference, reference).item() == pytest.approx(0.0, abs=1e-6)
    # nor is it for a scaled good estimate
    estimate = reference + 0.1 * noise
    assert sdr(3 * estimate, reference).item() < 10.0


def test_si_sdr_hand_computed_and_scale_invariance():
    reference, noise = _orthogonal_pair()
    estimate = reference + 0.1 * noise
    assert si_sdr(estimate, reference).item() == pytest.approx(20.0, abs=1e-6)
    for scale in (0.01, 3.0, -2.0):  # exact up to the eps terms
        assert si_sdr(scale * estimate, reference).item() == pytest.approx(
            20.0, abs=1e-4
        )
    # zero-mean: a DC offset does not matter for SI-SDR, but does for SDR
    assert si_sdr(estimate + 5.0, reference).item() == pytest.approx(20.0, abs=1e-6)
    assert sdr(estimate + 5.0, reference).item() < 0.0


def test_improvements_hand_computed():
    reference, noise = _orthogonal_pair()
    mixture = reference + noise  # 0 dB
    estimate = reference + 0.1 * noise  # 20 dB
    assert sdr_improvement(estimate, reference, mixture).item() == pytest.approx(
        20.0, abs=1e-6
    )
    assert si_sdr_improvement(estimate, reference, mixture).item() == pytest.approx(
        20.0, abs=1e-6
    )
    assert sdr_improvement(mixture, reference, mixture).item() == 0.0


def test_perfect_estimate_is_finite():
    reference, _ = _orthogonal_pair()
    assert torch.isfinite(sdr(reference, reference))
    assert torch.isfinite(si_sdr(reference, reference))
    assert si_sdr(reference, reference).item() > 80.0


# (b) independent references ---------------------------------------------------


def test_si_sdr_matches_numpy_formula_and_speechbrain():
    from speechbrain.nnet.losses import cal_si_snr

    rng = np.random.default_rng(1)
    reference = rng.standard_normal((3, 2000)) + 0.3
    estimate = 0.8 * reference + 0.5 * rng.standard_normal((3, 2000))

    # direct numpy formula (Le Roux et al. 2019), no eps
    ref0 = reference - reference.mean(-1, keepdims=True)
    est0 = estimate - estimate.mean(-1, keepdims=True)
    alpha = (est0 * ref0).sum(-1, keepdims=True) / (ref0**2).sum(-1, keepdims=True)
    expected = 10 * np.log10(
        ((alpha * ref0) ** 2).sum(-1) / ((est0 - alpha * ref0) ** 2).sum(-1)
    )
    ours = si_sdr(torch.from_numpy(estimate), torch.from_numpy(reference)).numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-6)

    # SpeechBrain: [time, batch, sources] layout, negated
    sb = -cal_si_snr(
        torch.from_numpy(reference).T[:, :, None].float(),
        torch.from_numpy(estimate).T[:, :, None].float().clone(),
    )
    np.testing.assert_allclose(ours, sb.reshape(-1).double().numpy(), atol=1e-3)


# (c) BSS Eval v4 against museval -----------------------------------------------


def test_bss_eval_v4_matches_museval():
    import museval.metrics

    target, interferer, mixture, estimate = _rendered_like(seconds=1.0)
    references = np.stack([target, interferer])
    estimates = np.stack([estimate, mixture - estimate])
    n = references.shape[-1]

    ours = bss_eval_v4(references, estimates)
    direct = museval.metrics.bss_eval(
        references[..., None], estimates[..., None], window=n, hop=n
    )
    assert set(ours) == {"sdr", "sir", "sar"}
    for key, index in (("sdr", 0), ("sir", 2), ("sar", 3)):
        assert ours[key].shape == (2,)
        np.testing.assert_allclose(ours[key], direct[index][:, 0], atol=1e-6)

    # torch input gives the same numbers
    torch_scores = bss_eval_v4(
        torch.from_numpy(references), torch.from_numpy(estimates)
    )
    np.testing.assert_allclose(torch_scores["sdr"], ours["sdr"], atol=1e-6)

    # good estimate scores high, the mixture as an estimate lower
    mix_scores = bss_eval_v4(references, np.stack([mixture, mixture]))
    assert ours["sdr"][0] > 20.0
    assert mix_scores["sdr"][0] < ours["sdr"][0] - 15.0


def test_bss_eval_v4_framewise_window():
    import museval.metrics

    target, interferer, mixture, estimate = _rendered_like(seconds=1.0, seed=2)
    references = np.stack([target, interferer])
    estimates = np.stack([estimate, mixture - estimate])
    window = SAMPLE_RATE // 4
    ours = bss_eval_v4(references, estimates, window=window)
    direct = museval.metrics.bss_eval(
        references[..., None], estimates[..., None], window=window, hop=window
    )
    assert ours["sdr"].shape == (2, 4)
    np.testing.assert_allclose(ours["sdr"], direct[0], atol=1e-6)


def test_bss_scores_of_estimate_independent_of_other_estimate():
    target, interferer, mixture, estimate = _rendered_like(seconds=1.0, seed=3)
    references = np.stack([target, interferer])
    first = bss_eval_v4(references, np.stack([estimate, mixture - estimate]))
    second = bss_eval_v4(references, np.stack([estimate, mixture]))
    for key in ("sdr", "sir", "sar"):
        assert first[key][0] == pytest.approx(second[key][0], abs=1e-6)


def test_separation_scores():
    target, interferer, mixture, estimate = _rendered_like(seconds=1.0, seed=4)
    scores = separation_scores(estimate, target, interferer, mixture)
    assert list(scores) == [
        "sdr_plain",
        "sdri_plain",
        "si_sdr",
        "si_sdri",
        "sdr_bss_v4",
        "sir_bss_v4",
        "sar_bss_v4",
        "sdri_bss_v4",
    ]
    assert all(type(value) is float for value in scores.values())

    t = [torch.from_numpy(x) for x in (estimate, target, interferer, mixture)]
    assert scores["sdr_plain"] == pytest.approx(sdr(t[0], t[1]).item())
    assert scores["sdri_plain"] == pytest.approx(
        sdr_improvement(t[0], t[1], t[3]).item()
    )
    assert scores["si_sdr"] == pytest.approx(si_sdr(t[0], t[1]).item())
    assert scores["si_sdri"] == pytest.approx(
        si_sdr_improvement(t[0], t[1], t[3]).item()
    )

    references = np.stack([target, interferer])
    bss = bss_eval_v4(references, np.stack([estimate, mixture - estimate]))
    bss_mix = bss_eval_v4(references, np.stack([mixture, mixture]))
    assert scores["sdr_bss_v4"] == pytest.approx(bss["sdr"][0])
    assert scores["sir_bss_v4"] == pytest.approx(bss["sir"][0])
    assert scores["sar_bss_v4"] == pytest.approx(bss["sar"][0])
    assert scores["sdri_bss_v4"] == pytest.approx(bss["sdr"][0] - bss_mix["sdr"][0])
    assert scores["sdri_bss_v4"] > 10.0
    # museval's v4 SDR (bss_eval_images flavour) is the plain SDR: the error
    # terms of its decomposition sum to estimate - target
    assert scores["sdr_bss_v4"] == pytest.approx(scores["sdr_plain"], abs=1e-6)
    assert scores["sdri_bss_v4"] == pytest.approx(scores["sdri_plain"], abs=1e-6)

    # float32 torch input works too
    scores32 = separation_scores(*(x.float() for x in t))
    assert scores32["sdr_bss_v4"] == pytest.approx(scores["sdr_bss_v4"], abs=1e-3)


def test_separation_scores_degenerate_estimates():
    target, interferer, mixture, _ = _rendered_like(seconds=0.5, seed=5)
    # estimate == mixture: the residual is silent, still defined, all improvements 0
    scores = separation_scores(mixture, target, interferer, mixture)
    for key in ("sdri_plain", "si_sdri", "sdri_bss_v4"):
        assert scores[key] == pytest.approx(0.0, abs=1e-6)
    # silent estimate: BSS Eval undefined -> NaN with a warning
    with pytest.warns(UserWarning, match="silent"):
        scores = separation_scores(np.zeros_like(target), target, interferer, mixture)
    assert math.isnan(scores["sdr_bss_v4"]) and math.isnan(scores["sdri_bss_v4"])
    assert scores["sdr_plain"] == pytest.approx(0.0, abs=1e-6)


# (d) batching and gradients ------------------------------------------------------


def test_batching_matches_loop():
    torch.manual_seed(0)
    reference = torch.randn(2, 3, 500)
    estimate = reference + 0.3 * torch.randn(2, 3, 500)
    mixture = reference + torch.randn(2, 3, 500)
    for fn in (sdr, si_sdr):
        batched = fn(estimate, reference)
        assert batched.shape == (2, 3)
        for i in range(2):
            for j in range(3):
                assert batched[i, j].item() == pytest.approx(
                    fn(estimate[i, j], reference[i, j]).item(), abs=1e-4
                )
    for fn in (sdr_improvement, si_sdr_improvement):
        assert fn(estimate, reference, mixture).shape == (2, 3)


def test_gradients_are_finite():
    torch.manual_seed(0)
    reference = torch.randn(4, 800)
    estimate = (reference + 0.5 * torch.randn(4, 800)).requires_grad_()
    loss = -si_sdr(estimate, reference).mean()
    loss.backward()
    assert estimate.grad is not None
    assert torch.isfinite(estimate.grad).all()
    assert estimate.grad.abs().sum() > 0

    # also at the degenerate points (perfect and silent estimates)
    for start in (reference.clone(), torch.zeros_like(reference)):
        start.requires_grad_()
        (-si_sdr(start, reference).mean() - sdr(start, reference).mean()).backward()
        assert torch.isfinite(start.grad).all()


# (e) error cases -------------------------------------------------------------------


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 100\).*\(2, 99\)"):
        sdr(torch.zeros(2, 100), torch.zeros(2, 99))
    with pytest.raises(ValueError, match="mixture"):
        si_sdr_improvement(torch.ones(10), torch.ones(10), torch.ones(11))
    with pytest.raises(ValueError, match=r"\(2, 100\).*\(2, 99\)"):
        bss_eval_v4(np.ones((2, 100)), np.ones((2, 99)))
    with pytest.raises(ValueError, match="1-D"):
        separation_scores(np.ones((2, 10)), np.ones(10), np.ones(10), np.ones(10))


def test_bss_eval_v4_degenerate_inputs():
    target, interferer, mixture, estimate = _rendered_like(seconds=0.25, seed=6)
    estimates = np.stack([estimate, mixture - estimate])
    with pytest.raises(ValueError, match="reference source 1 is silent"):
        bss_eval_v4(np.stack([target, np.zeros_like(target)]), estimates)
    with pytest.raises(ValueError, match="estimate source 0 is silent"):
        bss_eval_v4(
            np.stack([target, interferer]),
            np.stack([np.zeros_like(target), mixture]),
        )
    bad = estimates.copy()
    bad[0, 10] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        bss_eval_v4(np.stack([target, interferer]), bad)
    bad[0, 10] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        bss_eval_v4(np.stack([target, interferer]), bad)
    with pytest.raises(ValueError, match="silent"):
        separation_scores(estimate, target, np.zeros_like(target), target)


def test_missing_ffmpeg_error_is_clear(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("museval"):
            raise RuntimeError("ffmpeg or ffprobe could not be found! ...")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(RuntimeError, match="install ffmpeg|Install ffmpeg"):
        metrics._import_museval_metrics()


# (f) summary and writer ---------------------------------------------------------------


def test_summarize_hand_computed():
    rows = [
        {"id": "a", "caption": "dog", "sdr": 1.0, "si_sdr": 2, "ok": True},
        {"id": "b", "caption": "cat", "sdr": 2.0, "si_sdr": 4, "ok": False},
        {"id": "c", "caption": "car", "sdr": 6.0, "si_sdr": float("nan"), "ok": True},
        {"id": "d", "caption": "saw", "sdr": 3.0, "si_sdr": 6, "ok": True},
    ]
    summary = summarize(rows)
    assert list(summary) == ["sdr", "si_sdr"]  # strings and bools ignored
    s = summary["sdr"]
    assert s["mean"] == 3.0
    assert s["median"] == 2.5
    # deviations -2, -1, 3, 0 -> sum sq 14, var = 14 / 3
    assert s["std"] == pytest.approx(math.sqrt(14 / 3))
    assert s["sem"] == pytest.approx(math.sqrt(14 / 3) / 2)
    assert s["count"] == 4 and s["n_nan"] == 0
    s = summary["si_sdr"]  # NaN left out
    assert s["mean"] == 4.0 and s["median"] == 4.0 and s["count"] == 3
    assert s["n_nan"] == 1
    assert s["sem"] == pytest.approx(2.0 / math.sqrt(3))

    only = summarize(rows, keys=["sdr"])
    assert list(only) == ["sdr"]
    with pytest.raises(ValueError, match="caption"):
        summarize(rows, keys=["caption"])
    single = summarize([{"sdr": 1.5}])["sdr"]
    assert single["mean"] == 1.5 and math.isnan(single["sem"])


def test_write_results_round_trip(tmp_path):
    rows = [
        {"id": "a", "caption": "a dog, barking", "sdr": 1.0, "bss_sdr": 1.5},
        {"id": "b", "caption": "a cat", "sdr": 3.0, "bss_sdr": float("nan")},
    ]
    csv_path = tmp_path / "deep" / "er" / "items.csv"
    summary_path = tmp_path / "other" / "summary.json"
    summary = write_results(rows, csv_path, summary_path)
    assert summary["sdr"]["mean"] == 2.0

    with open(csv_path, newline="") as f:
        read = list(csv.DictReader(f))
    assert list(read[0]) == ["id", "caption", "sdr", "bss_sdr"]
    assert read[0]["caption"] == "a dog, barking"
    assert [float(row["sdr"]) for row in read] == [1.0, 3.0]

    with open(summary_path) as f:
        text = f.read()
    assert "NaN" not in text  # strict JSON
    loaded = json.loads(text)
    assert loaded["sdr"]["mean"] == 2.0
    assert loaded["sdr"]["sem"] == pytest.approx(1.0)
    assert loaded["bss_sdr"]["count"] == 1 and loaded["bss_sdr"]["sem"] is None
    assert text.startswith('{\n  "sdr"')

    with pytest.raises(ValueError):
        write_results([], csv_path, summary_path)


def test_result_schema(tmp_path):
    """One per-item CSV layout and one summary layout for every evaluation."""
    rows = [
        {"sdri_plain": 1.0, "item": "a+b", "target": "a", "output": 1},
        {"sdri_plain": float("nan"), "item": "c+d", "query_kind": "text"},
    ]
    stats = write_item_results(rows, tmp_path / "t" / "test_results.csv")
    with open(tmp_path / "t" / "test_results.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header == [*ITEM_COLUMNS, "sdri_plain", "output"]
    assert list(stats) == ["sdri_plain"]  # `output` is a column, not a metric
    assert stats["sdri_plain"]["n_nan"] == 1 and stats["sdri_plain"]["count"] == 1
    doc = write_summary(
        tmp_path / "test_summary.json", "clipsep", "exp", {"set": {"text": stats}}
    )
    assert doc == read_summary(tmp_path / "test_summary.json")
    assert doc["metrics_doc"] == {
        "sdri_plain": "plain SDR improvement over the mixture"
    }
    assert doc["results"]["set"]["text"]["sdri_plain"]["sem"] is None  # strict JSON
    with pytest.raises(KeyError, match="unknown metric key 'sdri'"):
        result_document("clipsep", "exp", {"set": {"text": {"sdri": {}}}})
    (tmp_path / "old.json").write_text('{"sdri": {"mean": 1.0}}')
    with pytest.raises(ValueError, match="not a summary in the result schema"):
        read_summary(tmp_path / "old.json")
