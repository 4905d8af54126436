"""Writing a tensor-only Recon (:mod:`deepinv_lab.export.wrappers`) to a file, and running it back.

Formats:

* ``"torch_export"``: ``torch.export`` to a ``.pt2`` archive (``torch.export.save``); complex
  tensors and ``torch.fft`` are captured natively. Capture is tried with free batch, height and
  width first (``torch.export.Dim.AUTO``: dimensions that cannot vary are specialised), then with
  the example's shapes, then with ``torch.export.draft_export``, which specialises
  data-dependent branches (VarNet's checks of the ACS widths) on the example's values and keeps
  each as a runtime assertion of the exported program.
* ``"onnx"``: ``torch.onnx.export(..., dynamo=True)`` of the same captured program. ONNX has no
  complex dtype: k-space is given as its real view, and an operator on complex tensors that the
  exporter cannot lower is reported as a :class:`~deepinv_lab.errors.UserError` naming it.

TorchScript is not used: ``torch.jit.trace`` records the centred FFT's shape-dependent choices
(shift or checkerboard modulation, its sign) as constants, so a traced VarNet silently gives wrong
images at other sizes, where an exported program fails its shape guard.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepinv_lab.errors import UserError
from deepinv_lab.functional.fft import clear_fft_cache
from deepinv_lab.functional.resize import clear_resize_cache

FORMATS = ("torch_export", "onnx")
#: the file suffix of each format
SUFFIXES = {"torch_export": ".pt2", "onnx": ".onnx"}


@dataclass
class ExportResult:
    """What :func:`export_recon` wrote.

    Attributes:
        path: the file.
        format: ``"torch_export"`` or ``"onnx"``.
        capture: how the program was captured: ``"export"`` (``torch.export.export``) or
            ``"draft_export"`` (data-dependent branches specialised on the example, checked at
            run time).
        dynamic: the input dimensions left free, ``{input name: [dimension, ...]}``; empty when
            the program only runs on the example's shapes.
        seconds: the wall-clock time of capture and writing.
    """

    path: Path
    format: str
    capture: str
    dynamic: dict[str, list[int]]
    seconds: float


def export_recon(
    recon: nn.Module,
    path: str | Path,
    format: str,
    example_inputs: Sequence[torch.Tensor],
    dynamic: bool = True,
    input_names: Sequence[str] | None = None,
    dynamic_dims: dict[str, dict[int, str]] | None = None,
) -> ExportResult:
    """Export the tensor-only module ``recon`` (in eval mode) to ``path``.

    Args:
        recon: a module whose ``forward`` takes tensors only, e.g. a
            :class:`~deepinv_lab.export.wrappers.TensorRecon`.
        path: the output file (``.pt2`` for ``torch_export``, ``.onnx`` for ``onnx``).
        format: ``"torch_export"`` or ``"onnx"``.
        example_inputs: one example of every input of ``forward``.
        dynamic: try to leave the dimensions of ``dynamic_dims`` free; without, or when the
            model's code does not allow it, the program runs on the example's shapes only.
        input_names: the names of ``forward``'s inputs (default ``recon.input_names``, else
            ``input_0``, ...).
        dynamic_dims: ``{input name: {dimension: label}}`` (default ``recon.dynamic_dims()``).

    Raises a :class:`~deepinv_lab.errors.UserError` for an unknown format or a model that does not
    export, naming the operator or the code that stops it.
    """
    if format not in FORMATS:
        raise UserError(f"unsupported export format {format!r}; choose from {', '.join(FORMATS)}")
    path = Path(path)
    args = tuple(example_inputs)
    names = list(input_names or getattr(recon, "input_names", ()) or [])
    names = names if len(names) == len(args) else [f"input_{i}" for i in range(len(args))]
    if dynamic_dims is None and hasattr(recon, "dynamic_dims"):
        dynamic_dims = recon.dynamic_dims()
    if format == "onnx" and any(arg.is_complex() for arg in args):
        raise UserError(
            f"ONNX export of {path.name}: ONNX has no complex dtype; give complex inputs as their "
            "real view (torch.view_as_real), e.g. KSpaceRecon(recon, real_view=True)"
        )
    start = time.perf_counter()
    recon.eval()
    program, capture = capture_program(recon, args, names, dynamic_dims if dynamic else None)
    if format == "torch_export":
        program.example_inputs = None  # saved with the program otherwise: as large as a batch
        torch.export.save(program, str(path))
    else:
        _write_onnx(program, args, path, names, list(getattr(recon, "output_names", ["output"])))
    return ExportResult(
        path=path,
        format=format,
        capture=capture,
        dynamic=free_dimensions(program, names),
        seconds=time.perf_counter() - start,
    )


def capture_program(
    recon: nn.Module,
    args: tuple[torch.Tensor, ...],
    names: Sequence[str],
    dynamic_dims: dict[str, dict[int, str]] | None,
) -> tuple[torch.export.ExportedProgram, str]:
    """``(program, how)``: ``recon`` captured by ``torch.export`` (see the module docstring for
    the order of attempts); ``how`` is ``"export"`` or ``"draft_export"``."""
    attempts: list[Any] = [None]
    if dynamic_dims:
        auto = {
            name: {dim: torch.export.Dim.AUTO for dim in dynamic_dims.get(name, {})} or None
            for name in names
        }
        attempts.insert(0, tuple(auto[name] for name in names))
    errors = []
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for dynamic_shapes in attempts:
            try:
                program = torch.export.export(recon, _fresh(args), dynamic_shapes=dynamic_shapes)
                return program, "export"
            except Exception as error:  # noqa: BLE001 - try the next, stricter capture
                errors.append(error)
            finally:
                _clear_traced_caches()
        try:
            return torch.export.draft_export(recon, _fresh(args)), "draft_export"
        except Exception as error:  # noqa: BLE001 - report the first, most general failure
            errors.append(error)
        finally:
            _clear_traced_caches()
    first = errors[0]
    raise UserError(
        f"torch.export cannot capture {_name(recon)}: {type(first).__name__}: {_first_line(first)}"
    ) from first


def _fresh(args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Copies of the example inputs: a capture marks its inputs' dynamic dimensions on the
    tensors themselves, which the next (static) capture must not inherit."""
    return tuple(arg.clone() for arg in args)


