"""Scaling-law fits of a training grid (deepinv_lab.grid.scaling), checked against closed forms."""

import math
import re

import numpy as np
import pytest
from PIL import Image

from deepinv_lab.grid.scaling import (
    Curve,
    PowerLaw,
    ScalingError,
    fit_power_law,
    format_fits,
    metric_from_gap,
    metric_gap,
    plot_scaling,
    scaling_curves,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("alpha", "beta"), [(-0.5, 2.0), (-0.21, 0.35), (0.3, 1e-3), (-1.7, 40.0)])
def test_exact_power_law_is_recovered(alpha, beta):
    sizes = np.repeat([10.0, 50.0, 200.0, 1000.0, 25000.0], 3)  # replicates share a size
    law = fit_power_law(sizes, beta * sizes**alpha)
    assert law.alpha == pytest.approx(alpha, abs=1e-10)
    assert law.beta == pytest.approx(beta, rel=1e-10)
    assert law.r2 == pytest.approx(1.0, abs=1e-12)
    assert law.n_points == sizes.size
    np.testing.assert_allclose(law(sizes), beta * sizes**alpha, rtol=1e-10)


def test_noisy_fit_matches_numpy_polyfit_on_logs():
    rng = np.random.default_rng(0)
    sizes = np.repeat([20.0, 40.0, 80.0, 160.0, 320.0], 4)
    gaps = 0.8 * sizes**-0.4 * np.exp(0.1 * rng.standard_normal(sizes.size))
    law = fit_power_law(sizes, gaps)

    slope, intercept = np.polyfit(np.log(sizes), np.log(gaps), 1)
    predicted = np.polyval([slope, intercept], np.log(sizes))
    r2 = 1 - np.sum((np.log(gaps) - predicted) ** 2) / np.sum(
        (np.log(gaps) - np.log(gaps).mean()) ** 2
    )
    assert law.alpha == pytest.approx(slope, abs=1e-12)
    assert law.beta == pytest.approx(math.exp(intercept), rel=1e-12)
    assert law.r2 == pytest.approx(r2, abs=1e-12)
    assert 0 < law.r2 < 1


@pytest.mark.parametrize(
    ("sizes", "gaps", "message"),
    [
        ([10, 20, 40], [0.1, 0.2], "differ in length"),
        ([10, 0, 40], [0.1, 0.2, 0.3], "size must be positive"),
        ([10, 20, 40], [0.1, 0.0, 0.3], "gap must be positive"),
        ([10, 20, 40], [0.1, -0.2, 0.3], "log-log fit"),
        ([10, 10, 10], [0.1, 0.2, 0.3], "at least 2 training-set sizes; found [10]"),
    ],
)
def test_fit_power_law_rejects_bad_input(sizes, gaps, message):
    with pytest.raises(ScalingError, match=re.escape(message)):
        fit_power_law(sizes, gaps)


def test_metric_gap_by_metric_name():
    psnr = np.array([20.0, 30.0])
    gaps, label = metric_gap("test/psnr", psnr)
    np.testing.assert_allclose(gaps, [1e-2, 1e-3])
    assert label == "10^(-PSNR/10)"

    gaps, label = metric_gap("val/psnr_best", psnr)  # suffix and stage prefix are stripped
    np.testing.assert_allclose(gaps, [1e-2, 1e-3])

    gaps, label = metric_gap("val/ssim_final", [0.8, 0.95])
    np.testing.assert_allclose(gaps, [0.2, 0.05])
    assert label == "1 - SSIM"

    for metric in ("train/loss", "test/mse", "test/nmse", "val/mae_best", "val/l1"):
        gaps, label = metric_gap(metric, [0.3, 0.1])
        np.testing.assert_allclose(gaps, [0.3, 0.1])
        assert label == metric


