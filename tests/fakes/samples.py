"""A small pull request and a two-alias route config, shared by the GitHub tests and
bench/action_bench.py: app/auth.py routes deep (os.system), app/util.py fast, README.md fast."""

from __future__ import annotations

from typing import Any

from depthgate.core.source import git_blob_id


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
# The head's files in full, as a checkout holds them: each item's ``sha`` is their git blob id
# (what GitHub's files API gives), so a workspace with these files is the PR's head.
HEAD_TEXT = {
    "app/auth.py": "import os\ndef run(cmd):\n    return os.system(cmd)\nx = 1\ny = 2\n",
    "app/util.py": "".join(f"# {i}\n" for i in range(1, 10)) + "a = 1\nb = 2\nc = 3\nd = 4\n",
    "README.md": "# Title\nMore words.\nend\n",
}
for _item in (AUTH, UTIL, DOCS):
    _item["sha"] = git_blob_id(HEAD_TEXT[_item["filename"]].encode())
UTIL_V2["sha"] = git_blob_id(HEAD_TEXT["app/util.py"].replace("b = 2", "b = 3").encode())
FILES = [AUTH, UTIL, DOCS]


def write_checkout(root: Any) -> None:
    """A workspace checked out at the PR's head (``HEAD_TEXT``)."""
    for path, text in HEAD_TEXT.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


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


# People whose /depthgate command must do nothing: (login, author_association, repository role).
OUTSIDERS = [
    ("mallory", "NONE", None),
    ("first", "FIRST_TIME_CONTRIBUTOR", None),
    ("reader", "CONTRIBUTOR", "read"),
    ("triager", "COLLABORATOR", "triage"),
]
