"""Scaling laws of reconstruction quality in the training-set size, after Klug & Heckel (ICLR 2023).

A grid of training runs (training-set size ``N`` x network size) gives one metric per run. For each
network size, the distance of the metric to its best possible value, the *gap*, is fitted by a
power law

    gap(N) = beta * N**alpha,

by least squares on ``log gap = log beta + alpha * log N`` (Klug & Heckel, "Scaling laws for deep
learning based image reconstruction", ICLR 2023). This module holds the maths and the figure; the
CLI (``deepinv-lab scaling``) reads the run table and calls it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from deepinv_lab.errors import UserError

# Metrics for which smaller is better: the value itself is the gap to the ideal 0.
LOWER_IS_BETTER = ("loss", "mse", "nmse", "mae", "l1")
# Suffixes that name *which* value of a metric was logged, not what it measures.
_METRIC_SUFFIXES = ("_best", "_final")


class ScalingError(UserError):
    """The run table or the data cannot give a power-law fit; the message says what is missing."""


@dataclass(frozen=True)
class PowerLaw:
    """``gap(N) = beta * N**alpha``, fitted in log-log space.

    Attributes:
        alpha: exponent (negative when the gap shrinks with more data).
        beta: prefactor, the gap extrapolated to ``N = 1``.
        r2: coefficient of determination of the straight-line fit of ``log gap`` on ``log N``.
        n_points: number of ``(N, gap)`` pairs fitted (replicates counted separately).
    """

    alpha: float
    beta: float
    r2: float
    n_points: int

    def __call__(self, sizes: ArrayLike) -> np.ndarray:
        """The fitted gap ``beta * sizes**alpha`` as a float64 array."""
        return self.beta * np.asarray(sizes, dtype=np.float64) ** self.alpha


def fit_power_law(sizes: ArrayLike, gaps: ArrayLike) -> PowerLaw:
    """Least-squares fit of ``log gap = log beta + alpha * log N`` in float64.

    Args:
        sizes: training-set sizes ``N``, one per run (replicates allowed), all positive.
        gaps: the gap of each run (see :func:`metric_gap`), all positive.

    Returns:
        The fitted :class:`PowerLaw`. ``r2`` is 1 when the gaps are all equal (a flat line fits
        exactly).

    Raises:
        ScalingError: lengths differ, a size or gap is not positive and finite, or fewer than two
            distinct sizes are given.
    """
    sizes = np.asarray(sizes, dtype=np.float64).ravel()
    gaps = np.asarray(gaps, dtype=np.float64).ravel()
    if sizes.shape != gaps.shape:
        raise ScalingError(f"sizes and gaps differ in length: {sizes.size} sizes, {gaps.size} gaps")
    for name, array in (("size", sizes), ("gap", gaps)):
        bad = ~(np.isfinite(array) & (array > 0))
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            raise ScalingError(
                f"every {name} must be positive (and finite) for a log-log fit; "
                f"got {name} {array[index]:g} at index {index}"
            )
    distinct = np.unique(sizes)
    if distinct.size < 2:
        raise ScalingError(
            f"a power law needs at least 2 training-set sizes; found {_format_list(distinct)}"
        )

    log_n, log_gap = np.log(sizes), np.log(gaps)
    # Centred closed form of the least-squares line: better conditioned than normal equations
    # when log N is far from 0.
    log_n_c, log_gap_c = log_n - log_n.mean(), log_gap - log_gap.mean()
    alpha = float(np.dot(log_n_c, log_gap_c) / np.dot(log_n_c, log_n_c))
    log_beta = float(log_gap.mean() - alpha * log_n.mean())
    residual = log_gap - (log_beta + alpha * log_n)
    ss_res, ss_tot = float(np.dot(residual, residual)), float(np.dot(log_gap_c, log_gap_c))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return PowerLaw(alpha=alpha, beta=math.exp(log_beta), r2=r2, n_points=int(sizes.size))


def _metric_kind(metric: str) -> str:
    """``"psnr"``, ``"ssim"`` or ``"lower"`` from the metric's last name component."""
    name = metric.rsplit("/", 1)[-1].lower()
    for suffix in _METRIC_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name in ("psnr", "ssim"):
        return name
    if name in LOWER_IS_BETTER:
        return "lower"
    raise ScalingError(
        f"no known gap for metric {metric!r} (known: psnr, ssim, {', '.join(LOWER_IS_BETTER)}); "
        "give the metric's ideal value explicitly with --reference"
    )


def metric_gap(
    metric: str, values: ArrayLike, reference: float | None = None
) -> tuple[np.ndarray, str]:
    """The quantity of a metric that decays as a power law in ``N``, and its axis label.

    With ``reference``: ``|reference - value|``. Otherwise by the metric's last name component
    (``"val/psnr_best"`` -> ``psnr``):

    - ``psnr``: ``10**(-psnr/10)``, the MSE relative to the squared peak value; a power law in it
      is a PSNR linear in ``log N``.
    - ``ssim``: ``1 - ssim``.
    - ``loss``, ``mse``, ``nmse``, ``mae``, ``l1`` (lower is better): the value itself.

    Returns:
        ``(gaps, label)``: a float64 array shaped like ``values`` and the axis label.

    Raises:
        ScalingError: the metric is unknown and no reference is given.
    """
    values = np.asarray(values, dtype=np.float64)
    if reference is not None:
        return np.abs(reference - values), f"|{reference:g} - {metric}|"
    kind = _metric_kind(metric)
    if kind == "psnr":
        return 10.0 ** (-values / 10.0), "10^(-PSNR/10)"
    if kind == "ssim":
        return 1.0 - values, "1 - SSIM"
    return values.copy(), metric


