"""SSIM / PSNR / NMSE against skimage and fastMRI's evaluate.py and losses.py."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from fastmri import evaluate as fastmri_evaluate
from fastmri import losses as fastmri_losses
from skimage.metrics import structural_similarity
from torchmetrics import MetricCollection

from deepinv_lab.training.losses import L1Loss, MSELoss, SSIMLoss, make_loss
from deepinv_lab.training.metrics import (
    NMSEMetric,
    PSNRMetric,
    SSIMMetric,
    VolumeMetrics,
    nmse,
    psnr,
    ssim,
    ssim_map,
)


def smooth_pair(shape, seed=0, noise=0.05):
    """A smooth nonnegative target ``(..., H, W)`` float64 and a noisy prediction of it."""
    rng = np.random.default_rng(seed)
    sigma = (0,) * (len(shape) - 2) + (2.0, 2.0)
    target = np.abs(ndi.gaussian_filter(rng.standard_normal(shape), sigma)) * 10
    pred = np.abs(target + noise * target.max() * rng.standard_normal(shape))
    return pred, target


@pytest.mark.parametrize("size", [(7, 7), (32, 32), (33, 47), (64, 41), (96, 96)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ssim_matches_skimage(size, dtype):
    pred, target = smooth_pair((3, *size), seed=sum(size))
    data_range = target.reshape(3, -1).max(axis=1)
    expected = [
        structural_similarity(target[i], pred[i], win_size=7, data_range=data_range[i])
        for i in range(3)
    ]
    values = ssim(
        torch.from_numpy(pred).to(dtype)[:, None],
        torch.from_numpy(target).to(dtype)[:, None],
        torch.from_numpy(data_range),
    )
    assert values.shape == (3,) and values.dtype == dtype
    atol = 1e-12 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(values.double().numpy(), expected, rtol=0, atol=atol)


def test_ssim_is_one_for_identical_images_and_accepts_float_range():
    _, target = smooth_pair((2, 1, 20, 20))
    x = torch.from_numpy(target)
    torch.testing.assert_close(ssim(x, x, 1.0), torch.ones(2, dtype=x.dtype))
    assert ssim_map(x, x, 1.0).shape == (2, 1, 14, 14)


def test_metrics_match_fastmri_evaluate_on_volumes():
    pred, target = smooth_pair((5, 40, 36), seed=3)  # one volume: 5 slices
    maxval = target.max()  # fastMRI: the volume's maximum
    x, y = torch.from_numpy(pred), torch.from_numpy(target)

    # Per slice, with the volume maximum as data range, averaged: fastMRI's evaluate.ssim.
    per_slice = ssim(x[:, None], y[:, None], maxval).mean()
    whole_volume = ssim(x[None], y[None], maxval)  # the volume as one sample with 5 channels
    expected = fastmri_evaluate.ssim(target, pred, maxval=maxval)
    np.testing.assert_allclose(per_slice.item(), expected.item(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(whole_volume.item(), expected.item(), rtol=0, atol=1e-12)

    # fastMRI's psnr and nmse are volume-level: one MSE over all slices.
    np.testing.assert_allclose(
        psnr(x[None], y[None], maxval).item(), fastmri_evaluate.psnr(target, pred), rtol=1e-12
    )
    np.testing.assert_allclose(
        nmse(x[None], y[None]).item(), fastmri_evaluate.nmse(target, pred), rtol=1e-12
    )


def test_psnr_and_nmse_closed_form():
    target = torch.full((2, 1, 4, 4), 2.0)
    pred = target + torch.tensor([0.1, 0.2]).reshape(2, 1, 1, 1)
    torch.testing.assert_close(
        psnr(pred, target, torch.tensor([1.0, 2.0])),
        10 * torch.log10(torch.tensor([1 / 0.01, 4 / 0.04])),
    )
    torch.testing.assert_close(nmse(pred, target), torch.tensor([0.01, 0.04]) / 4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ssim_loss_matches_fastmri(dtype):
    pred, target = smooth_pair((4, 1, 45, 38), seed=5)
    x = torch.from_numpy(pred).to(dtype).requires_grad_()
    y = torch.from_numpy(target).to(dtype)
    data_range = y.amax(dim=(1, 2, 3))
    reference = fastmri_losses.SSIMLoss().to(dtype)
    # fastMRI's window is 1/49 rounded to float32 and then cast; ours is exact in float64.
    atol = 0 if dtype == torch.float32 else 1e-6
    ours = SSIMLoss()(x, y, data_range)
    expected = reference(x, y, data_range)
    torch.testing.assert_close(ours, expected, rtol=0, atol=atol)
    torch.testing.assert_close(
        SSIMLoss()(x, y, data_range, reduced=False),
        reference(x, y, data_range, reduced=False),
        rtol=0,
        atol=atol,
    )
    (grad,) = torch.autograd.grad(ours, x)
    (expected_grad,) = torch.autograd.grad(expected, x)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-9)
    # The loss is 1 - the mean of the per-sample metric when all samples share a shape.
    torch.testing.assert_close(ours, 1 - ssim(x, y, data_range).mean())


def test_make_loss():
    assert isinstance(make_loss("ssim"), SSIMLoss)
    assert isinstance(make_loss("l1"), L1Loss) and isinstance(make_loss("mse"), MSELoss)
    custom = SSIMLoss(win_size=5)
    assert make_loss(custom) is custom
    x, y = torch.zeros(1, 1, 8, 8), torch.ones(1, 1, 8, 8)
    assert make_loss("mse")(x, y, torch.ones(1)).item() == 1.0
    with pytest.raises(ValueError, match="'l1', 'mse', 'ssim'"):
        make_loss("l2")


def _batches(seed=0):
    rng = np.random.default_rng(seed)
    batches = []
    for batch_size in (3, 1, 4):
        pred, target = smooth_pair((batch_size, 1, 24, 20), seed=int(rng.integers(1000)))
        target = torch.from_numpy(target).float()
        batches.append((torch.from_numpy(pred).float(), target, target.amax(dim=(1, 2, 3))))
    return batches


FUNCTIONS = {"ssim": ssim, "psnr": psnr, "nmse": lambda x, y, data_range: nmse(x, y)}


def _collection():
    return MetricCollection({"ssim": SSIMMetric(), "psnr": PSNRMetric(), "nmse": NMSEMetric()})


def test_metrics_average_per_sample_values_over_updates():
    batches = _batches()
    metrics = _collection()
    for pred, target, data_range in batches:
        metrics.update(pred, target, data_range)
    results = metrics.compute()
    for name, function in FUNCTIONS.items():
        per_sample = torch.cat([function(*batch) for batch in batches])
        assert per_sample.numel() == 8
        torch.testing.assert_close(results[name], per_sample.mean(), rtol=1e-6, atol=1e-7)
    for metric in metrics.values():  # the same through each metric alone, data_range by keyword
        metric.reset()
        for pred, target, data_range in batches:
            metric.update(pred, target, data_range=data_range)
    torch.testing.assert_close(metrics.compute(), results)


def test_metric_states_reduce_by_sum_like_ddp():
    """Two "processes" that saw different batches merge (with their dist_reduce_fx) into the mean
    over all samples, as one process seeing everything."""
    batches = _batches(seed=1)
    single, rank0, rank1 = _collection(), _collection(), _collection()
    for index, batch in enumerate(batches):
        single.update(*batch)
        (rank0 if index == 0 else rank1).update(*batch)
    for name in ("ssim", "psnr", "nmse"):
        for state, reduction in rank0[name]._reductions.items():
            assert getattr(reduction, "__name__", "") == "dim_zero_sum", (name, state)
        rank0[name].merge_state(rank1[name])
    torch.testing.assert_close(rank0.compute(), single.compute())


def test_bad_inputs():
    x = torch.rand(2, 1, 16, 16)
    with pytest.raises(ValueError, match=r"\(2, 1, 16, 16\) and \(2, 1, 16, 15\)"):
        ssim(x, x[..., :15], 1.0)
    with pytest.raises(ValueError, match="data_range"):
        psnr(x, x, torch.ones(3))
    with pytest.raises(ValueError, match="window"):
        ssim(x[..., :6, :6], x[..., :6, :6], 1.0)
    with pytest.raises(TypeError, match="complex"):
        nmse(x.to(torch.complex64), x.to(torch.complex64))


def _ddp_worker(rank: int, port: int, results) -> None:
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        metrics = _collection()
        for index, batch in enumerate(_batches(seed=2)):
            if index % 2 == rank:
                metrics.update(*batch)
        computed = metrics.compute()
        if rank == 0:
            results.put({name: value.item() for name, value in computed.items()})
    finally:
        dist.destroy_process_group()


def test_metrics_under_real_ddp():
    """Two gloo processes give the single-process mean."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    results = mp.get_context("spawn").SimpleQueue()
    mp.spawn(_ddp_worker, args=(port, results), nprocs=2)
    single = _collection()
    for batch in _batches(seed=2):
        single.update(*batch)
    expected = single.compute()
    for name, value in results.get().items():
        assert value == pytest.approx(expected[name].item(), rel=1e-6, abs=1e-6)


