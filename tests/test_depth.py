"""Depth from the enclosing code (issue #11 item 3): per language, a change that reaches a sink in
its enclosing definition goes deep and says why; comment, docstring and string-only edits go
fast; a change beside a sink that does not reach it stays where its own lines put it.

The cases are written from each language's semantics and the sink catalogues' families, with the
whole file as the source (``--repo``) and, where it matters, from the diff alone.
"""

from __future__ import annotations

import difflib

import pytest

from depthgate.core.classify import Classifier, HunkDecision
from depthgate.core.diff import parse_diff
from depthgate.core.errors import ConfigError
from depthgate.core.plan import build_plan, plan_to_dict, render_text
from depthgate.core.routes import LoadedConfig, Tier, parse_config
from depthgate.core.source import FileSource, SourceMode, Sources
from depthgate.core.syntax import CodeIndex


def diff_of(path: str, old: str, new: str) -> str:
    body = "".join(
        difflib.unified_diff(
            old.splitlines(True), new.splitlines(True), f"a/{path}", f"b/{path}", n=3
        )
    )
    return f"diff --git a/{path} b/{path}\n{body}"


def decide(
    classifier: Classifier, path: str, old: str, new: str, *, source: bool = True
) -> HunkDecision:
    sources = Sources(SourceMode.REPO, {path: FileSource(path, old, new)}) if source else Sources()
    c = classifier.classify(parse_diff(diff_of(path, old, new)), index=CodeIndex(sources))
    (d,) = c.decisions
    return d


def sink_reason(d: HunkDecision) -> str:
    found = [r for r in d.reasons if r.rule.startswith("deep.sink.")]
    assert found, [(r.rule, r.detail) for r in d.reasons]
    return f"{found[0].rule}: {found[0].detail}"


@pytest.fixture
def classifier(default_config: LoadedConfig) -> Classifier:
    return Classifier(default_config.config.classify)


FILLER = "".join(f"    step_{i} = prepare(step_{i - 1 if i else 'x'})\n" for i in range(10))