def _clear_traced_caches() -> None:
    """Forget the tensors that the library caches per size (the centred FFT's checkerboards, the
    bicubic upsampling matrices): made while tracing they are fake tensors, which would break the
    next capture and every eager call at the same size."""
    clear_fft_cache()
    clear_resize_cache()


def free_dimensions(
    program: torch.export.ExportedProgram, names: Sequence[str]
) -> dict[str, list[int]]:
    """``{input name: [dimension, ...]}``: the input dimensions that ``program`` leaves free."""
    user_inputs = [
        spec.arg.name
        for spec in program.graph_signature.input_specs
        if spec.kind == torch.export.graph_signature.InputKind.USER_INPUT
    ]
    nodes = {node.name: node for node in program.graph.nodes if node.op == "placeholder"}
    free: dict[str, list[int]] = {}
    for name, node_name in zip(names, user_inputs, strict=True):
        value = nodes[node_name].meta.get("val")
        if isinstance(value, torch.Tensor):
            dims = [d for d, size in enumerate(value.shape) if not isinstance(size, int)]
            if dims:
                free[name] = dims
    return free


def _write_onnx(
    program: torch.export.ExportedProgram,
    args: tuple[torch.Tensor, ...],
    path: Path,
    input_names: list[str],
    output_names: list[str],
) -> None:
    program = program.run_decompositions(_real_view_decompositions())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onnx_program = torch.onnx.export(
                program,
                args,
                dynamo=True,
                input_names=input_names,
                output_names=output_names,
                verbose=False,
            )
        onnx_program.save(str(path))
    except Exception as error:  # noqa: BLE001 - name the operators if the registry does
        unsupported = unsupported_onnx_operators(program)
        if unsupported:
            raise UserError(
                f"ONNX export of {path.name}: the ONNX exporter cannot lower "
                f"{', '.join(unsupported)} on complex tensors (ONNX has no complex dtype, and "
                "these operators have no real-view implementation); use --format torch_export"
            ) from error
        operator = re.search(r"OpOverload\(op='([\w.]+)', overload='(\w+)'\)", str(error))
        what = f"operator {operator[1]}.{operator[2]}" if operator else "the model"
        raise UserError(
            f"ONNX export of {path.name}: the ONNX exporter cannot convert {what}: "
            f"{_first_line(error)}"
        ) from error


