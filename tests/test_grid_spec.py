"""Grid files: expansion into numbered, named points; zip, sample, fixed, labels; bad grids."""

import itertools
import json

import pytest

from deepinv_lab.grid.slurm import slurm_script
from deepinv_lab.grid.spec import GridError, format_value, load_grid, number_ranges, parse_grid

SIZE = "data.init_args.train_size"
LR = "model.init_args.optimizer.init_args.lr"
CHANS = "model.init_args.recon.init_args.model.init_args.chans"


def test_cartesian_product_in_order_with_readable_names():
    spec = parse_grid({SIZE: [50, 100, 500], CHANS: [16, 32, 64]})
    points = spec.points()
    assert spec.size == len(points) == 9
    expected = list(itertools.product([50, 100, 500], [16, 32, 64]))  # last key fastest
    assert [(p.overrides[SIZE], p.overrides[CHANS]) for p in points] == expected
    assert [p.number for p in points] == list(range(1, 10))
    assert points[0].name == "E001_t50_c16"
    assert points[-1].name == "E009_t500_c64"
    assert len({p.name for p in points}) == 9


def test_zip_group_is_one_axis_and_fixed_keys_reach_every_point():
    spec = parse_grid(
        {
            SIZE: [10, 20],
            "zip": [{LR: [1e-3, 3e-4], "trainer.max_epochs": [5, 9]}],
            "fixed": {"trainer.max_steps": 7},
        }
    )  # fmt: skip
    points = spec.points()
    assert len(points) == 4
    pairs = {(p.overrides[LR], p.overrides["trainer.max_epochs"]) for p in points}
    assert pairs == {(1e-3, 5), (3e-4, 9)}  # zipped, never crossed
    assert all(p.overrides["trainer.max_steps"] == 7 for p in points)
    assert points[1].name == "E002_t10_l0.0003_m9"  # fixed keys are not in names


def test_sample_keeps_numbers_of_the_full_product_and_is_seeded():
    grid = {"trainer.max_epochs": list(range(1, 21)), "sample": {"n": 5, "seed": 3}}
    first, again = parse_grid(grid).points(), parse_grid(grid).points()
    assert [p.name for p in first] == [p.name for p in again]
    assert len(first) == 5
    for point in first:  # number and value agree with the full product
        assert point.overrides["trainer.max_epochs"] == point.number
    other = parse_grid({**grid, "sample": {"n": 5, "seed": 4}}).points()
    assert [p.number for p in other] != [p.number for p in first]


def test_point_by_number_and_unknown_number():
    spec = parse_grid({SIZE: [1, 2, 3]})
    assert spec.point(2).overrides[SIZE] == 2
    with pytest.raises(GridError, match=r"no point 7; its points are 1-3"):
        spec.point(7)


def test_labels_are_unique_and_can_be_given():
    spec = parse_grid({"data.init_args.train_size": [1], "trainer.max_time": [2], "a.test": [3]})
    labels = set(spec.labels.values())
    assert len(labels) == 3
    named = parse_grid({SIZE: [1], "labels": {SIZE: "N"}})
    assert named.points()[0].name == "E001_N1"
    classes = parse_grid({"model.init_args.recon.init_args.model.class_path": ["a.b.Unet"]})
    assert classes.points()[0].name == "E001_mUnet"


@pytest.mark.parametrize(
    "value, text",
    [(0.001, "0.001"), (1e-5, "1e-05"), (True, "true"), (None, "none"), ([4, 8], "4-8"),
     ("deepinv_lab.models.Unet", "Unet"), ("a b/c", "a-b-c"), ({"class_path": "x.Y"}, "Y")],
)  # fmt: skip
def test_format_value(value, text):
    assert format_value(value) == text


@pytest.mark.parametrize(
    "grid, message",
    [
        ({SIZE: []}, f"grid key '{SIZE}': the list of values is empty"),
        ({SIZE: 50}, f"grid key '{SIZE}': expected a list of values"),
        ({SIZE: [1, 1]}, "value 1 is listed twice"),
        ({"data..x": [1]}, "is not a dotted config key"),
        ({}, "no key to vary"),
        ([1, 2], "a grid is a JSON object"),
        ({"zip": [{"a.b": [1, 2], "a.c": [1]}]}, "must have one length"),
        ({"a.b": [1], "zip": [{"a.b": [2]}]}, "'a.b' appears more than once"),
        ({"a.b": [1], "fixed": {"a.b": 2}}, 'both varied and in "fixed"'),
        ({"a.b": [1, 2], "sample": {"n": 3}}, "n must be an integer from 1 to 2"),
        ({"a.b": [1], "labels": {"a.c": "x"}}, "'a.c' is not a varied key"),
    ],
)
def test_bad_grids_name_the_key(grid, message):
    with pytest.raises(GridError, match=None) as error:
        parse_grid(grid)
    assert message in str(error.value)


def test_load_grid_names_the_file(tmp_path):
    with pytest.raises(GridError, match="grid file not found"):
        load_grid(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(GridError, match="bad.json is not valid JSON"):
        load_grid(bad)
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({SIZE: []}))
    with pytest.raises(GridError, match=r"empty.json: grid key .* is empty"):
        load_grid(empty)


def test_number_ranges():
    assert number_ranges([1, 2, 3, 7, 9, 10]) == "1-3,7,9-10"
    assert number_ranges([4]) == "4"


def test_slurm_script_lists_the_array_and_lets_options_replace_defaults(tmp_path):
    script = slurm_script(
        "grid", [1, 2, 3, 5], ["python", "-m", "deepinv_lab.cli", "grid"], tmp_path, tmp_path,
        ["--gres=gpu:a100:1", "--time=24:00:00"],
    )  # fmt: skip
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert "#SBATCH --array=1-3,5" in lines
    assert "#SBATCH --gres=gpu:a100:1" in lines and "#SBATCH --gres=gpu:1" not in lines
    assert "#SBATCH --time=24:00:00" in lines and "#SBATCH --requeue" in lines
    assert lines[-1].endswith('--index "$SLURM_ARRAY_TASK_ID"')
