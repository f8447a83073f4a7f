"""Depth classification: the tier of every hunk, and the rule that decided it."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from depthgate.core.classify import Classification, Classifier, HunkDecision
from depthgate.core.diff import parse_diff
from depthgate.core.routes import LoadedConfig, Tier


def modify(path: str, old: list[str], new: list[str], start: int = 10) -> str:
    """A one-hunk diff that replaces ``old`` by ``new`` at ``start``, with one context line."""
    body = [" ctx_before = 1"] + [f"-{x}" for x in old] + [f"+{x}" for x in new]
    body.append(" ctx_after = 2")
    header = f"@@ -{start},{len(old) + 2} +{start},{len(new) + 2} @@"
    return (
        f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n{header}\n"
        + "\n".join(body)
        + "\n"
    )


@pytest.fixture
def classifier(default_config: LoadedConfig) -> Classifier:
    return Classifier(default_config.config.classify)


def run(classifier: Classifier, *diffs: str) -> Classification:
    return classifier.classify(parse_diff("".join(diffs)))


def only(c: Classification) -> HunkDecision:
    (d,) = c.decisions
    return d


def rules(d: HunkDecision) -> set[str]:
    return {r.rule for r in d.reasons}


# --- the "done when" cases -------------------------------------------------------------


def test_shell_true_is_deep(classifier: Classifier) -> None:
    d = only(
        run(classifier, modify("tools/run.py", ["x = 1"], ["subprocess.run(cmd, shell=True)"]))
    )
    assert d.tier is Tier.DEEP
    reason = next(r for r in d.reasons if r.rule == "deep.pattern.shell_exec")
    assert "shell=True" in reason.detail
    assert reason.detail.startswith("+11:")


def test_workflow_change_is_deep(classifier: Classifier) -> None:
    d = only(run(classifier, modify(".github/workflows/ci.yml", ["  a: 1"], ["  a: 2"])))
    assert d.tier is Tier.DEEP
    assert "deep.path.ci_workflow" in rules(d)


def test_a_refactor_in_an_auth_module_is_not_deep(classifier: Classifier) -> None:
    """A security path is a role of the code, not a verdict: a rename, a log line or a
    reformatting inside auth/login.py is reviewed like any other code."""
    old = [
        "    ok = verify(user, password)",
        "    return ok",
    ]
    new = [
        '    log.debug("login attempt for %s", user.name)',
        "    result = verify(",
        "        user,",
        "        password,",
        "    )",
        "    return result",
    ]
    d = only(run(classifier, modify("src/app/auth/login.py", old, new)))
    assert d.tier is not Tier.DEEP, d.reasons
    assert not any(r.rule.startswith("deep.") for r in d.reasons)


def test_an_ownership_check_in_an_auth_module_is_deep(classifier: Classifier) -> None:
    old = ["    session = start_session(user)"]
    new = [
        "    if account.owner_id != user.id:",
        "        raise PermissionDenied()",
        "    session = start_session(user)",
    ]
    d = only(run(classifier, modify("src/app/auth/login.py", old, new)))
    assert d.tier is Tier.DEEP
    reason = next(r for r in d.reasons if r.rule.startswith("deep.security."))
    assert reason.rule == "deep.security.authentication", reason
    assert reason.detail.startswith("rejects_input: +12: raise PermissionDenied()"), reason
    assert "; role authentication: path matches 'auth/'" in reason.detail
    assert not any(r.rule.startswith("deep.path.") for r in d.reasons)


def test_whitespace_only_is_skipped(classifier: Classifier) -> None:
    d = only(run(classifier, modify("web/app.js", ["  return a+b;"], ["    return a + b;  "])))
    assert d.tier is None
    assert d.skip == "whitespace_only"


def test_indentation_is_not_whitespace_in_python(classifier: Classifier) -> None:
    d = only(run(classifier, modify("m.py", ["    return x"], ["return x"])))
    assert d.skip is None


def test_lockfile_and_binary_are_skipped_with_a_reason(classifier: Classifier) -> None:
    c = run(
        classifier,
        modify("frontend/package-lock.json", ['"a": 1'], ['"a": 2']),
        "diff --git a/logo.png b/logo.png\nindex 1..2 100644\n"
        "Binary files a/logo.png and b/logo.png differ\n",
    )
    skips = {s.path: s for s in c.skipped_files}
    assert skips["frontend/package-lock.json"].reason == "lockfile"
    assert "package-lock.json" in skips["frontend/package-lock.json"].detail
    assert skips["logo.png"].reason == "binary"
    assert c.decisions[0].skip == "lockfile"


# --- the rest of the defaults ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("vendor/github.com/x/y.go", "vendored"),
        ("web/node_modules/a/index.js", "vendored"),
        ("static/app.min.js", "minified"),
        ("api/service_pb2.py", "generated"),
        ("go.sum", "lockfile"),
    ],
)
def test_skipped_paths(classifier: Classifier, path: str, reason: str) -> None:
    c = run(classifier, modify(path, ["a"], ["b"]))
    assert c.skipped_files[0].reason == reason


def test_generated_marker_in_the_first_lines(classifier: Classifier) -> None:
    diff = (
        "diff --git a/gen/api.go b/gen/api.go\nnew file mode 100644\n--- /dev/null\n"
        "+++ b/gen/api.go\n@@ -0,0 +1,2 @@\n"
        "+// Code generated by protoc. DO NOT EDIT.\n+package api\n"
    )
    assert run(classifier, diff).skipped_files[0].reason == "generated"


def test_long_lines_count_as_minified(classifier: Classifier) -> None:
    c = run(classifier, modify("data.py", ["x = 1"], ["x = '" + "a" * 5000 + "'"]))
    assert c.skipped_files[0].reason == "minified"


def test_deleted_files_are_skipped_unless_security_relevant(classifier: Classifier) -> None:
    def delete(path: str) -> str:
        return (
            f"diff --git a/{path} b/{path}\ndeleted file mode 100644\n--- a/{path}\n"
            f"+++ /dev/null\n@@ -1,2 +0,0 @@\n-a = 1\n-b = 2\n"
        )

    c = run(classifier, delete("src/util.py"), delete("src/auth/guard.py"), delete("CODEOWNERS"))
    assert [s.path for s in c.skipped_files] == ["src/util.py"]
    # a security role: reviewed, so that a removed check is seen; deep only with a shape
    assert c.decisions[1].skip is None
    assert c.decisions[1].tier is not Tier.DEEP
    assert c.decisions[2].tier is Tier.DEEP  # any change to CODEOWNERS is deep


@pytest.mark.parametrize(
    ("path", "line", "rule"),
    [
        ("a.py", "data = pickle.loads(blob)", "deserialization"),
        ("a.py", "cfg = yaml.load(text)", "deserialization"),
        ("a.py", "eval(user_input)", "eval_exec"),
        ("a.js", "const f = new Function(body)", "eval_exec"),
        ("a.py", 'cur.execute(f"SELECT * FROM t WHERE id = {uid}")', "sql_from_strings"),
        ("a.go", 'q := fmt.Sprintf("SELECT * FROM users WHERE id = %s", id)', "sql_from_strings"),
        ("a.py", "requests.get(url, verify=False)", "tls_settings"),
        ("a.go", "cfg := &tls.Config{InsecureSkipVerify: true}", "tls_settings"),
        ("a.py", "h = hashlib.md5(data)", "weak_crypto"),
        ("a.py", 'API_KEY = "abc"', "credentials"),
        ("a.py", "if user.is_admin:", "access_checks"),
        ("a.java", "Runtime.getRuntime().exec(cmd);", "shell_exec"),
        ("a.js", "require('child_process').exec(cmd)", "shell_exec"),
        ("run.sh", "curl -s https://x.example/install | sh", "shell_eval"),
        ("a.py", 'ok = user != "admin\u202e"', "hidden_unicode"),
    ],
)
def test_dangerous_code_is_deep(classifier: Classifier, path: str, line: str, rule: str) -> None:
    d = only(run(classifier, modify(path, ["x = 0"], [line])))
    assert d.tier is Tier.DEEP
    assert f"deep.pattern.{rule}" in rules(d)


def test_removed_lines_count_too(classifier: Classifier) -> None:
    d = only(
        run(classifier, modify("a.py", ["if not user.is_admin:", "    raise Forbidden()"], []))
    )
    assert d.tier is Tier.DEEP


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("Dockerfile", "container"),
        ("infra/main.tf", "iac"),
        ("app/migrations/0002_add.py", "migrations"),
        ("CODEOWNERS", "permissions"),
        (".env.production", "secrets"),
        ("deploy/tls/server.pem", "secrets"),
        ("etc/sudoers.d/deploy", "permissions"),
        ("policies/admin-policy.json", "permissions"),
        (".github/actions/setup/action.yml", "ci_workflow"),
    ],
)
def test_sensitive_paths_are_deep(classifier: Classifier, path: str, rule: str) -> None:
    d = only(run(classifier, modify(path, ["a = 1"], ["a = 2"])))
    assert d.tier is Tier.DEEP
    assert f"deep.path.{rule}" in rules(d)


def test_dependency_manifest_is_deep(classifier: Classifier) -> None:
    d = only(run(classifier, modify("pyproject.toml", ['"httpx>=0.27"'], ['"httpx>=0.28"'])))
    assert d.tier is Tier.DEEP
    assert "deep.manifest" in rules(d)


def test_cross_file_symbol_is_deep_on_both_sides(classifier: Classifier) -> None:
    c = run(
        classifier,
        modify(
            "lib/rates.py",
            ["def convert_currency(amount):"],
            ["def convert_currency(amount, rate):"],
        ),
        modify("app/views.py", ["total = convert_currency(t)"], ["total = convert_currency(t, r)"]),
    )
    lib, app = c.decisions
    assert lib.tier is Tier.DEEP
    assert app.tier is Tier.DEEP
    assert any(
        r.rule == "deep.cross_file" and "used in app/views.py" in r.detail for r in lib.reasons
    )
    assert any(
        r.rule == "deep.cross_file"
        and "required parameter 'rate' added in lib/rates.py" in r.detail
        for r in app.reasons
    )


def test_a_new_or_compatible_symbol_does_not_link_files(classifier: Classifier) -> None:
    """Only a definition whose signature changed (or that was removed) links two files: a new
    function and its first caller, or an optional parameter added, are ordinary work."""
    new = run(
        classifier,
        modify("lib/rates.py", ["x = 0"], ["def convert_currency(amount, rate):"]),
        modify("app/views.py", ["y = 0"], ["total = convert_currency(t, r)"]),
    )
    optional = run(
        classifier,
        modify(
            "lib/rates.py",
            ["def convert_currency(amount):"],
            ["def convert_currency(amount, rate=1):"],
        ),
        modify("app/views.py", ["total = convert_currency(t)"], ["total = convert_currency(t, 2)"]),
    )
    for c in (new, optional):
        assert all("deep.cross_file" not in rules(d) for d in c.decisions)
        assert all(d.tier is not Tier.DEEP for d in c.decisions)


def test_a_removed_symbol_links_files_only_where_a_use_is_added(classifier: Classifier) -> None:
    removed = modify("lib/rates.py", ["def convert_currency(amount):", "    return amount"], [])
    cleanup = run(
        classifier,
        removed,
        modify("app/views.py", ["total = convert_currency(t)"], ["total = t"]),
    )
    assert all("deep.cross_file" not in rules(d) for d in cleanup.decisions)
    dangling = run(
        classifier,
        removed,
        modify("app/views.py", ["total = t"], ["total = convert_currency(t)"]),
    )
    assert all("deep.cross_file" in rules(d) for d in dangling.decisions)


def test_common_names_do_not_link_files(classifier: Classifier) -> None:
    c = run(
        classifier,
        modify("a.py", ["x = 0"], ["def main():"]),
        modify("b.py", ["y = 0"], ["main()"]),
    )
    assert all("deep.cross_file" not in rules(d) for d in c.decisions)


def test_public_signature_change_and_removal(classifier: Classifier) -> None:
    changed = only(
        run(classifier, modify("lib/api.py", ["def fetch(url):"], ["def fetch(url, timeout):"]))
    )
    assert "deep.public_signature" in rules(changed)
    assert any("required parameter 'timeout' added" in r.detail for r in changed.reasons)
    private = only(
        run(classifier, modify("lib/api.py", ["def _fetch(url):"], ["def _fetch(url, t):"]))
    )
    assert "deep.public_signature" not in rules(private)
    removed = only(run(classifier, modify("lib/api.go", ["func Fetch(u string) {"], ["}"])))
    assert "deep.public_api_removed" in rules(removed)


def test_control_flow_is_logic(classifier: Classifier) -> None:
    d = only(run(classifier, modify("svc/price.go", ["return p"], ["if p < 0 {", "return 0", "}"])))
    assert d.tier is Tier.LOGIC
    assert "logic.control_flow" in rules(d)


def test_many_changed_lines_are_logic(classifier: Classifier) -> None:
    new = [f"value_{i} = compute({i})" for i in range(8)]
    d = only(run(classifier, modify("calc.py", ["x = 1"], new)))
    assert d.tier is Tier.LOGIC
    assert "logic.non_trivial" in rules(d)


@pytest.mark.parametrize(
    ("path", "old", "new", "rule"),
    [
        ("a.py", ["# old note"], ["# new note"], "fast.comment_only"),
        ("a.ts", ["// old"], ["// new", "/* more */"], "fast.comment_only"),
        ("README.md", ["Old text."], ["New text."], "fast.docs"),
        ("conf/app.yaml", ["level: info"], ["level: debug"], "fast.small_config"),
        ("a.py", ["x = 1"], ["x = 2"], "fast.small_change"),
        ("tool.rb", ["x = 1"], ["x = 2"], "fast.small_change"),
    ],
)
def test_fast(classifier: Classifier, path: str, old: list[str], new: list[str], rule: str) -> None:
    d = only(run(classifier, modify(path, old, new)))
    assert d.tier is Tier.FAST
    assert rule in rules(d)


def test_large_config_is_logic(classifier: Classifier) -> None:
    new = [f"key{i}: {i}" for i in range(30)]
    d = only(run(classifier, modify("conf/app.yaml", ["a: 1"], new)))
    assert d.tier is Tier.LOGIC


def test_unknown_language_is_never_trivially_fast(classifier: Classifier) -> None:
    d = only(run(classifier, modify("lib/x.rs", ["a"], ["if a && b { c() }"])))
    assert d.tier is Tier.LOGIC


def test_symlink_escaping_the_repository_is_deep(classifier: Classifier) -> None:
    diff = (
        "diff --git a/cfg b/cfg\nnew file mode 120000\nindex 0000000..1111111\n--- /dev/null\n"
        "+++ b/cfg\n@@ -0,0 +1 @@\n+../../etc/passwd\n\\ No newline at end of file\n"
    )
    d = only(run(classifier, diff))
    assert d.tier is Tier.DEEP
    assert "deep.symlink_escape" in rules(d)


def test_an_ordinary_refactor_does_not_go_deep(classifier: Classifier) -> None:
    old = ["total = 0", "for item in items:", "    total += item.price", "return total"]
    new = ["return sum(item.price for item in items)"]
    d = only(run(classifier, modify("shop/cart.py", old, new)))
    assert d.tier is Tier.LOGIC


def test_user_rules_extend_the_defaults(default_config: LoadedConfig) -> None:
    cfg = default_config.config.classify.model_copy(
        update={
            "deep_paths": {**default_config.config.classify.deep_paths, "billing": ["billing/"]}
        }
    )
    d = only(run(Classifier(cfg), modify("billing/invoice.py", ["a = 1"], ["a = 2"])))
    assert d.tier is Tier.DEEP
    assert "deep.path.billing" in rules(d)


def test_every_hunk_ends_in_exactly_one_state(classifier: Classifier) -> None:
    text = textwrap.dedent(
        """\
        diff --git a/a.py b/a.py
        --- a/a.py
        +++ b/a.py
        @@ -1,1 +1,1 @@
        -a = 1
        +a = 2
        @@ -5,1 +5,1 @@
        -b = 1
        +b  =  1
        """
    )
    c = run(classifier, text)
    assert len(c.decisions) == 2
    for d in c.decisions:
        assert (d.tier is None) != (d.skip is None)
        assert d.reasons


def test_classification_is_deterministic(classifier: Classifier) -> None:
    text = modify("a.py", ["x"], ["subprocess.run(c, shell=True)"]) + modify(
        "b.py", ["y"], ["if z: pass"]
    )
    assert run(classifier, text) == run(classifier, text)


# --- security-domain signals (issue #6): a shape of the change + a role of the code -----------


@pytest.mark.parametrize(
    ("path", "old", "new", "role", "shape"),
    [
        (
            "net/redirects.py",
            ['STRIP_ON_REDIRECT = frozenset(["Authorization"])'],
            ['STRIP_ON_REDIRECT = frozenset(["Authorization", "Cookie"])'],
            "redirects",
            "allow_deny_list",
        ),
        (
            "web/forms/multipart.py",
            ["part = self.next_part()"],
            ["if self.count > self.max_parts:", "    raise RequestTooLarge()"],
            "request_handling",
            "rejects_input",
        ),
        (
            "pkg/parsers/semver.py",
            ['_SEMVER = re.compile(r"(\\d+)*\\.(\\d+)*")'],
            ['_SEMVER = re.compile(r"^(\\d{1,9})\\.(\\d{1,9})$")'],
            "untrusted_parsing",
            "regex_changed",
        ),
        (
            "fetch/client.py",
            ["return self.open(url)"],
            ['if not parsed.scheme in ("http", "https"):', "    return self.open(url)"],
            "untrusted_parsing",
            "origin_check",
        ),
        (
            "app/views/notes.py",
            ["note.delete()"],
            ["if note.owner_id != user.id:", "    raise PermissionDenied()", "note.delete()"],
            "access_control",
            "rejects_input",
        ),
    ],
)
def test_security_signal_names_its_role_and_shape(
    classifier: Classifier, path: str, old: list[str], new: list[str], role: str, shape: str
) -> None:
    d = only(run(classifier, modify(path, old, new)))
    assert d.tier is Tier.DEEP
    reason = next(r for r in d.reasons if r.rule.startswith("deep.security."))
    assert reason.rule == f"deep.security.{role}", reason
    assert reason.detail.startswith(f"{shape}: "), reason
    assert f"; role {role}: " in reason.detail


def test_a_shape_without_a_role_is_not_deep(classifier: Classifier) -> None:
    d = only(
        run(classifier, modify("tools/report.py", ["w = 1"], ['raise ValueError("invalid width")']))
    )
    assert d.tier is not Tier.DEEP
    assert not any(r.rule.startswith("deep.security.") for r in d.reasons)


def test_a_role_without_a_shape_is_not_deep(classifier: Classifier) -> None:
    d = only(run(classifier, modify("net/redirects.py", ["timeout = 5"], ["timeout = 10"])))
    assert d.tier is Tier.FAST


def test_comments_and_code_moved_between_functions_are_no_shape(classifier: Classifier) -> None:
    comment = only(
        run(classifier, modify("net/redirects.py", ["# old"], ["# raise ValueError('invalid')"]))
    )
    assert comment.tier is Tier.FAST
    moved = (
        "diff --git a/net/headers.py b/net/headers.py\n--- a/net/headers.py\n+++ b/net/headers.py\n"
        "@@ -10,4 +10,3 @@ def parse_header(value):\n"
        " a = 1\n-    if not value:\n-        raise InvalidHeader(value)\n b = 2\n"
        "@@ -40,3 +39,5 @@ def check_header(value):\n"
        " c = 3\n+    if not value:\n+        raise InvalidHeader(value)\n d = 4\n"
    )
    c = run(classifier, moved)
    assert all(not r.rule.startswith("deep.security.") for d in c.decisions for r in d.reasons)


def test_new_deep_patterns(classifier: Classifier) -> None:
    for line, rule in [
        ("if not hmac.compare_digest(given, expected):", "constant_time"),
        ("fd, path = tempfile.mkstemp()", "temp_files"),
        ("parser = etree.XMLParser(resolve_entities=False)", "xml_entities"),
        ("archive.extractall(dest)", "archive_members"),
    ]:
        d = only(run(classifier, modify("lib/x.py", ["x = 0"], [line])))
        assert f"deep.pattern.{rule}" in rules(d), line


def test_security_signals_are_tunable(default_config: LoadedConfig) -> None:
    base = default_config.config.classify
    diff = modify("net/redirects.py", ["a = 1"], ['if "//" in location:', "    raise InvalidURL()"])
    assert only(run(Classifier(base), diff)).tier is Tier.DEEP
    off = base.model_copy(update={"security_shapes": {}})
    assert not any(
        r.rule.startswith("deep.security.") for r in only(run(Classifier(off), diff)).reasons
    )


def test_annotations_alone_do_not_change_a_signature(classifier: Classifier) -> None:
    d = only(
        run(
            classifier,
            modify(
                "lib/api.py",
                ["def fetch(url, retries=3):"],
                ["def fetch(url: str, retries: int = 3) -> bytes:"],
            ),
        )
    )
    assert "deep.public_signature" not in rules(d)
    assert d.tier is not Tier.DEEP


def test_dunder_methods_do_not_link_files(classifier: Classifier) -> None:
    c = run(
        classifier,
        modify("a.py", ["x = 0"], ["    def __init__(self, a):"]),
        modify("b.py", ["y = 0"], ["        super().__init__(a)"]),
    )
    assert all("deep.cross_file" not in rules(d) for d in c.decisions)


def test_security_rules_keywords_cover_their_matches(default_config: LoadedConfig) -> None:
    """The keyword prefilter is sound: every match of a shape or role contains a keyword."""
    cfg = default_config.config.classify
    texts = [
        p.read_text(encoding="utf-8")
        for p in (Path(__file__).parent / "data" / "routing").glob("*.diff")
    ]
    text = "\n".join(ln[1:] for t in texts for ln in t.splitlines())
    rules_ = list(cfg.security_shapes.items()) + list(cfg.security_roles.items())
    for name, rule in rules_:
        for pattern in rule.patterns:
            for m in re.finditer(pattern, text, re.MULTILINE):
                found = m.group(0).lower()
                assert any(k in found for k in rule.keywords), (name, pattern, found)


def test_a_public_constant_edit_is_not_a_signature_change(classifier: Classifier) -> None:
    d = only(run(classifier, modify("lib/api.py", ['NAMES = ["a"]'], ['NAMES = ["a", "b"]'])))
    assert "deep.public_signature" not in rules(d)


@pytest.mark.parametrize(
    ("old", "new", "change"),
    [
        ("def fetch(url, b):", "def fetch(url):", "parameter 'b' removed"),
        ("def fetch(a, b):", "def fetch(b, a):", "parameters reordered"),
        ("def fetch(a, b=1):", "def fetch(a, b=2):", "default of 'b' changed"),
        ("def fetch(a, b=1):", "def fetch(a, b):", "parameter 'b' made required"),
        ("def fetch(url) -> str:", "def fetch(url) -> bytes:", "return type 'str' -> 'bytes'"),
        ("def fetch(url):", "def fetch(url, timeout=5):", None),
        ("def fetch(url, *, retries=3):", "def fetch(url, *, timeout=1, retries=3):", None),
        ("def fetch(url, b=1, **kw):", "def fetch(url, b=1, c=2, **kw):", None),
        ("def fetch(url) -> dict:", "def fetch(url) -> dict[str, int]:", None),
        ("def fetch(url) -> Optional[str]:", "def fetch(url) -> str | None:", None),
        ("def fetch(url) -> 'Page':", "def fetch(url) -> Page:", None),
    ],
)
def test_what_counts_as_a_public_signature_change(
    classifier: Classifier, old: str, new: str, change: str | None
) -> None:
    d = only(run(classifier, modify("lib/api.py", [old], [new])))
    found = [r.detail for r in d.reasons if r.rule == "deep.public_signature"]
    if change is None:
        assert not found
        assert d.tier is not Tier.DEEP
    else:
        assert len(found) == 1
        assert found[0].endswith(f": {change}")


def test_a_multi_line_signature_is_read_whole(classifier: Classifier) -> None:
    old = ["def fetch(url, timeout=5) -> bytes:"]
    new = ["def fetch(", "    url: str,", "    timeout: float = 5,", ") -> bytes:"]
    d = only(run(classifier, modify("lib/api.py", old, new)))
    assert "deep.public_signature" not in rules(d)


def test_a_changed_guard_condition_is_a_security_shape(classifier: Classifier) -> None:
    """The condition of a guard changed while its unchanged body rejects: the shape is seen
    through the body, which is context."""
    diff = (
        "diff --git a/lib/jwt_claims.py b/lib/jwt_claims.py\n--- a/lib/jwt_claims.py\n"
        "+++ b/lib/jwt_claims.py\n"
        "@@ -10,3 +10,3 @@ def check_issuer(payload, issuer):\n"
        '-    if payload["iss"] not in issuer:\n'
        '+    if payload["iss"] != issuer:\n'
        '         raise InvalidIssuerError("Invalid issuer")\n'
        "     return payload\n"
    )
    d = only(run(classifier, diff))
    assert d.tier is Tier.DEEP
    reason = next(r for r in d.reasons if r.rule.startswith("deep.security."))
    assert reason.rule == "deep.security.keys_tokens", reason
    # the shape is read through the unchanged body, quoted as context (" 11:")
    assert reason.detail.startswith('rejects_input:  11: raise InvalidIssuerError("Invalid'), reason
    assert "(also: guard)" in reason.detail


def test_an_early_exit_before_a_check_is_a_security_shape(classifier: Classifier) -> None:
    diff = (
        "diff --git a/app/sandbox.py b/app/sandbox.py\n--- a/app/sandbox.py\n"
        "+++ b/app/sandbox.py\n"
        "@@ -20,3 +20,6 @@ def getattr(self, obj, attribute):\n"
        "         value = getattr(obj, attribute)\n"
        "+        wrapped = self.wrap(value)\n"
        "+        if wrapped is not None:\n"
        "+            return wrapped\n"
        "         if self.is_safe_attribute(obj, attribute, value):\n"
        "             return value\n"
    )
    d = only(run(classifier, diff))
    assert d.tier is Tier.DEEP
    reason = next(r for r in d.reasons if r.rule.startswith("deep.security."))
    assert reason.rule == "deep.security.sandboxing", reason
    assert reason.detail.startswith("check_call: +23: return wrapped"), reason
