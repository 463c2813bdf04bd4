"""Words for yes, no and "not recorded" in the languages clinics write their exports in.

A clinic's export says ``ja``/``nein``, ``oui``/``non`` or ``sí``/``no`` in its yes/no columns and
``k.A.``, ``n.v.`` or ``n.d.`` where nothing was recorded. Rather than a code list per column, a
source (or the whole configuration) names its languages, and may add words of its own:

.. code-block:: toml

    [vocabulary]                 # every source
    languages = ["de", "fr"]     # default: all six built in
    missing = ["fehlt"]          # more words meaning "not recorded"

    [sources.vocabulary]         # one source: its languages replace the global ones
    languages = ["nl"]
    yes = ["jawel"]

Words are matched ignoring case and surrounding spaces. Nothing happens at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

# language code -> (yes words, no words, "not recorded" tokens)
LANGUAGES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "en": (("yes", "y", "true"), ("no", "n", "false"), ("NA", "N/A", "n/a", "missing", "n.a.")),
    "de": (
        ("ja", "j", "wahr"),
        ("nein", "falsch"),
        ("k.A.", "k. A.", "kA", "n.v.", "n.b.", "nicht erhoben", "fehlt"),
    ),
    "fr": (("oui", "vrai"), ("non", "faux"), ("n.d.", "ND", "NR", "non renseigné", "manquant")),
    "es": (("sí", "si", "s", "verdadero"), ("no", "falso"), ("n.d.", "s/d", "sin dato", "NS/NC")),
    "it": (("sì", "si", "vero"), ("no", "falso"), ("n.d.", "n.r.", "mancante", "non rilevato")),
    "nl": (("ja", "j", "waar"), ("nee", "onwaar"), ("n.v.t.", "onbekend", "ontbreekt", "nvt")),
}


@dataclass(frozen=True)
class Vocabulary:
    """The yes, no and missing words one source is read with (all case-folded).

    Attributes
    ----------
    languages : tuple of str
        Language codes of :data:`LANGUAGES` in use.
    yes, no, missing : tuple of str
        Every word meaning yes, no, or "not recorded": the languages' and the configured ones.
    """

    languages: tuple[str, ...] = tuple(LANGUAGES)
    yes: tuple[str, ...] = ()
    no: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        languages: tuple[str, ...] = tuple(LANGUAGES),
        yes: tuple[str, ...] = (),
        no: tuple[str, ...] = (),
        missing: tuple[str, ...] = (),
    ) -> Vocabulary:
        """Collect the built-in words of ``languages`` with the configured ones."""

        def words(k: int, own: tuple[str, ...]) -> list[str]:
            return [w for lang in languages for w in LANGUAGES[lang][k]] + list(own)

        def folded(k: int, own: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(dict.fromkeys(fold(w) for w in words(k, own)))

        return cls(tuple(languages), folded(0, yes), folded(1, no), folded(2, missing))

    def missing_spellings(self) -> tuple[str, ...]:
        """Return the missing tokens as an export may write them (for exact matching)."""
        every = [w for lang in self.languages for w in LANGUAGES[lang][2]] + list(self.missing)
        return spellings(tuple(every))

    def clashes(self) -> str | None:
        """Return a word listed as two of yes, no and missing, if any (which would it be?)."""
        seen: dict[str, str] = {}
        for kind, words in (("yes", self.yes), ("no", self.no), ("missing", self.missing)):
            for word in words:
                if seen.setdefault(word, kind) != kind:
                    return f"'{word}' is both a {seen[word]} word and a {kind} word"
        return None


def fold(word: str) -> str:
    """Write a word as vocabularies compare it: case-folded, single spaces, no surrounding ones."""
    return " ".join(word.split()).casefold()


def spellings(words: tuple[str, ...]) -> tuple[str, ...]:
    """Return the ways an export writes ``words``: as given, lower and upper case, capitalised."""
    forms = (str.lower, str.upper, str.capitalize, str.title)
    out = [w for word in words for w in (word, *(f(word) for f in forms))]
    return tuple(dict.fromkeys(out))