# A guard in front of the sink changes, ten lines above it: git's context does not show the sink.
GUARDED = {
    "calc/evaluate.py": (
        "def evaluate(expr, env):\n"
        '    """Evaluate arithmetic."""\n'
        "    if not ARITH.fullmatch(expr):\n"
        '        raise ValueError("refused")\n' + FILLER + "    return eval(expr, env)\n",
        "if not ARITH.fullmatch(expr):",
        "if not expr:",
        "deep.sink.eval: enclosing evaluate() calls eval (line 15); guard changed on +3",
    ),
    "lib/plugins.js": (
        "function loadPlugin(name) {\n"
        "  if (!/^[a-z-]+$/.test(name)) {\n"
        '    throw new Error("bad plugin name");\n'
        "  }\n"
        + "".join(f"  const v{i} = step({i});\n" for i in range(10))
        + "  return require(name);\n}\n",
        "if (!/^[a-z-]+$/.test(name)) {",
        "if (!name) {",
        "deep.sink.",
    ),
    "src/Page.tsx": (
        "export function Page({ html }: { html: string }) {\n"
        "  if (!isTrusted(html)) {\n"
        "    return null;\n"
        "  }\n"
        + "".join(f"  const v{i} = step({i});\n" for i in range(10))
        + "  return <div dangerouslySetInnerHTML={{ __html: html }} />;\n}\n",
        "  if (!isTrusted(html)) {",
        "  if (html === undefined) {",
        "deep.sink.html: enclosing Page() has 'dangerouslySetInnerHTML' (line 15); "
        "guard changed on +2",
    ),
    "cmd/run.go": (
        "package main\n\nfunc run(arg string) error {\n"
        '\tif strings.ContainsAny(arg, ";|&") {\n'
        '\t\treturn errors.New("refused")\n'
        "\t}\n"
        + "".join(f"\tv{i} := step({i})\n" for i in range(10))
        + '\treturn exec.Command("sh", "-c", arg).Run()\n}\n',
        '\tif strings.ContainsAny(arg, ";|&") {',
        '\tif arg == "" {',
        "deep.sink.shell: enclosing run() calls exec.Command (line 17); guard changed on +4",
    ),
    "src/Files.java": (
        "class Files {\n  byte[] read(String name) throws IOException {\n"
        '    if (name.contains("..")) {\n'
        '      throw new IOException("refused");\n'
        "    }\n"
        + "".join(f"    int v{i} = step({i});\n" for i in range(10))
        + "    return java.nio.file.Files.readAllBytes(Paths.get(ROOT, name));\n  }\n}\n",
        '    if (name.contains("..")) {',
        "    if (name.isEmpty()) {",
        "deep.sink.path: enclosing read() calls",
    ),
    "app/models/report.rb": (
        "class Report\n  def self.sorted(column)\n"  # noqa: S608 - the Ruby code under test, not a query
        "    raise ArgumentError unless ALLOWED.include?(column)\n"
        + "".join(f"    v{i} = step({i})\n" for i in range(10))
        + '    find_by_sql("SELECT * FROM reports ORDER BY #{column}")\n  end\nend\n',
        "    raise ArgumentError unless ALLOWED.include?(column)",
        "    raise ArgumentError if column.nil?",
        "deep.sink.sql: enclosing sorted() calls find_by_sql (line 14); guard changed on +3",
    ),
    "src/pattern.rs": (
        "fn compile(user: &str) -> Result<Regex, Error> {\n"
        "    if user.len() > 100 {\n"
        "        return Err(Error::TooLong);\n"
        "    }\n"
        + "".join(f"    let v{i} = step({i});\n" for i in range(10))
        + "    Regex::new(user)\n}\n",
        "    if user.len() > 100 {",
        "    if user.len() > 100_000 {",
        "deep.sink.regex: enclosing compile() calls Regex::new (line 15); guard changed on +2",
    ),
    "Controllers/Download.cs": (
        "class Download {\n  public IActionResult Get(string name) {\n"
        '    if (name.Contains("..")) {\n'
        "      return BadRequest();\n"
        "    }\n"
        + "".join(f"    var v{i} = Step({i});\n" for i in range(10))
        + '    return PhysicalFile(Path.Combine(Root, name), "text/plain");\n  }\n}\n',
        '    if (name.Contains("..")) {',
        "    if (name.Length == 0) {",
        "deep.sink.path: enclosing Get() calls",
    ),
    "src/view.php": (
        "<?php\nfunction show($page) {\n"
        '    if (!preg_match("/^[a-z]+$/", $page)) {\n'
        "        return;\n"
        "    }\n"
        + "".join(f"    $v{i} = step({i});\n" for i in range(10))
        + '    include "pages/" . $page . ".php";\n}\n',
        '    if (!preg_match("/^[a-z]+$/", $page)) {',
        "    if (!$page) {",
        "deep.sink.dynamic_import: enclosing show() has 'include \"pages/\" . $' (line 16); "
        "guard changed on +3",
    ),
    "bin/deploy.sh": (
        "deploy() {\n"
        '  if [ -z "$1" ]; then\n'
        "    return 1\n"
        "  fi\n" + "".join(f"  step{i}\n" for i in range(10)) + '  eval "$1"\n}\n',
        '  if [ -z "$1" ]; then',
        '  if [ "$1" = "" ]; then',
        "deep.sink.eval: enclosing deploy() calls eval (line 15); guard changed on +2",
    ),
}


@pytest.mark.parametrize("path", sorted(GUARDED))
def test_a_guard_changed_in_front_of_a_sink_goes_deep_with_source(
    classifier: Classifier, path: str
) -> None:
    text, before, after, reason = GUARDED[path]
    assert before in text
    d = decide(classifier, path, text, text.replace(before, after))
    assert d.tier is Tier.DEEP
    assert sink_reason(d).startswith(reason)
    assert d.enclosing
    assert d.enclosing[0].kind in ("function", "method")
    assert d.enclosing[0].whole


