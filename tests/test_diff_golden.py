"""Golden files: every diff case of threats.md, from real `git diff` runs where git can make it.

Regenerate with `make golden` (scripts/regen_golden_diffs.py) and review the JSON diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from depthgate.core.diff import diff_to_dict, parse_diff
from depthgate.core.errors import DiffError

CASES = sorted(Path(__file__).parent.joinpath("data", "diffs").glob("*.diff"))


def test_cases_exist() -> None:
    names = {c.stem for c in CASES}
    required = {
        "crlf_content",
        "mixed_line_endings",
        "no_newline_old",
        "no_newline_new",
        "no_newline_both",
        "quoted_octal_path",
        "spaces_in_path",
        "tab_in_path",
        "nfc_vs_nfd",
        "binary",
        "renamed_pure",
        "renamed_with_edits",
        "copied",
        "mode_only",
        "submodule_bump",
        "symlink_changed",
        "empty_file_added",
        "empty_file_deleted",
        "whitespace_only",
        "long_line_200k",
        "invalid_utf8",
        "bidi_zero_width",
        "crafted_malformed_hunk_header",
        "crafted_hunk_counts_wrong",
        "crafted_truncated",
        "crafted_nul_bytes",
        "crafted_not_a_diff",
    }
    assert required <= names, required - names


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden(case: Path) -> None:
    expected = json.loads(case.with_suffix(".json").read_text(encoding="utf-8"))
    data = case.read_bytes()
    if "error" in expected:
        with pytest.raises(DiffError) as info:
            parse_diff(data)
        assert str(info.value) == expected["error"]
    else:
        assert diff_to_dict(parse_diff(data)) == expected
