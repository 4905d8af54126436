"""Grids of runs from one config: expansion (:mod:`.spec`), resolved configs (:mod:`.resolve`),
execution (:mod:`.runner`, :mod:`.slurm`), run directories (:mod:`.rundir`), the results table
(:mod:`.collect`) and scaling-law fits (:mod:`.scaling`). The commands are in :mod:`.commands`."""

from deepinv_lab.grid.spec import GridError, GridSpec, Point, load_grid, parse_grid

__all__ = ["GridError", "GridSpec", "Point", "load_grid", "parse_grid"]
