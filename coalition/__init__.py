"""Coalition: a governed autonomous-enterprise orchestrator."""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

# In a source checkout (e.g. `python -m coalition` from the repository root) the sibling folders bus/,
# ledger/, governance/, agents/ and scenarios/ are this package's sub-packages; installed, they already are.
_here = Path(__file__).resolve().parent
if not (_here / "bus").is_dir() and (_here.parent / "bus" / "__init__.py").is_file():
    __path__.append(str(_here.parent))