def test_without_source_the_sink_out_of_sight_is_not_seen(classifier: Classifier) -> None:
    text, before, after, _ = GUARDED["calc/evaluate.py"]
    d = decide(classifier, "calc/evaluate.py", text, text.replace(before, after), source=False)
    assert not any(r.rule.startswith("deep.sink.") for r in d.reasons)
    assert d.enclosing[0].whole is False


def test_a_log_message_or_an_unrelated_local_beside_a_sink_is_not_deep(
    classifier: Classifier,
) -> None:
    text, _, _, _ = GUARDED["calc/evaluate.py"]
    message = decide(
        classifier, "calc/evaluate.py", text, text.replace('"refused"', '"refused: not arithmetic"')
    )
    assert message.tier is Tier.FAST
    assert message.decided_by is not None
    assert message.decided_by.rule == "fast.strings_only"
    rename = decide(
        classifier,
        "calc/evaluate.py",
        text,
        text.replace("step_5 = prepare(step_4)", "step_five = prepare(step_4)"),
    )
    assert rename.tier is Tier.FAST
    # after the sink, a change cannot feed it
    tail = text + "\n\ndef other():\n    x = 1\n    return x\n"
    after = decide(classifier, "calc/evaluate.py", tail, tail.replace("x = 1", "x = 2"))
    assert after.tier is Tier.FAST


def test_data_that_reaches_the_sink_goes_deep(classifier: Classifier) -> None:
    old = (
        "def run(user):\n"
        "    cmd = quote(user)\n" + FILLER + '    return subprocess.run(["sh", "-c", cmd])\n'
    )
    new = old.replace("cmd = quote(user)", "cmd = user")
    d = decide(classifier, "tools/run.py", old, new)
    assert d.tier is Tier.DEEP
    assert "calls subprocess.run (line 13); data 'cmd' changed on +2" in sink_reason(d)


@pytest.mark.parametrize(
    ("path", "old", "new"),
    [
        # a docstring edit
        (
            "svc/a.py",
            'def f(x):\n    """Return x if it is set or not."""\n    return x\n',
            'def f(x):\n    """Return x, if it is set, or None."""\n    return x\n',
        ),
        # a string literal: the words "if ... or not" are no control flow
        ("svc/a.py", 'MSG = "retry"\n', 'MSG = "retry if it failed or not"\n'),
        # comments in JavaScript, one of them mentioning eval()
        ("web/a.js", "// calls eval(x) when asked\nrun();\n", "// never calls eval(x)\nrun();\n"),
        # a Go string and a trailing comment
        ("cmd/a.go", 'package a\n\nvar msg = "a" // x\n', 'package a\n\nvar msg = "b" // y\n'),
    ],
)
def test_comments_docstrings_and_strings_only_go_fast(
    classifier: Classifier, path: str, old: str, new: str
) -> None:
    for source in (True, False):
        d = decide(classifier, path, old, new, source=source)
        assert d.tier is Tier.FAST, (source, [(r.rule, r.detail) for r in d.reasons])
        assert d.decided_by is not None
        assert d.decided_by.rule in ("fast.comment_only", "fast.strings_only")


def test_control_flow_is_the_parsers(classifier: Classifier) -> None:
    d = decide(
        classifier, "svc/a.py", "def f(x):\n    return x\n", "def f(x):\n    return x or 0\n"
    )
    assert d.decided_by is not None
    assert d.decided_by.rule == "logic.control_flow"


# --- the examples of the issue -----------------------------------------------------------------


def test_dangerously_set_inner_html_in_tsx_goes_deep(classifier: Classifier) -> None:
    old = "export function Note({ text }: { text: string }) {\n  return <p>{text}</p>;\n}\n"
    new = old.replace("<p>{text}</p>", "<p dangerouslySetInnerHTML={{ __html: text }} />")
    for source in (True, False):
        d = decide(classifier, "src/Note.tsx", old, new, source=source)
        assert d.tier is Tier.DEEP
        assert sink_reason(d).startswith("deep.sink.html: enclosing Note() has")


