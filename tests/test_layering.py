"""The import rules of CONVENTIONS.md, checked by parsing every module's imports."""

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parent.parent / "tf_contrastive"
ALLOWED = {
    "core": {"core"},
    "data": {"data", "core"},
    "models": {"models", "core"},
    "memory": {"memory", "core"},
    "losses": {"losses", "core"},
    "methods": {"methods", "models", "memory", "losses", "core"},
    "eval": {"eval", "models", "data", "core"},
}


def _internal_imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "tf_contrastive" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_it_may(layer):
    files = sorted((PKG / layer).glob("*.py"))
    assert files, f"no modules in {layer}/"
    for f in files:
        bad = _internal_imports(f) - ALLOWED[layer]
        assert not bad, f"{f.relative_to(PKG.parent)} imports {sorted(bad)}"


def test_flags_are_read_only_by_binaries():
    for f in PKG.rglob("*.py"):
        if f.name in ("train.py", "evaluate.py", "export.py") and f.parent == PKG:
            continue  # the binaries
        text = f.read_text()
        assert "FLAGS" not in text and "flags.DEFINE" not in text, f
