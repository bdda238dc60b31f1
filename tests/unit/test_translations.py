"""The zh-hans catalogue: complete, compiled from its current text, and used by the pages.

The .po is parsed in pure Python (polib is not a dependency); the committed .mo is read with the
standard library's ``gettext``, the same reader Django uses.
"""

import ast
import gettext
from pathlib import Path

import pytest

import loudou

CATALOGUE = Path(loudou.__file__).parent / "locale" / "zh_Hans" / "LC_MESSAGES"
PO = CATALOGUE / "django.po"
MO = CATALOGUE / "django.mo"


class Entry:
    """One message of a .po file: context, msgid, plural msgid, msgstr(s) and flags."""

    def __init__(self):
        self.flags = set()
        self.fields = {}

    @property
    def msgid(self):
        return self.fields.get("msgid")

    @property
    def key(self):
        """The message's key in a compiled catalogue (context joined with EOT)."""
        ctxt = self.fields.get("msgctxt")
        return self.msgid if ctxt is None else f"{ctxt}\x04{self.msgid}"

    @property
    def translations(self):
        """{index: msgstr}; a singular message has the single index ``None``."""
        if "msgstr" in self.fields:
            return {None: self.fields["msgstr"]}
        return {
            int(name[len("msgstr[") : -1]): text
            for name, text in self.fields.items()
            if name.startswith("msgstr[")
        }


def parse_po(path):
    """Every non-obsolete entry of the .po at ``path``, header included, in file order."""
    entries, entry, field = [], None, None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            entry = field = None
            continue
        if line.startswith("#~"):  # obsolete entry
            continue
        if entry is None:
            entry = Entry()
            entries.append(entry)
        if line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            entry.fields[field] += ast.literal_eval(line)
        else:
            field, _, text = line.partition(" ")
            entry.fields[field] = ast.literal_eval(text)
    return entries


def messages():
    """The translatable entries of the catalogue (everything but the header)."""
    return [e for e in parse_po(PO) if e.msgid or "msgctxt" in e.fields]


def test_catalogue_is_not_empty_and_declares_chinese():
    """The parser found the catalogue's messages and its header is set for zh_Hans."""
    header = next(e for e in parse_po(PO) if e.msgid == "")
    assert len(messages()) > 100
    assert "Language: zh_Hans\n" in header.fields["msgstr"]
    assert "charset=UTF-8" in header.fields["msgstr"]
    assert "Plural-Forms: nplurals=1; plural=0;" in header.fields["msgstr"]
    assert "fuzzy" not in header.flags


def test_every_message_is_translated_and_none_is_fuzzy():
    """No msgid is left with an empty msgstr and no entry still carries a ``fuzzy`` flag,
    so every string of the UI has a checked Chinese translation."""
    untranslated = [e.msgid for e in messages() if not all(e.translations.values())]
    fuzzy = [e.msgid for e in messages() if "fuzzy" in e.flags]
    assert untranslated == []
    assert fuzzy == []


def test_compiled_catalogue_matches_the_po():
    """Every message of the .po is in the committed .mo with the same translation, so the .mo
    was compiled from the current .po (a stale .mo would lack new msgids or show old text)."""
    with MO.open("rb") as f:
        catalog = gettext.GNUTranslations(f)._catalog
    stale = []
    for entry in messages():
        for index, text in entry.translations.items():
            key = entry.key if index is None else (entry.key, index)
            if catalog.get(key) != text:
                stale.append(entry.msgid)
    assert stale == []


@pytest.mark.parametrize(
    ("language", "expected", "absent"),
    [("zh-hans", "工作台", "Dashboard"), ("en", "Dashboard", "工作台")],
)
def test_dashboard_speaks_the_requested_language(client, org, language, expected, absent):
    """The dashboard of a logged-in user is rendered through the catalogue: in Chinese when the
    browser asks for zh-hans, in English when it asks for en, with no word of the other."""
    client.force_login(org.east_rep)
    response = client.get("/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    html = response.content.decode()
    assert expected in html
    assert absent not in html