def test_ssim_is_computed_in_full_precision_under_autocast():
    torch.manual_seed(0)
    target = torch.rand(2, 1, 40, 36)
    pred = target + 0.05 * torch.rand(2, 1, 40, 36)
    reference = ssim(pred, target, 1.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = ssim(pred, target, 1.0)
    assert under_autocast.dtype == torch.float32
    torch.testing.assert_close(under_autocast, reference)


def _volumes(seed: int = 0):
    """Three volumes of 4, 3 and 5 slices, as (pred, target) numpy pairs."""
    return [smooth_pair((n, 24, 20), seed=seed + n) for n in (4, 3, 5)]


def test_volume_metrics_are_fastmri_per_volume_metrics_averaged_over_volumes():
    volumes = _volumes()
    metric = VolumeMetrics()
    records = []  # (volume, slice) in a shuffled order, batches of 3 mixing volumes
    for v, (pred, _) in enumerate(volumes):
        records += [(v, s) for s in range(len(pred))]
    order = np.random.default_rng(0).permutation(len(records))
    for start in range(0, len(order), 3):
        chosen = [records[i] for i in order[start : start + 3]]
        pred = torch.stack([torch.from_numpy(volumes[v][0][s]) for v, s in chosen])[:, None]
        target = torch.stack([torch.from_numpy(volumes[v][1][s]) for v, s in chosen])[:, None]
        maxval = torch.tensor([volumes[v][1].max() for v, _ in chosen])
        metric.update(pred, target, maxval, torch.tensor([v for v, _ in chosen]),
                      torch.tensor([s for _, s in chosen]))  # fmt: skip
    result = metric.compute()
    expected = {"ssim": [], "psnr": [], "nmse": []}
    for pred, target in volumes:
        maxval = target.max()
        expected["ssim"].append(fastmri_evaluate.ssim(target, pred, maxval=maxval))
        mse = ((target - pred) ** 2).mean()
        expected["psnr"].append(10 * np.log10(maxval**2 / mse))  # fastMRI's MriModule
        expected["nmse"].append(fastmri_evaluate.nmse(target, pred))
    for name, values in expected.items():
        np.testing.assert_allclose(result[name].item(), np.mean(values), rtol=1e-10)
    # with one volume whose max is the target's, PSNR is fastMRI's evaluate.psnr
    single = VolumeMetrics()
    pred, target = volumes[0]
    single.update(torch.from_numpy(pred)[:, None], torch.from_numpy(target)[:, None],
                  float(target.max()), torch.zeros(4), torch.arange(4))  # fmt: skip
    np.testing.assert_allclose(
        single.compute()["psnr"].item(), fastmri_evaluate.psnr(target, pred), rtol=1e-10
    )


def test_volume_metrics_split_over_processes_equal_one_process_and_count_repeats_once():
    volumes = _volumes(seed=5)
    items = [(v, s) for v, (pred, _) in enumerate(volumes) for s in range(len(pred))]

    def update(metric, chosen):
        for v, s in chosen:
            pred, target = (torch.from_numpy(a[s])[None, None] for a in volumes[v])
            metric.update(pred, target, float(volumes[v][1].max()), torch.tensor([v]),
                          torch.tensor([s]))  # fmt: skip

    whole = VolumeMetrics()
    update(whole, items)
    # two "processes" as a DistributedSampler shards them: padded by repeating the first item
    padded = items + items[:1]
    rank0, rank1 = VolumeMetrics(), VolumeMetrics()
    update(rank0, padded[0::2])
    update(rank1, padded[1::2])
    rank0.merge_state(rank1)  # what the DDP gather does with the "cat" states
    for name, value in whole.compute().items():
        torch.testing.assert_close(rank0.compute()[name], value, rtol=1e-12, atol=0)
    # an average of per-process averages would differ
    alone = VolumeMetrics()
    update(alone, padded[0::2])
    assert not torch.isclose(alone.compute()["psnr"], whole.compute()["psnr"])


def test_volume_metrics_without_ids_treat_samples_as_volumes():
    pred, target = (torch.from_numpy(a)[:, None] for a in smooth_pair((4, 20, 20), seed=1))
    metric = VolumeMetrics()
    metric.update(pred, target, 1.0)
    metric.update(pred, target, 1.0)
    assert metric.per_volume().__len__() == 8
    torch.testing.assert_close(
        metric.compute()["psnr"], psnr(pred, target, 1.0).mean().double(), rtol=1e-6, atol=0
    )


def _ssim3d_by_windows(pred: np.ndarray, target: np.ndarray, data_range: float, win: int = 7):
    """3D SSIM written out: the statistics of every win^3 cube inside the volume, averaged."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    depth, height, width = target.shape
    for d in range(depth - win + 1):
        for h in range(height - win + 1):
            for w in range(width - win + 1):
                x = pred[d : d + win, h : h + win, w : w + win].ravel()
                y = target[d : d + win, h : h + win, w : w + win].ravel()
                vx, vy = x.var(ddof=1), y.var(ddof=1)
                vxy = np.cov(x, y, ddof=1)[0, 1]
                ux, uy = x.mean(), y.mean()
                numerator = (2 * ux * uy + c1) * (2 * vxy + c2)
                values.append(numerator / ((ux**2 + uy**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_ssim_of_volumes_is_the_mean_over_all_cubic_windows():
    rng = np.random.default_rng(3)
    target = np.abs(ndi.gaussian_filter(rng.standard_normal((2, 9, 10, 11)), 1.5)) * 10
    pred = np.abs(target + 0.1 * target.max() * rng.standard_normal(target.shape))
    data_range = target.reshape(2, -1).max(axis=1)
    expected = [_ssim3d_by_windows(pred[i], target[i], data_range[i]) for i in range(2)]
    # skimage's structural_similarity on a 3D array uses the same cubic window
    skimage_values = [
        structural_similarity(target[i], pred[i], win_size=7, data_range=data_range[i])
        for i in range(2)
    ]
    np.testing.assert_allclose(skimage_values, expected, rtol=1e-10)
    p, t = torch.from_numpy(pred)[:, None], torch.from_numpy(target)[:, None]
    got = ssim(p, t, torch.from_numpy(data_range))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)
    assert ssim_map(p, t, 1.0).shape == (2, 1, 3, 4, 5)
    torch.testing.assert_close(ssim(t, t, 1.0), torch.ones(2, dtype=t.dtype))
    # an isotropic window: the axes' order does not matter
    permuted = ssim(
        p.permute(0, 1, 4, 2, 3), t.permute(0, 1, 4, 2, 3), torch.from_numpy(data_range)
    )
    torch.testing.assert_close(permuted, got)
    # SSIMMetric and VolumeMetrics take volumes too
    metric = SSIMMetric()
    metric.update(p.float(), t.float(), torch.from_numpy(data_range).float())
    torch.testing.assert_close(metric.compute(), got.float().mean(), rtol=1e-5, atol=0)
    volumes = VolumeMetrics()
    volumes.update(p, t, torch.from_numpy(data_range))
    per_volume = sorted(v["ssim"] for v in volumes.per_volume().values())
    assert per_volume == pytest.approx(sorted(expected), rel=1e-10)


def test_volume_of_identical_slices_has_the_2d_statistics_of_its_slice():
    """Constant along depth, each cube has its 7x7 square's means and (biased) variances: the
    3D SSIM equals the 2D SSIM once the sample-covariance factors N / (N - 1) agree."""
    pred, target = smooth_pair((1, 1, 20, 20), seed=5)
    p2, t2 = torch.from_numpy(pred), torch.from_numpy(target)
    p3, t3 = (a.unsqueeze(2).expand(-1, -1, 7, -1, -1) for a in (p2, t2))
    # k2 = 0: c2 = 0, so the covariance factor cancels in (2 vxy) / (vx + vy)
    torch.testing.assert_close(ssim(p3, t3, 1.0, k2=0.0), ssim(p2, t2, 1.0, k2=0.0))
    assert not torch.allclose(ssim(p3, t3, 1.0), ssim(p2, t2, 1.0), rtol=1e-9, atol=0)


def test_psnr_and_nmse_of_volumes_are_over_all_voxels():
    pred, target = smooth_pair((2, 1, 5, 12, 12), seed=4)
    p, t = torch.from_numpy(pred), torch.from_numpy(target)
    flat_p, flat_t = p.reshape(2, 5, 12, 12), t.reshape(2, 5, 12, 12)
    torch.testing.assert_close(psnr(p, t, 2.0), psnr(flat_p, flat_t, 2.0))
    torch.testing.assert_close(nmse(p, t), nmse(flat_p, flat_t))
    with pytest.raises(ValueError, match=r"7x7x7 window"):
        ssim(p, t, 1.0)
