"""The context evaluation (bench/context_eval.py) in its offline form: hand-written files and
diffs, with expectations counted by hand. The real corpus is fetched by the harness at run time;
only its list is checked here."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

from bench.context_eval import (
    DEFAULT_CASES,
    LONG_BODY_CHARS,
    CaseScore,
    ContextCase,
    DefinitionCheck,
    Need,
    Report,
    TaskTokens,
    code_lines,
    enclosing_definition,
    exact_tokens,
    long_body,
    needed_lines,
    score,
    shown_in_order,
)
from bench.eval_corpus import git_diff
from depthgate.core.diff import parse_diff
from depthgate.core.routes import LoadedConfig

PY = """\
import os


def serve(root, name):
    base = os.path.realpath(root)
    target = os.path.join(base, name)
    for _ in range(3):
        pass
    # several lines that git's context does not reach
    a = 1
    b = 2
    c = 3
    d = 4
    e = 5
    if not target.startswith(base):
        raise PermissionError(name)
    return open(target)


class Store:
    @staticmethod
    def get(key):
        return key
"""

TS = """\
export class Router {
  route(path: string): string {
    const clean = path.trim();
    return clean;
  }
}

export const handler = (req: Request) => {
  return req.url;
};
"""


def test_enclosing_definitions_are_found_by_tree_sitter() -> None:
    # counted by hand: serve() spans lines 4-17, the decorated get() 21-23
    assert enclosing_definition("a/m.py", PY, 15, 16) == (4, 17)
    assert enclosing_definition("a/m.py", PY, 23, 23) == (21, 23)
    assert enclosing_definition("a/m.py", PY, 1, 1) is None  # module top level
    assert enclosing_definition("a/m.py", PY, 10, 22) is None  # spans two definitions
    assert enclosing_definition("src/r.ts", TS, 3, 3) == (2, 5)
    assert enclosing_definition("src/r.ts", TS, 9, 9) == (8, 10)
    assert enclosing_definition("src/r.tsx", TS, 3, 3) == (2, 5)
    assert enclosing_definition("README.md", "x\n", 1, 1) is None


def test_a_definition_is_whole_when_its_lines_are_shown_in_order() -> None:
    body = ["def f(x):", "    y = x", "", "    return y"]
    prompt = "a.py @@ -1,3 +1,3 @@ def f(x):\nC1  def f(x):\nR2 +    y = x\nC3      return y\n"
    assert shown_in_order(body, prompt)
    assert not shown_in_order(body[::-1], prompt)
    # git's section heading after @@ is not the code: it does not show the signature
    only_header = "a.py @@ -1,3 +1,3 @@ def f(x):\nR2 +    y = x\nC3      return y\n"
    assert not shown_in_order(body, only_header)
    assert code_lines(only_header) == ["R2 +    y = x", "C3      return y"]


def test_exact_tokens_count_messages_framing_and_schema() -> None:
    # o200k: "hello world" is 2 tokens, "user" 1; 3 per message and 3 for the reply
    assert exact_tokens([{"role": "user", "content": "hello world"}], None) == 9
    with_schema = exact_tokens([{"role": "user", "content": "hello world"}], {"type": "object"})
    assert with_schema > 9


def _fixture_case() -> ContextCase:
    new = PY.replace("if not target.startswith(base):", "if not target.startswith(base + os.sep):")
    diff = git_diff(PY.encode(), new.encode(), "a/m.py")
    return ContextCase(
        name="fixture",
        ecosystem="pypi",
        diff=diff,
        fix=r"startswith\(base \+ os\.sep\)",
        needs=(Need(r"base = os\.path\.realpath\(root\)"),),
        texts={"a/m.py": (PY, new)},
        readme="A package.",
    )


def test_needed_lines_must_be_one_line_outside_the_fix_hunk() -> None:
    case = _fixture_case()
    hunk = parse_diff(case.diff).files[0].hunks[0]
    assert needed_lines(case, "a/m.py", hunk) == ["base = os.path.realpath(root)"]
    twice = ContextCase(**{**case.__dict__, "needs": (Need(r"= \d"),)})
    with pytest.raises(ValueError, match="matches 5 lines"):
        needed_lines(twice, "a/m.py", hunk)
    inside = ContextCase(**{**case.__dict__, "needs": (Need(r"raise PermissionError"),)})
    with pytest.raises(ValueError, match="shown by the fix hunk itself"):
        needed_lines(inside, "a/m.py", hunk)


@pytest.mark.skipif(shutil.which("git") is None, reason="git renders the diffs")
def test_diff_only_cannot_carry_a_line_git_does_not_show(default_config: LoadedConfig) -> None:
    result = score(_fixture_case(), default_config, mode="diff")
    # the guard's subject is 10 lines above: no diff-only prompt can show it
    assert result.needed == [("base = os.path.realpath(root)", False)]
    assert not result.all_needed
    assert result.tokens
    for t in result.tokens:
        assert t.exact > 0
        assert t.exact_long_body > t.exact  # the long body is sent, and counted
        assert t.budget == default_config.config.routes[t.alias].max_input_tokens


def test_the_long_body_is_the_readme_past_60000_characters() -> None:
    body = long_body("Readme text.")
    assert len(body) >= LONG_BODY_CHARS
    assert body.startswith("Readme text.")


def test_targets_missed_are_named() -> None:
    case = _fixture_case()
    ok = CaseScore(case, "logic", [("x", True)], [DefinitionCheck("c", "h", "logic", 10, True)], [])
    bad = CaseScore(
        case,
        "deep",
        [("x", True), ("y", False)],
        [
            DefinitionCheck("c", "h", "deep", 20, False),
            DefinitionCheck("c", "h", "deep", 400, False),  # long: counted apart
        ],
        [TaskTokens("c", "t1", "fast", "review-fast", 100, 13000, 20000, 12000)],
    )
    report = Report("diff", [ok, bad])
    assert report.needed_share() == (1, 2)
    assert report.whole_share() == (1, 2)
    assert report.whole_share(long=True) == (0, 1)
    assert len(report.over_budget()) == 1
    missed = report.missed()
    assert "diff: needed lines in 1/2 cases" in missed
    assert "diff: enclosing definition whole in 1/2 logic/deep hunks" in missed
    assert "diff: 2 task prompts over their alias's max_input_tokens" in missed
    assert Report("diff", [ok]).missed() == []


def test_the_context_corpus_list_is_well_formed() -> None:
    cases = yaml.safe_load(DEFAULT_CASES.read_text(encoding="utf-8"))["cases"]
    assert len(cases) >= 20
    ecos = [c.get("ecosystem", "pypi") for c in cases]
    assert ecos.count("pypi") >= 10
    assert ecos.count("npm") >= 10
    for c in cases:
        assert c["files"]
        assert c["needs"]
        re.compile(c["fix"])
        for n in c["needs"]:
            re.compile(n if isinstance(n, str) else n.get("old") or n["new"])
