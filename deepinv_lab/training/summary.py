"""The table of submodules and parameters printed when ``fit`` starts.

Lightning's ``ModelSummary`` adds a FLOPs column counted on the module's
``example_input_array``; a Recon's input is ``(y, system)``, which no module can give before the
data exists, so the column would be all zeros. This summary leaves it out.
"""

from __future__ import annotations

from pytorch_lightning.callbacks import ModelSummary
from pytorch_lightning.utilities.model_summary.model_summary import get_human_readable_count
from pytorch_lightning.utilities.rank_zero import rank_zero_info

#: columns of Lightning's summary that are left out
DROPPED_COLUMNS = ("FLOPs",)


class ParameterSummary(ModelSummary):
    """Lightning's model summary (name, type, parameters, train/eval mode of each submodule to
    ``max_depth``, and the totals), without the FLOPs column."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int = 0,
        **summarize_kwargs,
    ) -> None:
        columns = [(name, values) for name, values in summary_data if name not in DROPPED_COLUMNS]
        rank_zero_info("\n" + format_table(columns))
        frozen = total_parameters - trainable_parameters
        totals = [
            (get_human_readable_count(trainable_parameters), "Trainable params"),
            (get_human_readable_count(frozen), "Non-trainable params"),
            (get_human_readable_count(total_parameters), "Total params"),
            (f"{model_size:,.3f}", "Total estimated model params size (MB)"),
            (str(total_training_modes.get("train", 0)), "Modules in train mode"),
            (str(total_training_modes.get("eval", 0)), "Modules in eval mode"),
        ]
        rank_zero_info("\n".join(f"{value:<10}{label}" for value, label in totals))


def format_table(columns: list[tuple[str, list[str]]]) -> str:
    """Columns ``(header, values)`` as a text table with a rule under the header."""
    widths = [max([len(header), *(len(str(v)) for v in values)]) for header, values in columns]
    rows = len(columns[0][1]) if columns else 0
    lines = [" | ".join(f"{header:<{w}}" for (header, _), w in zip(columns, widths, strict=True))]
    lines.append("-" * len(lines[0]))
    for row in range(rows):
        cells = [f"{str(values[row]):<{w}}" for (_, values), w in zip(columns, widths, strict=True)]
        lines.append(" | ".join(cells))
    lines.append("-" * len(lines[0]))
    return "\n".join(lines)
