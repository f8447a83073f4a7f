"""When a change reaches a sink, and when it only sits next to one (issue #11's second wave):
regular expressions are data until applied, a name reaches a sink only through a value that
changed, a compiled pattern's methods apply it, and a changed parameter default is a security
shape in code with a security role. Every case is a hand-written file and the answer a reviewer
would give for it."""

from __future__ import annotations

import difflib

import pytest

from depthgate.core.classify import Classifier, HunkDecision
from depthgate.core.diff import parse_diff
from depthgate.core.routes import LoadedConfig, Tier
from depthgate.core.source import FileSource, SourceMode, Sources
from depthgate.core.syntax import CodeIndex


def decide(classifier: Classifier, path: str, old: str, new: str) -> HunkDecision:
    body = "".join(
        difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{path}", f"b/{path}")
    )
    sources = Sources(SourceMode.REPO, {path: FileSource(path, old, new)})
    c = classifier.classify(
        parse_diff(f"diff --git a/{path} b/{path}\n{body}"), index=CodeIndex(sources)
    )
    (d,) = c.decisions
    return d


def rules(d: HunkDecision) -> list[str]:
    return [r.rule for r in d.reasons]


@pytest.fixture
def classifier(default_config: LoadedConfig) -> Classifier:
    return Classifier(default_config.config.classify)


TABLE = """function table(cap) {
  const rows = cap[3] ? cap[3].replace(/\\n[ \\t]*$/, '').split('\\n') : [];
  return rows;
}
"""


def test_a_line_edited_beside_an_unchanged_regex_is_not_a_regex_change(
    classifier: Classifier,
) -> None:
    new = TABLE.replace("cap[3] ?", "cap[3] && cap[3].trim() ?")
    d = decide(classifier, "src/table.js", TABLE, new)
    assert "deep.sink.regex" not in rules(d)
    assert d.tier is not Tier.DEEP


def test_a_changed_pattern_is_a_regex_change(classifier: Classifier) -> None:
    new = TABLE.replace("/\\n[ \\t]*$/", "/\\n[ \\t]*(?:\\n|$)/")
    d = decide(classifier, "src/table.js", TABLE, new)
    assert "deep.sink.regex" in rules(d)


BRANCH = """function contentType(headers, data) {
  if (isFormData(data)) {
    headers.set(type.replace(/;+$/, ''));
  }
  return headers;
}
"""


def test_a_branch_around_a_regex_decides_nothing_it_matches(classifier: Classifier) -> None:
    new = BRANCH.replace("isFormData(data)", "isFormData(data) || isBlob(data)")
    d = decide(classifier, "src/headers.js", BRANCH, new)
    assert "deep.sink.regex" not in rules(d)


XML = """function parseXML(data) {
  var xml;
  if (!data) {
    return null;
  }
  xml = new DOMParser().parseFromString(data, 'text/xml');
  return xml;
}
"""


def test_a_name_declared_again_without_a_value_carries_no_data(classifier: Classifier) -> None:
    new = XML.replace("  var xml;\n", "  var xml, errors;\n")
    d = decide(classifier, "src/xml.js", XML, new)
    assert "deep.sink.html" not in rules(d)
    # the control: a value that changes does reach the sink through the name
    changed = XML.replace(
        "  xml = new DOMParser().parseFromString(data, 'text/xml');",
        "  data = data.trim();\n  xml = new DOMParser().parseFromString(data, 'text/xml');",
    )
    assert "deep.sink.html" in rules(decide(classifier, "src/xml.js", XML, changed))


WORDS = """import re

WORDS_RE = re.compile(r"<[^>]+?>|([^<>\\s]+)", re.S)


def count_words(text):
    total = 0
    pos = 0
    while True:
        m = WORDS_RE.search(text, pos)
        if m is None:
            return total
        total += 1
        pos = m.end()
"""


def test_a_compiled_patterns_method_applies_the_regex(classifier: Classifier) -> None:
    new = WORDS.replace(
        "        m = WORDS_RE.search(text, pos)", "        m = WORDS_RE.match(text, pos)"
    )
    d = decide(classifier, "app/text.py", WORDS, new)
    assert "deep.sink.regex" in rules(d)
    reason = next(r for r in d.reasons if r.rule == "deep.sink.regex")
    assert "calls WORDS_RE.match" in reason.detail


PARSER = """class SafeHTMLParser(HTMLParser):
    def _parse(self, stream, container="div", scripting=False, **kwargs):
        self.container = container
        return super()._parse(stream, scripting=scripting, **kwargs)
"""


