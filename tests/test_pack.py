"""Task packing: budgets, splitting, context, limits, determinism."""

from __future__ import annotations

from depthgate.core.classify import Classifier
from depthgate.core.diff import Side, parse_diff
from depthgate.core.hunktext import estimate_tokens, hunk_tokens
from depthgate.core.pack import pack
from depthgate.core.plan import build_plan, plan_to_dict
from depthgate.core.routes import LoadedConfig, RoutesConfig, Tier


def config(base: LoadedConfig, **changes: object) -> RoutesConfig:
    """A copy of the default config with route/limit fields changed (``fast_max_input=...``)."""
    cfg = base.config
    routes = dict(cfg.routes)
    limits = cfg.limits
    for key, value in changes.items():
        if key == "fast_max_input":
            routes["review-fast"] = routes["review-fast"].model_copy(
                update={"max_input_tokens": value}
            )
        elif key == "deep_max_input":
            routes["review-deep"] = routes["review-deep"].model_copy(
                update={"max_input_tokens": value}
            )
        else:
            limits = limits.model_copy(update={key: value})
    return cfg.model_copy(update={"routes": routes, "limits": limits})


def file_diff(path: str, hunks: list[list[str]], spacing: int = 100) -> str:
    out = [f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"]
    for i, added in enumerate(hunks):
        start = 1 + i * spacing
        out.append(f"@@ -{start},1 +{start},{len(added) + 1} @@\n ctx\n")
        out.extend(f"+{line}\n" for line in added)
    return "".join(out)


def test_estimator_is_conservative_and_offline() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("é" * 5) == 4  # UTF-8 bytes, not characters


def test_fast_batches_never_mix_files(default_config: LoadedConfig) -> None:
    text = file_diff("a.txt", [["x"], ["y"]]) + file_diff("b.txt", [["z"]])
    cfg = default_config.config
    c = Classifier(cfg.classify).classify(parse_diff(text))
    tasks = pack(c, cfg).tasks
    assert [t.tier for t in tasks] == [Tier.FAST, Tier.FAST]
    assert [{th.hunk.path for th in t.hunks} for t in tasks] == [{"a.txt"}, {"b.txt"}]
    assert [len(t.hunks) for t in tasks] == [2, 1]
    assert [t.id for t in tasks] == ["fast-001", "fast-002"]


def test_oversized_hunk_splits_on_line_boundaries(default_config: LoadedConfig) -> None:
    lines = [f"line number {i} with some words in it" for i in range(400)]
    text = file_diff("notes.txt", [lines])
    # the instructions and schema (about 1,700 estimated tokens) count against the window too
    cfg = config(default_config, fast_max_input=3500, prompt_overhead_tokens=800)
    c = Classifier(cfg.classify).classify(parse_diff(text))
    packing = pack(c, cfg)
    parts = [th for t in packing.tasks for th in t.hunks]
    assert len(parts) > 1
    assert all(th.part is not None and th.part[1] == len(parts) for th in parts)
    for t in packing.tasks:
        assert t.est_input_tokens <= 3500
    # the parts cover the hunk exactly, in order, with their own anchors
    whole = c.decisions[0].hunk
    assert [ln for th in parts for ln in th.hunk.lines] == list(whole.lines)
    assert {a for th in parts for a in th.hunk.anchors()} == set(whole.anchors())
    first, second = parts[0].hunk, parts[1].hunk
    assert second.new_start == first.new_start + first.new_lines


def test_a_line_larger_than_the_budget_is_dropped_visibly(default_config: LoadedConfig) -> None:
    text = file_diff("notes.txt", [["w" * 1500]])
    cfg = config(default_config, fast_max_input=1000, prompt_overhead_tokens=800)
    c = Classifier(cfg.classify).classify(parse_diff(text))
    packing = pack(c, cfg)
    assert packing.tasks == ()
    assert [d.reason for d in packing.dropped] == ["limit.line_too_long"]


def test_deep_task_carries_other_files_as_context(default_config: LoadedConfig) -> None:
    text = (
        file_diff("svc/run.py", [["subprocess.run(cmd, shell=True)"]])
        + file_diff("svc/other.py", [["x = 1"]])
        + file_diff("package-lock.json", [['"a": 1']])
    )
    cfg = default_config.config
    c = Classifier(cfg.classify).classify(parse_diff(text))
    tasks = pack(c, cfg).tasks
    deep = next(t for t in tasks if t.tier is Tier.DEEP)
    assert deep.alias == "review-deep"
    assert [h.path for h in deep.context] == ["svc/other.py"]  # skipped files are not context


def test_logic_task_carries_same_file_hunks_as_context(default_config: LoadedConfig) -> None:
    text = file_diff("calc.py", [["if x:", "    y()"], ["z = 1"]]) + file_diff("b.py", [["q = 1"]])
    cfg = default_config.config
    c = Classifier(cfg.classify).classify(parse_diff(text))
    logic = next(t for t in pack(c, cfg).tasks if t.tier is Tier.LOGIC)
    assert [(h.path, h.new_start) for h in logic.context] == [("calc.py", 101)]


def test_max_hunks_drops_fast_before_deep(default_config: LoadedConfig) -> None:
    text = file_diff("notes.txt", [["a"], ["b"], ["c"]]) + file_diff("x.py", [["eval(s)"]])
    cfg = config(default_config, max_hunks=2)
    c = Classifier(cfg.classify).classify(parse_diff(text))
    packing = pack(c, cfg)
    planned = [th.tier for t in packing.tasks for th in t.hunks]
    assert sorted(planned) == sorted([Tier.DEEP, Tier.FAST])
    assert [d.reason for d in packing.dropped] == ["limit.max_hunks", "limit.max_hunks"]


def test_alias_token_budget_drops_visibly(default_config: LoadedConfig) -> None:
    text = "".join(file_diff(f"f{i}.txt", [["some text"] * 20]) for i in range(10))
    cfg = config(default_config, max_tokens_per_alias={"review-fast": 3000})
    c = Classifier(cfg.classify).classify(parse_diff(text))
    packing = pack(c, cfg)
    spent = sum(t.est_input_tokens for t in packing.tasks if t.alias == "review-fast")
    assert 0 < spent <= 3000
    assert packing.dropped
    assert {d.reason for d in packing.dropped} == {"limit.max_tokens_per_alias"}
    planned = {th.hunk.path for t in packing.tasks for th in t.hunks}
    assert planned.isdisjoint({d.path for d in packing.dropped})


def test_plan_json_is_deterministic_and_anchors_are_exact(default_config: LoadedConfig) -> None:
    text = file_diff("a.py", [["if a:", "  b()"]]) + file_diff("b.md", [["doc"]])
    one = plan_to_dict(build_plan(parse_diff(text), default_config))
    two = plan_to_dict(build_plan(parse_diff(text), default_config))
    assert one == two
    diff = parse_diff(text)
    for f, fj in zip(diff.files, one["files"], strict=True):
        for h, hj in zip(f.hunks, fj["hunks"], strict=True):
            assert hj["anchors"]["RIGHT"] == [a.line for a in h.anchors() if a.side is Side.RIGHT]
            assert hj["anchors"]["LEFT"] == [a.line for a in h.anchors() if a.side is Side.LEFT]
    for task in one["tasks"]:
        assert task["est_input_tokens"] >= sum(h["est_tokens"] for h in task["hunks"])
    assert hunk_tokens(diff.files[0].hunks[0]) > 0