def test_metric_gap_with_reference_and_unknown_metric():
    gaps, label = metric_gap("test/score", [0.7, 0.9, 1.2], reference=1.0)
    np.testing.assert_allclose(gaps, [0.3, 0.1, 0.2])
    assert label == "|1 - test/score|"
    # An explicit reference overrides the built-in gap of a known metric.
    gaps, _ = metric_gap("test/psnr", [38.0], reference=40.0)
    np.testing.assert_allclose(gaps, [2.0])

    with pytest.raises(ScalingError, match="--reference"):
        metric_gap("test/score", [0.7])


@pytest.mark.parametrize(
    ("metric", "values", "reference"),
    [
        ("test/psnr", [25.0, 31.5], None),
        ("val/ssim_best", [0.7, 0.93], None),
        ("test/nmse", [0.02, 0.004], None),
        ("test/score", [0.7, 0.9], 1.0),  # values below the reference
        ("test/error", [3.0, 2.5], 1.0),  # values above the reference
    ],
)
def test_metric_from_gap_inverts_metric_gap(metric, values, reference):
    gaps, _ = metric_gap(metric, values, reference)
    recovered = metric_from_gap(metric, gaps, reference, float(np.mean(values)))
    np.testing.assert_allclose(recovered, values, rtol=1e-12)


def _grid_rows():
    """A CSV-like run table: strings everywhere, 2 replicates, a failed and a pending run."""
    rows = []
    for chans, alpha in (("32", -0.4), ("8", -0.1), ("16", -0.2)):
        for size in (50, 100, 200, 400):
            for seed in range(2):
                gap = 0.5 * size**alpha * (1.0 + 0.01 * seed)
                rows.append(
                    {
                        "status": "completed",
                        "data.n_train": str(size),
                        "model.init_args.chans": chans,
                        "seed": str(seed),
                        "test/ssim": f"{1 - gap!r}",
                        "test/psnr": "",
                    }
                )
    rows.append({"status": "failed", "data.n_train": "800", "model.init_args.chans": "8"})
    rows.append(
        {"status": "pending", "data.n_train": "800", "model.init_args.chans": "8", "test/ssim": ""}
    )
    rows.append(  # completed but the metric is missing: skipped
        {
            "status": "completed",
            "data.n_train": "800",
            "model.init_args.chans": "8",
            "test/ssim": "",
        }
    )
    return rows


def test_scaling_curves_groups_sorts_and_fits():
    curves, gap_label = scaling_curves(
        _grid_rows(), "data.n_train", "test/ssim", ["model.init_args.chans"]
    )
    assert gap_label == "1 - SSIM"
    assert [curve.label for curve in curves] == ["chans=8", "chans=16", "chans=32"]  # numeric
    assert [curve.group for curve in curves] == [{"model.init_args.chans": c} for c in (8, 16, 32)]
    for curve, alpha in zip(curves, (-0.1, -0.2, -0.4), strict=True):
        np.testing.assert_array_equal(curve.sizes, np.repeat([50.0, 100.0, 200.0, 400.0], 2))
        np.testing.assert_allclose(curve.gaps, 1 - curve.values)
        assert curve.fit.alpha == pytest.approx(alpha, abs=0.01)
        assert curve.fit.n_points == 8


def test_scaling_curves_without_groups_and_without_status():
    rows = [{"n": n, "test/loss": repr(3.0 * float(n) ** -0.5)} for n in ("10", "1e2", "1000")]
    curves, gap_label = scaling_curves(rows, "n", "test/loss", [])
    assert [curve.label for curve in curves] == ["all"]
    assert gap_label == "test/loss"
    assert curves[0].fit.alpha == pytest.approx(-0.5, abs=1e-10)
    assert curves[0].fit.beta == pytest.approx(3.0, rel=1e-10)


def test_curve_with_a_single_size_is_not_fitted():
    rows = _grid_rows() + [
        {
            "status": "completed",
            "data.n_train": "800",
            "model.init_args.chans": "64",
            "test/ssim": s,
        }
        for s in ("0.9", "0.91")
    ]
    curves, _ = scaling_curves(rows, "data.n_train", "test/ssim", ["model.init_args.chans"])
    assert curves[-1].label == "chans=64"
    assert curves[-1].fit is None
    assert all(curve.fit is not None for curve in curves[:-1])
    table = format_fits(curves)
    lines = table.splitlines()
    assert lines[0].split() == ["curve", "points", "sizes", "alpha", "beta", "R^2"]
    assert lines[-1].split() == ["chans=64", "2", "800–800", "–", "–", "–"]
    assert len({len(line) for line in lines[:-1]}) == 1  # aligned columns


