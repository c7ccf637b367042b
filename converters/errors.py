"""The one exception type the converters raise for bad input.

CLIs catch it and print its message as a single ``error: ...`` line, so every
message names the offending file or value and reads on its own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class ConversionError(ValueError):
    """Bad input: a missing, unreadable or inconsistent file, or a bad option value."""


def exit_code(action: Callable[[], object]) -> int:
    """Runs a CLI's work: 0 when it succeeds, a single ``error: ...`` line on stderr and 2 on bad input."""
    try:
        action()
    except ConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
