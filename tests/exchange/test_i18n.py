"""Every string a template translates has a zh-CN translation (zh-CN is the default locale)."""

from __future__ import annotations

import re

from exchange.core.i18n import catalogue
from exchange.settings import REPO_ROOT

TEMPLATES = REPO_ROOT / "frontend" / "templates"
LITERAL = re.compile(r"""_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


def template_strings() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(TEMPLATES.rglob("*.html")):
        for m in LITERAL.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(m.group(1) or m.group(2), str(path.relative_to(TEMPLATES)))
    return found


def test_every_template_string_has_a_chinese_translation() -> None:
    zh = catalogue("zh-CN")
    missing = {text: where for text, where in template_strings().items() if text not in zh}
    assert not missing, f"{len(missing)} template strings lack zh-CN translations: {missing}"


def test_translations_are_not_left_in_english() -> None:
    zh = catalogue("zh-CN")
    untranslated = [
        k for k, v in zh.items() if v == k and re.search(r"[A-Za-z]{4,}", k) and k not in ("API", "CSV", "XLSX")
    ]
    assert len(untranslated) <= 5, untranslated