def test_token_urlsafe_to_random_goes_deep(classifier: Classifier) -> None:
    old = "import secrets\n\n\ndef new_token():\n    return secrets.token_urlsafe(32)\n"
    new = "import random\n\n\ndef new_token():\n    return str(random.random())\n"
    for source in (True, False):
        d = decide(classifier, "src/crypto/tokens.py", old, new, source=source)
        assert d.tier is Tier.DEEP
        assert "deep.sink.randomness: enclosing new_token()" in sink_reason(d)


def test_inner_html_assignment_goes_deep(classifier: Classifier) -> None:
    old = "function show(el, text) {\n  el.textContent = text;\n}\n"
    new = "function show(el, text) {\n  el.innerHTML = text;\n}\n"
    d = decide(classifier, "lib/show.js", old, new)
    assert d.tier is Tier.DEEP
    assert sink_reason(d) == (
        "deep.sink.html: enclosing show() has '.innerHTML =' (line 2); sink changed on +2"
    )


def test_object_key_hardening_goes_deep(classifier: Classifier) -> None:
    old = (
        "function setIn(obj, path, value) {\n  let cur = obj;\n"
        "  for (const key of path) {\n    cur = cur[key] = cur[key] || {};\n  }\n}\n"
    )
    new = old.replace(
        "  for (const key of path) {\n",
        '  for (const key of path) {\n    if (key === "__proto__") break;\n',
    )
    d = decide(classifier, "lib/set.js", old, new)
    assert d.tier is Tier.DEEP
    assert sink_reason(d).startswith("deep.sink.object_keys: enclosing setIn()")


# --- the catalogues are the user's too ---------------------------------------------------------


BASE = """
version: 1
gateway: {base_url_env: GW_URL, api_key_env: GW_KEY}
routes:
  r: {send_model: r, locked_model: m, max_input_tokens: 10000, max_output_tokens: 1000}
tiers: {fast: r, logic: r, deep: r}
"""


def test_sinks_are_extended_and_switched_off_in_classify() -> None:
    text = BASE + (
        "classify:\n  sinks:\n"
        "    python.eval: []\n"
        "    acme.render:\n      kind: html\n      languages: [python]\n"
        "      calls: [render_unsafe]\n"
    )
    cfg = parse_config(text, "gateway-routes.yaml")
    assert "python.eval" not in cfg.classify.sinks
    assert "python.shell" in cfg.classify.sinks  # the rest of the defaults stay
    clf = Classifier(cfg.classify)
    old = "def page(x):\n    y = clean(x)\n" + FILLER + "    return render_unsafe(y)\n"
    d = decide(clf, "web/page.py", old, old.replace("clean(x)", "x"))
    assert sink_reason(d).startswith("deep.sink.html: enclosing page() calls render_unsafe")


def test_a_sink_without_anything_to_match_is_refused() -> None:
    text = BASE + "classify:\n  sinks:\n    acme.x:\n      kind: html\n      languages: [python]\n"
    with pytest.raises(ConfigError, match="a sink needs calls, patterns or nodes"):
        parse_config(text, "gateway-routes.yaml")


# --- plan shows it -----------------------------------------------------------------------------


def test_plan_shows_the_enclosing_definition_and_the_deciding_signal(
    default_config: LoadedConfig,
) -> None:
    text, before, after, _ = GUARDED["calc/evaluate.py"]
    new = text.replace(before, after)
    sources = Sources(
        SourceMode.REPO, {"calc/evaluate.py": FileSource("calc/evaluate.py", text, new)}
    )
    plan = build_plan(
        parse_diff(diff_of("calc/evaluate.py", text, new)), default_config, sources=sources
    )
    assert plan.index.sources is sources  # one parse, kept for the packer
    (hunk,) = plan_to_dict(plan)["files"][0]["hunks"]
    assert hunk["decided_by"] == "deep.sink.eval"
    assert hunk["enclosing"][0] == {
        "side": "new",
        "kind": "function",
        "name": "evaluate",
        "start": 1,
        "end": 15,
        "whole_file": True,
    }
    shown = render_text(plan, verbose=True)
    assert "-> deep  (decided by deep.sink.eval)" in shown
    assert "in function evaluate() (lines 1-15), new side" in shown
