"""The team's guidance in the tasks (issue #13 item 4): review.instructions, path_instructions and
the guideline files reach the logic and deep tasks -- only the path instructions that match a
task's own files, never a fast task -- inside the untrusted-data fence with their source named,
and counted: a task with the largest guidance the config allows still fits its alias's window by
exact count (an o200k tokenizer, independent of the packer's estimate)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from depthgate.core.classify import Classification, Classifier
from depthgate.core.diff import parse_diff
from depthgate.core.findings import build_messages
from depthgate.core.guidance import (
    GUIDANCE_TITLE,
    MAX_INSTRUCTION_CHARS,
    Guidance,
    ReviewGuidance,
)
from depthgate.core.pack import GUIDANCE_SHARE, Task, pack
from depthgate.core.routes import LoadedConfig, RoutesConfig, Tier
from tests.test_context import exact_tokens, o200k

DIFF = """\
diff --git a/app/views.py b/app/views.py
--- a/app/views.py
+++ b/app/views.py
@@ -1,3 +1,3 @@
 def show(request):
-    return render(request)
+    return render(request, strict=True)
 # end
diff --git a/migrations/0002_add.py b/migrations/0002_add.py
--- a/migrations/0002_add.py
+++ b/migrations/0002_add.py
@@ -1,3 +1,3 @@
 def forwards(apps):
-    add_column("users", "age")
+    add_column("users", "age", null=True)
 # end
"""

REVIEW = ReviewGuidance(
    instructions="We target Python 3.11.",
    path_instructions={
        "migrations/**": "Every migration must be reversible.",
        "docs/**": "Docs use British spelling.",
    },
)
FILES = (Guidance("AGENTS.md", "Run make test before pushing."),)


def with_review(loaded: LoadedConfig, review: ReviewGuidance) -> RoutesConfig:
    return loaded.config.model_copy(update={"review": review})


def forced(cfg: RoutesConfig, tier: Tier) -> Classification:
    c = Classifier(cfg.classify).classify(parse_diff(DIFF))
    return replace(c, decisions=tuple(replace(d, tier=tier) for d in c.decisions))


def user_text(task: Task) -> str:
    return build_messages(task)[1]["content"]


def test_each_logic_task_gets_the_instructions_for_its_own_files(
    default_config: LoadedConfig,
) -> None:
    cfg = with_review(default_config, REVIEW)
    tasks = {
        t.hunks[0].hunk.path: t for t in pack(forced(cfg, Tier.LOGIC), cfg, guidelines=FILES).tasks
    }
    views, migration = user_text(tasks["app/views.py"]), user_text(tasks["migrations/0002_add.py"])
    for text in (views, migration):
        assert GUIDANCE_TITLE in text
        assert "[from review.instructions]\nWe target Python 3.11." in text
        assert "[from AGENTS.md]\nRun make test before pushing." in text
        assert "British spelling" not in text
        fence = text.index("<<<UNTRUSTED-DATA ")
        assert fence < text.index(GUIDANCE_TITLE) < text.index("<<<END UNTRUSTED-DATA ")
    assert "[from review.path_instructions[migrations/**]]\nEvery migration" in migration
    assert "Every migration" not in views
    assert tasks["migrations/0002_add.py"].guidance == (
        "review.instructions",
        "review.path_instructions[migrations/**]",
        "AGENTS.md",
    )
    assert tasks["app/views.py"].guidance == ("review.instructions", "AGENTS.md")


def test_a_deep_bundle_gets_the_instructions_of_every_file_it_holds(
    default_config: LoadedConfig,
) -> None:
    cfg = with_review(default_config, REVIEW)
    (task,) = pack(forced(cfg, Tier.DEEP), cfg, guidelines=FILES).tasks
    assert "Every migration must be reversible." in user_text(task)
    assert task.guidance_text in user_text(task)


def test_a_fast_task_carries_no_guidance(default_config: LoadedConfig) -> None:
    cfg = with_review(default_config, REVIEW)
    for task in pack(forced(cfg, Tier.FAST), cfg, guidelines=FILES).tasks:
        assert task.guidance == ()
        assert task.guidance_text == ""
        assert "Team guidance" not in user_text(task)
        assert "Python 3.11" not in user_text(task)


def test_without_guidance_nothing_is_added(default_config: LoadedConfig) -> None:
    cfg = default_config.config
    for task in pack(forced(cfg, Tier.LOGIC), cfg).tasks:
        assert "Team guidance" not in user_text(task)


@pytest.mark.parametrize("tier", [Tier.LOGIC, Tier.DEEP])
def test_the_largest_guidance_allowed_is_counted_and_cut_and_still_fits(
    default_config: LoadedConfig, tier: Tier
) -> None:
    words = "Check every input twice, numbers 12345 and {}[] too. "
    long = (words * 200)[:MAX_INSTRUCTION_CHARS]
    review = ReviewGuidance(
        instructions=long,
        path_instructions={f"**/*{n}*": long for n in range(10)} | {"**": long},
        guidelines_max_tokens=20000,
    )
    cfg = with_review(default_config, review)
    files = (Guidance("AGENTS.md", (words * 2000)[:50_000]),)
    (task, *_) = pack(forced(cfg, tier), cfg, guidelines=files).tasks
    text = user_text(task)
    assert "[... the instructions were cut to about 2,000 tokens]" in text
    window = cfg.routes[task.alias].max_input_tokens
    escalate = task.alias != cfg.tiers.alias(Tier.DEEP)
    exact = exact_tokens(build_messages(task, escalate=escalate), escalate)
    assert exact <= task.est_input_tokens <= window
    assert task.hunks  # the code still has room: the guidance takes a share of the window only
    guidance = len(o200k().encode(task.guidance_text))
    assert guidance <= window * GUIDANCE_SHARE
    if window * GUIDANCE_SHARE > 25_000:  # 2,000 + 20,000 estimated tokens fit whole
        assert "cut to fit this alias's input window" not in text
        assert guidance > 10_000
    else:
        assert "[... the team guidance was cut to fit this alias's input window]" in text
