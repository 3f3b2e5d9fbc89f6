"""Puts ``hostile`` (the shared hostile-input builders) on the import path of the fuzz suite."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