def test_scaling_curves_errors():
    rows = _grid_rows()
    with pytest.raises(ScalingError, match=r"'test/lpips'.*test/psnr, test/ssim"):
        scaling_curves(rows, "data.n_train", "test/lpips", [])
    with pytest.raises(ScalingError, match="'n_train' is not a column"):
        scaling_curves(rows, "n_train", "test/ssim", [])
    with pytest.raises(ScalingError, match="no usable rows"):
        scaling_curves(rows, "data.n_train", "test/psnr", [])

    one_size = [r for r in rows if r["data.n_train"] == "50"]
    with pytest.raises(ScalingError, match=re.escape("at least 2 training-set sizes; found [50]")):
        scaling_curves(one_size, "data.n_train", "test/ssim", [])

    bad_size = rows + [{"status": "completed", "data.n_train": "many", "test/ssim": "0.9"}]
    with pytest.raises(ScalingError, match=r"'data.n_train'.*'many'"):
        scaling_curves(bad_size, "data.n_train", "test/ssim", [])

    with pytest.raises(ScalingError, match="--reference"):
        scaling_curves(
            [{"n": "10", "test/score": "0.5"}, {"n": "20", "test/score": "0.6"}],
            "n",
            "test/score",
            [],
        )


def test_psnr_linear_in_log_n_is_a_power_law_in_relative_mse():
    # PSNR = a + s log10 N  =>  10^(-PSNR/10) = 10^(-a/10) N^(-s/10),
    # so alpha = -s/10 and beta = 10^(-a/10).
    intercept, slope = 18.0, 2.5
    sizes = [32, 64, 128, 256, 512, 1024]
    rows = [
        {"n": str(n), "test/psnr": repr(intercept + slope * math.log10(n)), "status": "completed"}
        for n in sizes
    ]
    (curve,), _ = scaling_curves(rows, "n", "test/psnr", [])
    assert curve.fit.alpha == pytest.approx(-slope / 10, abs=1e-10)
    assert curve.fit.beta == pytest.approx(10 ** (-intercept / 10), rel=1e-10)
    assert curve.fit.r2 == pytest.approx(1.0, abs=1e-12)
    # Mapped back to the PSNR scale, the fit reproduces the data.
    fitted_psnr = metric_from_gap("test/psnr", curve.fit(curve.sizes), None, 0.0)
    np.testing.assert_allclose(fitted_psnr, curve.values, rtol=1e-12)


def _assert_png(path, min_size=(400, 200)):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1]
        assert image.size[0] > image.size[1]  # two panels side by side


def test_plot_scaling_writes_a_png(tmp_path):
    rows = _grid_rows() + [
        {
            "status": "completed",
            "data.n_train": "800",
            "model.init_args.chans": "64",
            "test/ssim": "0.9",
        }
    ]
    curves, gap_label = scaling_curves(rows, "data.n_train", "test/ssim", ["model.init_args.chans"])
    assert curves[-1].fit is None
    path = plot_scaling(curves, "test/ssim", gap_label, "training images", tmp_path / "a" / "s.png")
    assert path == tmp_path / "a" / "s.png"
    _assert_png(path)


def test_plot_scaling_with_reference(tmp_path):
    curve = Curve(
        label="all",
        group={},
        sizes=np.array([10.0, 100.0, 1000.0]),
        values=np.array([0.5, 0.8, 0.9]),
        gaps=np.array([0.5, 0.2, 0.1]),
        fit=PowerLaw(alpha=-0.35, beta=1.1, r2=0.99, n_points=3),
        reference=1.0,
    )
    path = plot_scaling([curve], "test/score", "|1 - test/score|", "N", str(tmp_path / "r.png"))
    _assert_png(path)
