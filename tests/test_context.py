"""Context per tier (issue #11 item 4) and honest budgets (item 5), from real parsed source:
what each tier is shown, cut past the definition limit, C lines never commentable, and every
task -- a 60,000-character PR body included -- under its alias's input window by exact count."""

from __future__ import annotations

import asyncio
import importlib
import json
import warnings
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from depthgate.core.classify import Classifier
from depthgate.core.context import ContextBuilder
from depthgate.core.diff import Diff, parse_diff
from depthgate.core.findings import build_messages, response_schema
from depthgate.core.pack import pack
from depthgate.core.pipeline import ReviewOptions, review
from depthgate.core.plan import build_plan
from depthgate.core.prompting import PullRequestText
from depthgate.core.routes import LoadedConfig, Tier
from depthgate.core.source import FileSource, SourceMode, Sources
from depthgate.core.syntax import CodeIndex
from tests.fakes.gateway import FakeGateway
from tests.gitrepo import GitRepo

BODY = "\n".join(f"        total = total + item_{i}  # step {i}" for i in range(60))
STORE_V1 = f'''import json
from pathlib import Path


class Store:
    """Keeps records on disk."""

    def __init__(self, root):
        self.root = Path(root)
        self.cache = {{}}

    def save(self, key, record):
        total = 0
{BODY}
        if key in self.cache:
            return False
        self.cache[key] = record
        return write(self.root / key, record)

    def drop(self, key):
        del self.cache[key]
        return True


def write(path, record):
    path.write_text(json.dumps(record))
    return True


def backup(store):
    return store.save("backup", {{}})
'''
STORE_V2 = STORE_V1.replace(
    "        if key in self.cache:\n", "        if key not in self.cache:\n"
)


def sources_of(repo: GitRepo, base: str, paths: list[str]) -> Sources:
    files = {}
    for p in paths:
        old = repo.git("show", f"{base}:{p}")
        new = (repo.root / p).read_text()
        files[p] = FileSource(p, old, new)
    return Sources(SourceMode.REPO, files)


@pytest.fixture
def store(tmp_path: Path) -> tuple[Diff, Sources]:
    g = GitRepo(tmp_path / "repo")
    base = g.commit({"app/store.py": STORE_V1})
    g.commit({"app/store.py": STORE_V2})
    return parse_diff(g.diff(base, "HEAD")), sources_of(g, base, ["app/store.py"])


def builder(diff: Diff, sources: Sources, max_lines: int = 150) -> ContextBuilder:
    paths = [f.path for f in diff.files]
    return ContextBuilder(CodeIndex(sources), paths, max_definition_lines=max_lines)


def test_fast_gets_the_signature_and_the_class_line_only(store: tuple[Diff, Sources]) -> None:
    diff, sources = store
    (hunk,) = diff.hunks
    blocks = builder(diff, sources).blocks("fast", hunk)
    # and the class it is a method of: its header line, nothing of the body
    assert [(b.kind, [n for n, _ in b.lines]) for b in blocks] == [
        ("signature", [12]),
        ("outer", [5]),
    ]
    assert blocks[0].lines[0][1] == "    def save(self, key, record):"


def test_logic_gets_the_whole_method_imports_class_header_and_constructor(
    store: tuple[Diff, Sources],
) -> None:
    diff, sources = store
    (hunk,) = diff.hunks
    b = builder(diff, sources)
    blocks = {x.kind: x for x in b.blocks("logic", hunk)}
    save = STORE_V2.splitlines()
    start = save.index("    def save(self, key, record):") + 1
    end = save.index("        return write(self.root / key, record)") + 1
    assert [n for n, _ in blocks["definition"].lines] == list(range(start, end + 1))
    assert blocks["definition"].cut is None
    assert [n for n, _ in blocks["imports"].lines] == [1, 2]
    assert blocks["class"].lines == ((5, "class Store:"),)
    assert next(t for _, t in blocks["constructor"].lines) == "    def __init__(self, root):"
    # the task names the language and the real definition, whatever git's @@ text says
    site = b.site(hunk)
    assert site.describe() == f"python, in method Store.save (lines {start}-{end})"
    assert "callee" not in blocks  # calls and callers are the deep tier's


def test_deep_adds_callees_and_callers_from_the_prs_files(store: tuple[Diff, Sources]) -> None:
    diff, sources = store
    (hunk,) = diff.hunks
    labels = [(x.kind, x.label) for x in builder(diff, sources).blocks("deep", hunk)]
    assert ("callee", "called: function write in app/store.py (lines 84-86)") in labels
    assert ("caller", "calls save: function backup in app/store.py (lines 89-90)") in labels


def test_a_definition_over_the_limit_is_cut_to_its_signature_and_a_window(
    store: tuple[Diff, Sources],
) -> None:
    diff, sources = store
    (hunk,) = diff.hunks
    (definition, *_) = builder(diff, sources, max_lines=20).blocks("logic", hunk)
    numbers = [n for n, _ in definition.lines]
    changed = next(ln.new_no for ln in hunk.lines if ln.kind.value == "added")
    assert len(numbers) == 20
    assert numbers[0] == 12  # the signature stays
    assert changed in numbers
    assert definition.cut is not None
    assert definition.cut.startswith("66-line definition cut to its signature and lines")