def metric_from_gap(
    metric: str, gaps: ArrayLike, reference: float | None, mean_value: float
) -> np.ndarray:
    """Inverse of :func:`metric_gap`: the metric value that has a given gap.

    ``abs`` loses the side of the reference, so with ``reference`` the side is taken from
    ``mean_value``, the curve's mean metric (the reference's own value counts as below it).
    """
    gaps = np.asarray(gaps, dtype=np.float64)
    if reference is not None:
        side = 1.0 if reference - mean_value >= 0 else -1.0
        return reference - side * gaps
    kind = _metric_kind(metric)
    if kind == "psnr":
        return -10.0 * np.log10(gaps)
    if kind == "ssim":
        return 1.0 - gaps
    return gaps.copy()


@dataclass
class Curve:
    """The runs of one network size: metric against training-set size, and its power-law fit.

    Attributes:
        label: the group shown as ``"chans=16"`` (each key by its last dotted component), or
            ``"all"`` when there are no group keys.
        group: group key -> value (numbers parsed from strings).
        sizes, values, gaps: float64 arrays, one entry per completed run (replicates kept),
            sorted by size.
        fit: the power law of ``gaps`` in ``sizes``; ``None`` with fewer than 2 distinct sizes.
        reference: the metric's ideal value the gaps were measured from, if one was given
            (needed to map the fitted gap back to the metric, see :func:`plot_scaling`).
    """

    label: str
    group: dict
    sizes: np.ndarray
    values: np.ndarray
    gaps: np.ndarray
    fit: PowerLaw | None
    reference: float | None = None


