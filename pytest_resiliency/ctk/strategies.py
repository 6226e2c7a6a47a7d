"""The runtime strategies a Chaos Toolkit experiment may name (chaoslib's words).

Their own module so the command-line options can list them at pytest start-up without
loading the experiment parser.
"""

from __future__ import annotations

HYPOTHESIS_STRATEGIES = ("default", "before-method-only", "after-method-only", "during-method-only", "continuously")
ROLLBACK_STRATEGIES = ("default", "always", "never", "deviated")