def test_a_deletion_only_hunk_shows_the_old_side(tmp_path: Path) -> None:
    g = GitRepo(tmp_path / "repo")
    base = g.commit({"app/store.py": STORE_V1})
    g.commit({"app/store.py": STORE_V1.replace("        del self.cache[key]\n", "")})
    diff = parse_diff(g.diff(base, "HEAD"))
    (hunk,) = diff.hunks
    (definition, *_) = builder(diff, sources_of(g, base, ["app/store.py"])).blocks("logic", hunk)
    assert definition.side == "old"
    assert "        del self.cache[key]" in [t for _, t in definition.lines]


def test_diff_only_names_what_the_fragment_shows_and_adds_no_lines(
    store: tuple[Diff, Sources],
) -> None:
    diff, _ = store
    (hunk,) = diff.hunks
    b = builder(diff, Sources())
    assert b.blocks("logic", hunk) == ()
    assert b.site(hunk).describe() == "python, enclosing definition not shown"


def test_context_lines_are_shown_apart_and_a_finding_on_one_is_demoted(
    store: tuple[Diff, Sources], default_config: LoadedConfig
) -> None:
    diff, sources = store
    plan = build_plan(diff, default_config, sources=sources)
    (task,) = plan.tasks
    user = build_messages(task)[1]["content"]
    head, context = user.split("Context only", 1)
    assert "C5  class Store:" in context
    assert "C5 " not in head
    assert "R12 " not in user  # the signature is context here (C12), not a diff line
    assert "C12      def save(self, key, record):" in context

    def answer(alias: str, messages: object) -> str:
        finding = {
            "path": "app/store.py",
            "line": 5,  # a C line: the class header
            "side": "RIGHT",
            "start_line": None,
            "severity": "high",
            "category": "bug",
            "title": "about the class",
            "body": "text",
            "suggestion": None,
        }
        return json.dumps({"findings": [finding], "escalate": []})

    outcome = asyncio.run(review(plan, FakeGateway(answer), ReviewOptions()))
    assert outcome.comments == []
    (demoted,) = outcome.summary_only
    assert demoted.reason == "line_not_in_diff"


@cache
def o200k() -> Any:
    with warnings.catch_warnings():
        # bpe_openai loads its vocabularies through importlib.resources' legacy API
        warnings.simplefilter("ignore", DeprecationWarning)
        return importlib.import_module("bpe_openai").get_encoding("o200k_base")


def exact_tokens(task_messages: list[Any], escalate: bool) -> int:
    enc = o200k()
    text = "".join(m["content"] for m in task_messages)
    schema = json.dumps(response_schema(escalate=escalate))
    return len(enc.encode(text)) + len(enc.encode(schema)) + 4 * len(task_messages)


def test_every_task_fits_its_window_with_a_60000_character_pr_body(
    store: tuple[Diff, Sources], default_config: LoadedConfig
) -> None:
    diff, sources = store
    body = ("Long description with many words, numbers 12345 and symbols {}[]. " * 1000)[:60_000]
    pr = PullRequestText("Fix the store", body)
    cfg = default_config.config
    c = Classifier(cfg.classify).classify(diff)
    for tier in (Tier.FAST, Tier.LOGIC, Tier.DEEP):
        forced = replace(c, decisions=tuple(replace(d, tier=tier) for d in c.decisions))
        (task,) = pack(forced, cfg, index=CodeIndex(sources), pr=pr).tasks
        window = cfg.routes[task.alias].max_input_tokens
        escalate = task.alias != cfg.tiers.alias(Tier.DEEP)
        messages = build_messages(task, pr, escalate=escalate)
        exact = exact_tokens(messages, escalate)
        assert task.est_input_tokens <= window
        assert exact <= window, (tier, exact, window)
        assert exact <= task.est_input_tokens  # the estimate errs on the safe side
        if tier is Tier.FAST:
            assert "PR description" not in messages[1]["content"]
        else:
            assert "PR description (cut to about 2,000 tokens)" in messages[1]["content"]
            assert exact < 2_000 + 4_000


def test_a_nested_function_shows_the_signatures_around_it(tmp_path: Path) -> None:
    outer = "def make(limit):\n    def check(n):\n        return n < limit\n    return check\n"
    g = GitRepo(tmp_path / "repo")
    base = g.commit({"app/f.py": "import os\n\n\n" + outer})
    g.commit({"app/f.py": "import os\n\n\n" + outer.replace("n < limit", "n <= limit")})
    diff = parse_diff(g.diff(base, "HEAD"))
    (hunk,) = diff.hunks
    b = builder(diff, sources_of(g, base, ["app/f.py"]))
    kinds = [(x.kind, x.label) for x in b.blocks("logic", hunk)]
    assert ("outer", "inside function make") in kinds
    assert [x.kind for x in b.blocks("fast", hunk)] == ["signature", "outer"]


def test_the_enclosing_definition_reads_whole_and_in_order(
    store: tuple[Diff, Sources], default_config: LoadedConfig
) -> None:
    diff, sources = store
    (task,) = build_plan(diff, default_config, sources=sources).tasks
    context = build_messages(task)[1]["content"].split("Context only", 1)[1]
    body = context.split("--- app/store.py: enclosing method Store.save", 1)[1].split("---")[0]
    numbers = [int(line.split()[0][1:]) for line in body.splitlines() if line.startswith("C")]
    assert numbers == list(range(12, 78))  # every line, the changed one included, in order
    assert "C74          if key not in self.cache:" in body
