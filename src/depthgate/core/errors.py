"""The exceptions depthgate raises, and what each one means for the user.

Every error carries a message that says what was wrong and what to do, and maps to one exit code
(design §3). Entry points catch ``DepthgateError`` and nothing broader: anything else is a bug and
is allowed to surface as one.

    DepthgateError                 exit code 2 unless a subclass says otherwise
    ├── UsageError                 a flag or argument the user gave is wrong (2)
    ├── InputError                 an input file cannot be used: unreadable, not a diff (2)
    │   └── DiffError              the text is not a unified diff at all (2)
    └── ConfigError                gateway-routes.yaml is missing, unreadable or invalid (2)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_GATEWAY = 3
EXIT_GITHUB = 4


class DepthgateError(Exception):
    """Base class: a failure with a message meant for the person running depthgate."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(DepthgateError):
    """The command line itself is wrong (missing flag, flags that exclude each other)."""


class InputError(DepthgateError):
    """An input file could not be read or used."""


class DiffError(InputError):
    """The input is not a unified diff (no file headers and no hunks were found)."""


class ConfigError(DepthgateError):
    """gateway-routes.yaml could not be found, read, parsed or validated.

    The message names the file, the key path and what was expected.
    """
