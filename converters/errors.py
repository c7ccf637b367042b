"""The one exception type the converters raise for bad input.

CLIs catch it and print its message as a single ``error: ...`` line, so every
message names the offending file or value and reads on its own.
"""

from __future__ import annotations


class ConversionError(ValueError):
    """Bad input: a missing, unreadable or inconsistent file, or a bad option value."""
