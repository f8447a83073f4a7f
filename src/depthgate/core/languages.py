"""What depthgate knows about each language: how to recognise a file, and for the languages no
grammar parses, their comments and control flow. The classifier asks; it never switches on file
names itself.

Pure: tables and compiled regular expressions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Language(StrEnum):
    PYTHON = "python"
    JAVASCRIPT = "javascript"
    TYPESCRIPT = "typescript"
    GO = "go"
    JAVA = "java"
    RUBY = "ruby"
    RUST = "rust"
    CSHARP = "csharp"
    PHP = "php"
    SHELL = "shell"
    YAML = "yaml"
    JSON = "json"
    TOML = "toml"
    DOCKERFILE = "dockerfile"
    MARKDOWN = "markdown"
    TEXT = "text"
    OTHER = "other"


_BY_SUFFIX = {
    ".py": Language.PYTHON,
    ".pyi": Language.PYTHON,
    ".js": Language.JAVASCRIPT,
    ".jsx": Language.JAVASCRIPT,
    ".mjs": Language.JAVASCRIPT,
    ".cjs": Language.JAVASCRIPT,
    ".ts": Language.TYPESCRIPT,
    ".tsx": Language.TYPESCRIPT,
    ".mts": Language.TYPESCRIPT,
    ".cts": Language.TYPESCRIPT,
    ".go": Language.GO,
    ".java": Language.JAVA,
    ".rb": Language.RUBY,
    ".rake": Language.RUBY,
    ".gemspec": Language.RUBY,
    ".rs": Language.RUST,
    ".cs": Language.CSHARP,
    ".php": Language.PHP,
    ".sh": Language.SHELL,
    ".bash": Language.SHELL,
    ".zsh": Language.SHELL,
    ".yml": Language.YAML,
    ".yaml": Language.YAML,
    ".json": Language.JSON,
    ".jsonc": Language.JSON,
    ".toml": Language.TOML,
    ".dockerfile": Language.DOCKERFILE,
    ".md": Language.MARKDOWN,
    ".markdown": Language.MARKDOWN,
    ".rst": Language.TEXT,
    ".txt": Language.TEXT,
    ".adoc": Language.TEXT,
}
_BY_NAME = {
    "dockerfile": Language.DOCKERFILE,
    "containerfile": Language.DOCKERFILE,
    "rakefile": Language.RUBY,
    "gemfile": Language.RUBY,
    "readme": Language.TEXT,
    "license": Language.TEXT,
    "changelog": Language.TEXT,
    "authors": Language.TEXT,
}


def detect(path: str) -> Language:
    # plain string operations: pathlib costs more than the rest of the classifier's file work
    lower = path.rsplit("/", 1)[-1].lower()
    if lower in _BY_NAME:
        return _BY_NAME[lower]
    if lower.startswith(("dockerfile.", "containerfile.")):
        return Language.DOCKERFILE
    dot = lower.rfind(".")
    return _BY_SUFFIX.get(lower[dot:], Language.OTHER) if dot > 0 else Language.OTHER


@dataclass(frozen=True)
class Syntax:
    """Per-language knowledge the classifier uses."""

    comment: re.Pattern[str] | None  # a line that is only a comment
    control_flow: re.Pattern[str] | None
    indentation_matters: bool = False
    is_code: bool = True
    is_config: bool = False
    is_docs: bool = False


_HASH_COMMENT = re.compile(r"^\s*#")
_C_FLOW = re.compile(
    r"\b(if|else|for|while|do|switch|case|default|try|catch|finally|return|throw|break|continue|"
    r"goto|defer|select|await|yield)\b|&&|\|\||\?\?"
)

SYNTAX: dict[Language, Syntax] = {
    # Comments, strings, control flow, definitions and signatures of the parsed languages are
    # the syntax layer's (core/syntax.py, core/signatures.py): nothing of them is read by line.
    Language.PYTHON: Syntax(
        comment=None,
        control_flow=None,
        indentation_matters=True,
    ),
    Language.JAVASCRIPT: Syntax(
        comment=None,
        control_flow=None,
    ),
    Language.GO: Syntax(
        comment=None,
        control_flow=None,
    ),
    Language.JAVA: Syntax(
        comment=None,
        control_flow=None,
    ),
    Language.SHELL: Syntax(
        comment=None,
        control_flow=None,
    ),
    Language.YAML: Syntax(
        comment=_HASH_COMMENT,
        control_flow=None,
        indentation_matters=True,
        is_code=False,
        is_config=True,
    ),
    Language.JSON: Syntax(comment=None, control_flow=None, is_code=False, is_config=True),
    Language.TOML: Syntax(
        comment=_HASH_COMMENT,
        control_flow=None,
        is_code=False,
        is_config=True,
    ),
    Language.DOCKERFILE: Syntax(comment=_HASH_COMMENT, control_flow=None, is_config=True),
    Language.MARKDOWN: Syntax(comment=None, control_flow=None, is_code=False, is_docs=True),
    Language.TEXT: Syntax(comment=None, control_flow=None, is_code=False, is_docs=True),
    # Unknown languages: treated as code, with the C-family's control flow and both comment
    # styles, so a change in a language we do not know is never waved through as trivial.
    Language.OTHER: Syntax(
        comment=re.compile(r"^\s*(#|//|/\*|\*|\*/|--|;)"),
        control_flow=_C_FLOW,
    ),
}
SYNTAX[Language.TYPESCRIPT] = SYNTAX[Language.JAVASCRIPT]
# Languages the syntax layer (core/syntax.py) parses, with no line-level tables of their own.
for _lang in (Language.RUBY, Language.RUST, Language.CSHARP, Language.PHP):
    SYNTAX[_lang] = SYNTAX[Language.OTHER]


def syntax(language: Language) -> Syntax:
    return SYNTAX[language]
