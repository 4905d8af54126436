"""The architecture rules that the folder layout promises, checked on the source: no module
imports another module's private names, and the generic layers import no MRI physics."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "deepinv_lab"
SOURCES = sorted([*PACKAGE.rglob("*.py"), *(ROOT / "tests").glob("*.py")])


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, source: str | None = None) -> list[tuple[int, str, str]]:
    """``(line, module, name)`` of every ``from module import name`` of the project in the
    file ``path`` (or in ``source``, as if it were that file), relative imports resolved."""
    tree = ast.parse(path.read_text() if source is None else source)
    here = _module_name(path).split(".")
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + (path.name == "__init__.py")]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            if module.split(".")[0] in ("deepinv_lab", "tests"):
                found += [(node.lineno, module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, "") for alias in node.names]
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_another_modules_private_names(path):
    own = _module_name(path)
    bad = [
        f"line {line}: from {module} import {name}"
        for line, module, name in _imports(path)
        if module != own and (_private(name) or any(map(_private, module.split("."))))
    ]
    assert not bad, bad


def test_the_generic_layers_import_no_mri_physics():
    """Pruning and the training objectives work on any System through its own methods
    (``with_mask``, ``mask``), never by switching on MRI types; the generic algebra's examples
    use no MRI class."""
    generic = [*(PACKAGE / "pruning").rglob("*.py"), *(PACKAGE / "training").rglob("*.py")]
    generic.append(PACKAGE / "systems" / "base.py")
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in generic
        for line, module, _ in _imports(path)
        if module.startswith(("deepinv_lab.systems.mri", "deepinv_lab.systems.nufft"))
    ]
    assert not offenders, offenders


def test_the_checker_sees_private_and_mri_imports():
    """The checks above can fail: they find what they look for in a planted module."""
    planted = PACKAGE / "pruning" / "planted.py"
    source = "from deepinv_lab.systems.mri import KSpaceMask\nfrom ..data.images import _helper\n"
    imports = _imports(planted, source)
    assert imports == [
        (1, "deepinv_lab.systems.mri", "KSpaceMask"),
        (2, "deepinv_lab.data.images", "_helper"),
    ]
    assert _private("_helper") and not _private("__version__")
