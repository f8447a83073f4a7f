"""How far the offline token estimate (depthgate.core.pack) is from real tokenizer counts.

    .venv/bin/pip install -e '.[bench]' && .venv/bin/python bench/token_estimate.py

depthgate never downloads a tokenizer; it estimates tokens from UTF-8 bytes (pack.py). This
script compares that estimate with exact counts of the hunk as the prompt renders it
(``hunktext.render_hunk``), from OpenAI's
o200k_base and cl100k_base encodings (the ``bpe-openai`` wheel ships their vocabularies, so this
runs offline too). Inputs: every hunk of this repository's own history (Python, YAML, Markdown,
shell) plus synthetic hunks of other languages and of non-ASCII text. Prints, per encoding, the
ratio estimate / exact: its median, 5th and 95th percentiles, and how often the estimate is
below the exact count (an under-estimate is the dangerous side: a task could exceed the alias's
context window).

It also measures whole tasks (issue #11): every task of the plans of the last 30 commits, with
their source files, a short and a 60,000-character PR body -- the estimate the packer keeps under
each alias's ``max_input_tokens`` against the exact o200k count of what the task sends (system
prompt, response schema, PR text, hunks, context).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import bpe_openai

from depthgate.configfile import load_config
from depthgate.core.diff import Hunk, parse_diff
from depthgate.core.findings import PullRequestText, build_messages, response_schema
from depthgate.core.hunktext import hunk_tokens, render_hunk
from depthgate.core.plan import build_plan
from depthgate.core.routes import Tier
from depthgate.core.source import FileSource, SourceMode, Sources

ROOT = Path(__file__).resolve().parent.parent

SYNTHETIC = {
    "go": (
        "func (s *Server) Handle(w http.ResponseWriter, r *http.Request) {\n"
        '\tif r.Method != "POST" {\n\t\thttp.Error(w, "method", 405)\n\t\treturn\n\t}\n}\n'
    ),
    "java": (
        "public final class Cache<K, V> {\n"
        "    private final Map<K, V> map = new HashMap<>();\n"
        "    public V get(K key) { return map.get(key); }\n}\n"
    ),
    "ts": (
        "export async function load(id: string): Promise<User | undefined> {\n"
        "  const res = await fetch(`/api/users/${id}`);\n"
        "  return res.ok ? res.json() : undefined;\n}\n"
    ),
    "json": (
        '{\n  "name": "web",\n  "version": "1.2.3",\n'
        '  "dependencies": {"react": "^19.0.0", "zod": "^3.23.8"}\n}\n'
    ),
    "cjk": "# 概要\n\nこのモジュールはユーザー認証を担当します。トークンの有効期限は一時間です。\n",
    "cyrillic": "Этот модуль отвечает за проверку подписи запросов и ограничение частоты.\n",
}


def own_history() -> list[Hunk]:
    log = subprocess.run(
        ["git", "log", "-p", "--no-color", "--format=", "-M"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return list(parse_diff(log).hunks)


def synthetic() -> list[Hunk]:
    hunks: list[Hunk] = []
    for name, body in SYNTHETIC.items():
        lines = body.splitlines()
        text = (
            f"diff --git a/x.{name} b/x.{name}\n--- a/x.{name}\n+++ b/x.{name}\n"
            f"@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{ln}\n" for ln in lines)
        )
        hunks.extend(parse_diff(text).hunks)
    return hunks


def _show(rev: str, path: str) -> str | None:
    proc = subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, check=False
    )
    if proc.returncode != 0 or b"\0" in proc.stdout[:8000]:
        return None
    try:
        return proc.stdout.decode("utf-8")
    except UnicodeDecodeError:
        return None


def whole_tasks(commits: int, body: str) -> list[tuple[int, int, int]]:
    """(estimate, exact, window) of every task of every plan of the last ``commits`` commits,
    with their source and the PR ``body``: what a task really sends, system prompt, schema and
    context included."""
    enc = bpe_openai.get_encoding("o200k_base")
    loaded = load_config(None, cwd=ROOT)
    cfg = loaded.config
    revs = subprocess.run(
        ["git", "rev-list", f"--max-count={commits}", "--no-merges", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    out = []
    for rev in revs:
        text = subprocess.run(
            ["git", "diff", f"{rev}^", rev], cwd=ROOT, capture_output=True, check=False
        ).stdout
        if not text:
            continue
        diff = parse_diff(text)
        files = {
            f.path: FileSource(
                f.path,
                _show(f"{rev}^", f.old_path) if f.old_path else None,
                _show(rev, f.path) if f.status.value != "deleted" else None,
            )
            for f in diff.files
        }
        sources = Sources(SourceMode.REPO, files)
        pr = PullRequestText(f"commit {rev[:12]}", body)
        plan = build_plan(diff, loaded, sources=sources, pr=pr)
        for task in plan.tasks:
            escalate = task.alias != cfg.tiers.alias(Tier.DEEP)
            messages = build_messages(task, pr, escalate=escalate)
            schema = json.dumps(response_schema(escalate=escalate))
            exact = sum(len(enc.encode(m["content"])) + 4 for m in messages)
            exact += len(enc.encode(schema))
            out.append((task.est_input_tokens, exact, cfg.routes[task.alias].max_input_tokens))
    return out


def main() -> int:
    for label, body in (
        ("PR body of 200 characters", "Fixes the bug. " * 13),
        ("PR body of 60,000 characters", ("Long text, words 123. " * 3000)[:60_000]),
    ):
        rows = whole_tasks(30, body)
        ratios = sorted(est / max(exact, 1) for est, exact, _ in rows)
        over = sum(1 for _, exact, window in rows if exact > window)
        worst = max(exact / window for _, exact, window in rows)
        print(
            f"whole tasks, last 30 commits with source, {label}: {len(rows)} tasks, "
            f"estimate/exact median {statistics.median(ratios):.2f}, min {ratios[0]:.2f}, "
            f"max exact/window {worst:.1%}, over the window {over}"
        )
    every = [h for h in own_history() + synthetic() if h.lines]
    # the tokenizer refuses inputs past 200,000 tokens (whole lock files in the history)
    hunks = [h for h in every if len(render_hunk(h)) < 300_000]
    print(f"{len(hunks)} hunks ({len(every) - len(hunks)} over 300,000 characters left out)")
    for name in ("o200k_base", "cl100k_base"):
        enc = bpe_openai.get_encoding(name)
        ratios = []
        for h in hunks:
            exact = len(enc.encode(render_hunk(h)))
            ratios.append(hunk_tokens(h) / max(exact, 1))
        ratios.sort()
        under = sum(1 for r in ratios if r < 1) / len(ratios)
        q = statistics.quantiles(ratios, n=20)
        print(
            f"{name}: estimate/exact median {statistics.median(ratios):.2f}, "
            f"p5 {q[0]:.2f}, p95 {q[-1]:.2f}, under-estimates {under:.1%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
