"""The design card's import rules: training -> vision, serve -> vision, batch -> serve and
vision, never the other way."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "karung"

FORBIDDEN = {
    "vision": ("karung.serve", "karung.training", "karung.cli", "karung.batch"),
    "serve": ("karung.training", "karung.batch"),
    "training": ("karung.serve", "karung.batch"),
    # The backfill reuses the service's fetcher, policy, bank and queue, never the recipe.
    "batch": ("karung.training", "karung.cli"),
}


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name imported anywhere in ``path`` (including inside functions)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("area", sorted(FORBIDDEN))
def test_import_direction(area: str) -> None:
    files = sorted((PACKAGE / area).rglob("*.py"))
    assert files, f"karung/{area} has no modules"
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in imported_modules(path)
        if name.startswith(FORBIDDEN[area])
    ]
    assert not offenders, "\n".join(offenders)


def test_checker_catches_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from karung.training import loop\n")
    assert "karung.training" in imported_modules(bad)


def test_score_does_not_import_training(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from karung.cli.main import main\n"
        "try:\n"
        "    main(['score', sys.argv[1], '--model', sys.argv[1]])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('karung.training', 'karung.serve')\n"
        "bad = sorted(m for m in sys.modules if m.startswith(heavy))\n"
        "print(','.join(bad))\n"
    )
    missing = tmp_path / "none.jpg"
    result = subprocess.run(
        [sys.executable, "-c", code, str(missing)], capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "", result.stdout


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\nfrom karung.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "False"
