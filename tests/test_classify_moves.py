"""A function moved to another file and annotated on the way is still the same definition to
its callers: the definition keys ignore type annotations (Python), so a caller elsewhere is not
sent to the deep tier as if the function had been removed (issue #12: this survived the
``key = line.text`` mutation)."""

from __future__ import annotations

import pytest

from depthgate.core.classify import Classifier
from depthgate.core.diff import parse_diff
from depthgate.core.routes import LoadedConfig


def hunk(path: str, old: list[str], new: list[str]) -> str:
    body = [" ctx_before = 1", *(f"-{x}" for x in old), *(f"+{x}" for x in new), " ctx_after = 2"]
    header = f"@@ -10,{len(old) + 2} +10,{len(new) + 2} @@"
    return f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n{header}\n" + (
        "\n".join(body) + "\n"
    )


def caller_rules(classifier: Classifier, new_def: str) -> set[str]:
    diff = parse_diff(
        hunk("lib/net.py", ["def fetch_page(url, retries=3):", "    return get(url)"], [])
        + hunk("lib/http.py", [], [new_def, "    return get(url)"])
        + hunk("app/views.py", ["x = 0"], ["body = fetch_page(link)"])
    )
    (caller,) = [d for d in classifier.classify(diff).decisions if d.hunk.path == "app/views.py"]
    return {r.rule for r in caller.reasons}


@pytest.fixture
def classifier(default_config: LoadedConfig) -> Classifier:
    return Classifier(default_config.config.classify)


def test_a_moved_and_annotated_function_is_not_removed(classifier: Classifier) -> None:
    moved = "def fetch_page(url: str, retries: int = 3) -> bytes:"
    assert "deep.cross_file" not in caller_rules(classifier, moved)


def test_a_moved_function_whose_parameters_changed_is(classifier: Classifier) -> None:
    """The control: the caller is flagged when the definition really went away."""
    changed = "def fetch_page(url: str, timeout: float) -> bytes:"
    assert "deep.cross_file" in caller_rules(classifier, changed)
