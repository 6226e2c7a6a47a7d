"""``python -m resiliency_tests.demo ...`` or ``python resiliency_tests/demo/__main__.py ...``."""

import sys
from pathlib import Path

if not __package__:  # run by path: make the repository importable (no install needed)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from resiliency_tests.demo.cli import main

sys.exit(main())
