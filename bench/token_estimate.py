"""How far the offline token estimate (depthgate.core.pack) is from real tokenizer counts.

    .venv/bin/pip install -e '.[bench]' && .venv/bin/python bench/token_estimate.py

depthgate never downloads a tokenizer; it estimates tokens from UTF-8 bytes (pack.py). This
script compares that estimate with exact counts of the hunk as the prompt renders it
(``pack.render_hunk``), from OpenAI's
o200k_base and cl100k_base encodings (the ``bpe-openai`` wheel ships their vocabularies, so this
runs offline too). Inputs: every hunk of this repository's own history (Python, YAML, Markdown,
shell) plus synthetic hunks of other languages and of non-ASCII text. Prints, per encoding, the
ratio estimate / exact: its median, 5th and 95th percentiles, and how often the estimate is
below the exact count (an under-estimate is the dangerous side: a task could exceed the alias's
context window).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

import bpe_openai

from depthgate.core.diff import Hunk, parse_diff
from depthgate.core.pack import hunk_tokens, render_hunk

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


def main() -> int:
    hunks = [h for h in own_history() + synthetic() if h.lines]
    print(f"{len(hunks)} hunks")
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