def _parse(value: object) -> object:
    """A CSV cell as a number where possible: ``"50"`` -> 50, ``"0.83"`` -> 0.83, ``""`` -> None."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        for number in (int, float):
            with contextlib.suppress(ValueError):  # not this kind of number
                return number(text)
        return text
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _format_number(value: object) -> str:
    return f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)


def _format_list(values: Sequence) -> str:
    return "[" + ", ".join(_format_number(value) for value in values) + "]"


def _group_order(group: tuple) -> tuple:
    """Sort key of a group: numbers numerically, then strings, then missing values."""
    return tuple(
        (0, float(value), "")
        if _is_number(value)
        else (2, 0.0, "")
        if value is None
        else (1, 0.0, str(value))
        for value in group
    )


def _is_usable(row: dict, metric: str) -> bool:
    if "status" in row and str(row["status"]).strip() != "completed":
        return False
    value = _parse(row.get(metric))
    return _is_number(value) and math.isfinite(value)


def scaling_curves(
    rows: list[dict],
    size_key: str,
    metric: str,
    group_keys: list[str],
    reference: float | None = None,
) -> tuple[list[Curve], str]:
    """One :class:`Curve` per combination of ``group_keys``, each with its power-law fit.

    Uses the rows whose ``status`` is ``"completed"`` (or that have no ``status``) and whose metric
    parses as a finite number; CSV strings are parsed into numbers.

    Args:
        rows: the run table, one dict per run.
        size_key: column of the training-set size (numeric, positive).
        metric: column of the metric, e.g. ``"test/psnr"``; see :func:`metric_gap`.
        group_keys: columns that tell network sizes apart, e.g. ``["model.init_args.chans"]``.
        reference: the metric's ideal value, for metrics :func:`metric_gap` does not know.

    Returns:
        ``(curves, gap_label)``: curves sorted by group values (numerically where numeric) and the
        axis label of the gap.

    Raises:
        ScalingError: the metric or size column is absent, no row is usable, a size is not a
            positive number, a group key is absent, the metric has no known gap, or fewer than 2
            distinct sizes are found.
    """
    columns = sorted({key for row in rows for key in row})
    if metric not in columns:
        available = [column for column in columns if "/" in column]
        raise ScalingError(
            f"metric {metric!r} is not a column of the run table; "
            f"metric columns available: {', '.join(available) or 'none'}"
        )
    if size_key not in columns:
        raise ScalingError(
            f"size key {size_key!r} is not a column of the run table; "
            f"columns available: {', '.join(columns)}"
        )
    missing = [key for key in group_keys if key not in columns]
    if missing:
        raise ScalingError(
            f"group key(s) {', '.join(map(repr, missing))} not a column of the run table; "
            f"columns available: {', '.join(columns)}"
        )
    usable = [row for row in rows if _is_usable(row, metric)]
    if not usable:
        raise ScalingError(
            f"no usable rows: none of the {len(rows)} rows is completed with a finite {metric!r}"
        )

    groups: dict[tuple, list[tuple[float, float]]] = {}
    for row in usable:
        size = _parse(row.get(size_key))
        if not _is_number(size) or not size > 0:
            raise ScalingError(
                f"training-set size {size_key!r} must be a positive number; "
                f"got {row.get(size_key)!r}"
            )
        group = tuple(_parse(row.get(key)) for key in group_keys)
        groups.setdefault(group, []).append((float(size), float(_parse(row[metric]))))

    all_sizes = np.unique([size for points in groups.values() for size, _ in points])
    if all_sizes.size < 2:
        raise ScalingError(
            f"a power law needs at least 2 training-set sizes; found {_format_list(all_sizes)}"
        )

    curves, gap_label = [], ""
    for group in sorted(groups, key=_group_order):
        points = sorted(groups[group], key=lambda point: point[0])
        sizes = np.array([size for size, _ in points], dtype=np.float64)
        values = np.array([value for _, value in points], dtype=np.float64)
        gaps, gap_label = metric_gap(metric, values, reference)
        label = (
            ", ".join(
                f"{key.rsplit('.', 1)[-1]}={_format_number(value)}"
                for key, value in zip(group_keys, group, strict=True)
            )
            or "all"
        )
        fit = None
        if np.unique(sizes).size >= 2:
            try:
                fit = fit_power_law(sizes, gaps)
            except ScalingError as error:
                raise ScalingError(f"curve {label}: {error}") from error
        group_dict = dict(zip(group_keys, group, strict=True))
        curves.append(Curve(label, group_dict, sizes, values, gaps, fit, reference))
    return curves, gap_label


def plot_scaling(
    curves: list[Curve],
    metric: str,
    gap_label: str,
    size_label: str,
    path: str | Path,
) -> Path:
    """Draw the metric and its gap against the training-set size, with the fitted power laws.

    Left: the metric against ``N`` (log ``N`` axis): runs as small markers, the mean per size as a
    line, and the fitted law mapped back to the metric (dashed). Right: the gap on log-log axes with
    the fitted straight line (dashed), labelled with ``alpha`` and ``beta``. One colour per curve.

    Args:
        curves: from :func:`scaling_curves`.
        metric, gap_label, size_label: axis labels (``gap_label`` as returned by
            :func:`scaling_curves`).
        path: the PNG to write; parent folders are created.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    # The object-oriented API leaves pyplot's global state (and backend) alone.
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    if not curves:
        raise ScalingError("no curves to plot")
    path = Path(path)
    fig = Figure(figsize=(11.0, 4.5), layout="constrained")
    ax_metric, ax_gap = fig.subplots(1, 2)
    for index, curve in enumerate(curves):
        colour = f"C{index % 10}"
        distinct = np.unique(curve.sizes)
        mean_values = np.array([curve.values[curve.sizes == size].mean() for size in distinct])
        ax_metric.plot(curve.sizes, curve.values, ".", color=colour, alpha=0.5, markersize=5)
        ax_metric.plot(distinct, mean_values, "o-", color=colour, label=curve.label)
        ax_gap.plot(curve.sizes, curve.gaps, "o", color=colour, alpha=0.7, markersize=4)
        if curve.fit is None:
            ax_gap.plot([], [], "o", color=colour, label=f"{curve.label}: not fitted")
            continue
        grid = np.geomspace(distinct[0], distinct[-1], 100)
        fitted_gap = curve.fit(grid)
        fitted_metric = metric_from_gap(
            metric, fitted_gap, curve.reference, float(curve.values.mean())
        )
        ax_metric.plot(grid, fitted_metric, "--", color=colour)
        ax_gap.plot(
            grid,
            fitted_gap,
            "--",
            color=colour,
            label=f"{curve.label}: α={curve.fit.alpha:.3f}, β={curve.fit.beta:.3g}",
        )

    ax_metric.set_xscale("log")
    ax_metric.set(xlabel=size_label, ylabel=metric, title=f"{metric} (dashed: fitted power law)")
    ax_gap.set_xscale("log")
    ax_gap.set_yscale("log")
    ax_gap.set(xlabel=size_label, ylabel=gap_label, title=f"gap = {gap_label}, fit gap = β·N^α")
    for ax in (ax_metric, ax_gap):
        # Labelled minor ticks (3x10^2, 4x10^2, ...) collide on short N ranges.
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def format_fits(curves: list[Curve]) -> str:
    """An aligned text table of the fits, one line per curve.

    Columns: curve, points, sizes (min–max), alpha, beta, R^2; ``–`` where a curve is not fitted.
    """
    header = ("curve", "points", "sizes", "alpha", "beta", "R^2")
    table = [header]
    for curve in curves:
        sizes = f"{_format_number(curve.sizes.min())}–{_format_number(curve.sizes.max())}"
        fit = curve.fit
        numbers = (
            (f"{fit.alpha:.4f}", f"{fit.beta:.4g}", f"{fit.r2:.4f}") if fit else ("–", "–", "–")
        )
        table.append((curve.label, str(curve.sizes.size), sizes, *numbers))
    widths = [max(len(row[column]) for row in table) for column in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in table
    ]
    return "\n".join(lines)
