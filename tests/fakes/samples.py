"""A small pull request and a two-alias route config, shared by the GitHub tests and
bench/action_bench.py: app/auth.py routes deep (os.system), app/util.py fast, README.md fast."""

from __future__ import annotations

from typing import Any


def patch_file(path: str, patch: str, status: str = "modified") -> dict[str, Any]:
    """One item of GET /pulls/{n}/files."""
    return {"filename": path, "status": status, "patch": patch}


AUTH = patch_file(
    "app/auth.py",
    "@@ -1,3 +1,5 @@\n import os\n+def run(cmd):\n+    return os.system(cmd)\n x = 1\n y = 2",
)
UTIL = patch_file("app/util.py", "@@ -10,3 +10,4 @@ def f():\n a = 1\n+b = 2\n c = 3\n d = 4")
UTIL_V2 = patch_file("app/util.py", "@@ -10,3 +10,4 @@ def f():\n a = 1\n+b = 3\n c = 3\n d = 4")
DOCS = patch_file("README.md", "@@ -1,2 +1,3 @@\n # Title\n+More words.\n end")
FILES = [AUTH, UTIL, DOCS]

# The gateway URL and key come from DEPTHGATE_GATEWAY_URL / DEPTHGATE_GATEWAY_KEY.
ROUTES = """\
version: 1
gateway:
  base_url_env: DEPTHGATE_GATEWAY_URL
  api_key_env: DEPTHGATE_GATEWAY_KEY
  retry: {{attempts: 2, max_retry_after_s: 30, budget_s: 60}}
routes:
  review-fast: {{send_model: fast-model, max_input_tokens: 12000, max_output_tokens: 1200}}
  review-deep: {{send_model: deep-model, max_input_tokens: 100000, max_output_tokens: 4000}}
tiers: {{fast: review-fast, logic: review-deep, deep: review-deep}}
limits: {{max_comments: {max_comments}}}
"""


def routes(max_comments: int = 30) -> str:
    return ROUTES.format(max_comments=max_comments)