def _real_view_decompositions() -> dict[Any, Callable[..., Any]]:
    """torch.export's default decompositions, plus ``aten.where.self`` on complex tensors
    computed on their real views (the ONNX exporter has no complex ``where``; VarNet's ACS
    window is one)."""
    table = torch.export.default_decompositions()
    table[torch.ops.aten.where.self] = _where_real_view
    return table


def _where_real_view(condition: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> Any:
    if not (a.is_complex() or b.is_complex()):
        return NotImplemented  # the default lowering
    dtype = torch.promote_types(a.dtype, b.dtype)
    chosen = torch.where(
        condition.unsqueeze(-1), torch.view_as_real(a.to(dtype)), torch.view_as_real(b.to(dtype))
    )
    return torch.view_as_complex(chosen.contiguous())


def unsupported_onnx_operators(program: torch.export.ExportedProgram) -> list[str]:
    """The operators of ``program`` (after the ONNX exporter's decompositions) that take complex
    tensors and that the ONNX exporter's registry has no complex implementation of,
    e.g. ``aten.where.self``; empty when the registry cannot be read (a private API)."""
    try:
        from torch.onnx._internal.exporter import _registration

        registry = _registration.ONNXRegistry.from_torchlib()
        decomposed = program.run_decompositions()
    except Exception:  # noqa: BLE001 - a torch without this API: let the exporter tell
        return []
    missing: list[str] = []
    for node in decomposed.graph.nodes:
        if node.op != "call_function" or not isinstance(node.target, torch._ops.OpOverload):
            continue
        values = [arg.meta.get("val") for arg in node.all_input_nodes]
        if not any(isinstance(v, torch.Tensor) and v.is_complex() for v in values):
            continue
        functions = registry.get_decomps(node.target) or []
        if not any(getattr(function, "is_complex", False) for function in functions):
            name = str(node.target).removesuffix(".default")
            if name not in missing:
                missing.append(name)
    return missing


class OnnxRecon:
    """An ONNX file run by onnxruntime on the CPU, called like the module it was exported from:
    ``OnnxRecon(path)(*tensors) -> tensor``. ``threads``: onnxruntime's intra-op threads
    (default: its own choice)."""

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.input_names = [item.name for item in self.session.get_inputs()]

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        if len(inputs) != len(self.input_names):
            raise UserError(
                f"the ONNX model takes {len(self.input_names)} inputs "
                f"({', '.join(self.input_names)}), got {len(inputs)}"
            )
        feeds = {
            name: tensor.detach().cpu().numpy()
            for name, tensor in zip(self.input_names, inputs, strict=True)
        }
        return torch.from_numpy(self.session.run(None, feeds)[0])


def load_exported(path: str | Path) -> Callable[..., torch.Tensor]:
    """A callable running the exported file ``path``: for ``.pt2`` the module of
    ``torch.export.load``, for ``.onnx`` an :class:`OnnxRecon` (onnxruntime, torch tensors in
    and out)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such exported file")
    if path.suffix == ".pt2":
        return torch.export.load(str(path)).module()
    if path.suffix == ".onnx":
        return OnnxRecon(path)
    raise UserError(f"{path}: not an exported Recon (expected a .pt2 or .onnx file)")


def relative_difference(output: torch.Tensor, reference: torch.Tensor) -> float:
    """``max |output - reference| / max |reference|``."""
    scale = reference.abs().max().clamp_min(torch.finfo(torch.float32).tiny)
    return float((output.to(reference.dtype) - reference).abs().max() / scale)


def _name(module: nn.Module) -> str:
    inner = getattr(module, "recon", None)
    return type(inner if isinstance(inner, nn.Module) else module).__name__


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:300]