def test_a_default_changed_in_code_with_a_role_is_a_security_shape(
    classifier: Classifier,
) -> None:
    new = PARSER.replace("scripting=False,", "scripting=True,")
    d = decide(classifier, "lib/html_shim.py", PARSER, new)
    assert d.tier is Tier.DEEP
    reason = next(r for r in d.reasons if r.rule.startswith("deep.security."))
    assert reason.detail.startswith("default_changed: -2: def _parse("), reason
    assert "scripting=False" in reason.detail


def test_a_default_changed_without_a_role_is_ordinary(classifier: Classifier) -> None:
    old = "def _format_total(amount, places=2):\n    return round(amount, places)\n"
    d = decide(classifier, "lib/money.py", old, old.replace("places=2", "places=3"))
    assert not any(r.startswith("deep.security.") for r in rules(d))


COOKIES = """export function readToken(config, url) {
  const token = (config.withCredentials || isURLSameOrigin(url)) && cookies.read(config.name);
  return token;
}
"""


def test_a_camel_case_security_predicate_is_a_check(classifier: Classifier) -> None:
    new = COOKIES.replace(
        "(config.withCredentials || isURLSameOrigin(url))", "isURLSameOrigin(url)"
    )
    d = decide(classifier, "lib/xsrf.js", COOKIES, new)
    assert any(r.rule.startswith("deep.security.") for r in d.reasons), d.reasons
    reason = next(r for r in d.reasons if r.rule.startswith("deep.security."))
    assert reason.detail.startswith("check_call:"), reason


PATTERN = """import re

__version__ = "1.0"
NAME_PATTERN = r"^[a-z]+$"


def check(name):
    return re.match(NAME_PATTERN, name)
"""


def test_a_module_level_pattern_reaches_the_regex_that_reads_it(classifier: Classifier) -> None:
    new = PATTERN.replace('r"^[a-z]+$"', 'r"^[a-z]+[a-z0-9_]*$"')
    d = decide(classifier, "app/names.py", PATTERN, new)
    reason = next(r for r in d.reasons if r.rule == "deep.sink.regex")
    assert "module-level 'NAME_PATTERN' changed" in reason.detail
    # the control: a constant no sink reads is a string edit
    bump = decide(classifier, "app/names.py", PATTERN, PATTERN.replace('"1.0"', '"1.1"'))
    assert bump.tier is Tier.FAST


COMPILER = """function lookup(name) {
  return ["container.lookup", '(depths, "', name, '")'];
}

function fail(name) {
  throw new Error('Unknown option "' + name + '"');
}
"""


def test_code_built_as_text_from_data_is_a_codegen_sink(classifier: Classifier) -> None:
    new = COMPILER.replace(
        """["container.lookup", '(depths, "', name, '")']""",
        """["container.lookup", '(depths, ', JSON.stringify(name), ')']""",
    )
    d = decide(classifier, "lib/compiler.js", COMPILER, new)
    assert "deep.sink.codegen" in rules(d)
    # the control: a message that quotes a value is no generated code
    message = COMPILER.replace("Unknown option", "Unknown setting")
    assert "deep.sink.codegen" not in rules(
        decide(classifier, "lib/compiler.js", COMPILER, message)
    )


def test_a_limit_named_once_is_no_role_of_its_own(classifier: Classifier) -> None:
    """A shape and a role read off the same token say one thing: a new MAX_* constant is a
    size limit (the shape), and by that same name only, "limits" code (the role)."""
    old = "MAX_LENGTH = 256\nRELEASES = ['major', 'minor']\n"
    new = "MAX_LENGTH = 256\nMAX_BUILD_LENGTH = MAX_LENGTH - 6\nRELEASES = ['major', 'minor']\n"
    d = decide(classifier, "lib/constants.py", old, new)
    assert not any(r.startswith("deep.security.") for r in rules(d)), d.reasons
    # the control: a limit enforced where the code parses a request is deep
    handler = "def parse_request(body):\n    return decode(body)\n"
    limited = (
        "def parse_request(body):\n"
        "    if len(body) > MAX_BODY:\n"
        "        raise ValueError('request body too large')\n"
        "    return decode(body)\n"
    )
    assert any(
        r.startswith("deep.security.")
        for r in rules(decide(classifier, "app/parse.py", handler, limited))
    )


def test_a_class_name_in_a_repr_is_display_data(classifier: Classifier) -> None:
    old = 'class Part:\n    def __repr__(self):\n        return "<%s>" % self.__class__.__name__\n'
    new = old.replace('"<%s>"', '"<%s part>"').replace("% self", "% (self")
    new = new.replace("__name__\n", "__name__,)\n")
    d = decide(classifier, "lib/parts.py", old, new)
    assert "deep.sink.object_keys" not in rules(d)
    # the control: walking from an object to its class's bases is what class pollution does
    walk = old.replace("self.__class__.__name__", "self.__class__.__mro__[-1]")
    assert "deep.sink.object_keys" in rules(decide(classifier, "lib/parts.py", old, walk))
