"""The words `outcomes init` recognises: column names and cell values in six languages.

Column names are compared after :func:`norm` (accents removed, case folded, anything but letters
and digits a space; a unit in brackets, ``VAS (cm)``, is read separately by :func:`unit_of`).
Each canonical column has the names clinics give it in English, German, French, Spanish, Italian
and Dutch. ``GENERIC_DATE`` and ``NUMBER_WORDS`` are names whose meaning depends on the layout:
"Datum" is the visit date of a visit sheet, the session date of a sessions table and the
assessment date of an assessments table. Cell values of the coded columns (``tief``,
``oberflächlich``, ``w``/``m``) are listed per canonical code; yes/no and "not recorded" words come
from :mod:`pipeline.config.vocabulary`, one place for them.
"""

from __future__ import annotations

import re
import unicodedata

from pipeline.schemas.raw import ODI_ITEMS


def norm(text: str) -> str:
    """Write a name or value as the draft compares it: no accents, case folded, single spaces."""
    decomposed = unicodedata.normalize("NFKD", str(text))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    plain = plain.replace("ß", "ss")
    return " ".join(re.sub(r"[^0-9a-z]+", " ", plain).split())


_BRACKETS = re.compile(r"[(\[]([^)\]]*)[)\]]")


def base_name(name: str) -> str:
    """Return a column name without a bracketed note (``VAS (cm)`` -> ``vas``), normalised."""
    return norm(_BRACKETS.sub(" ", name))


def unit_of(name: str) -> str:
    """Return the normalised text of a bracketed note of a column name (``VAS (cm)`` -> ``cm``)."""
    return " ".join(norm(m) for m in _BRACKETS.findall(name))


def _names(*names: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(norm(n) for n in names))


# canonical column -> names clinics give it (EN, DE, FR, ES, IT, NL)
# fmt: off
ALIASES: dict[str, tuple[str, ...]] = {
    "patient_id": _names(
        "patient_id", "patient", "patient id", "patient no", "patient nr", "patient number", "pid",
        "id", "subject", "subject id", "participant", "participant id", "case id", "patienten nr",
        "patientennummer", "patienten id", "patientin", "fall nr", "fallnummer", "numero patient",
        "no patient", "id patient", "n patient", "dossier", "paciente", "id paciente",
        "numero paciente", "paziente", "id paziente", "codice paziente", "patientnummer",
        "patient nummer", "pseudonym",
    ),
    "site": _names(
        "site", "clinic", "centre", "center", "practice", "location", "praxis", "klinik",
        "standort", "zentrum", "einrichtung", "cabinet", "clinique", "lieu", "clinica", "centro",
        "sede", "consultorio", "ambulatorio", "studio", "praktijk", "kliniek", "locatie",
        "redcap_data_access_group",
    ),
    "enrolment_date": _names(
        "enrolment_date", "enrolment date", "enrollment date", "enrolled", "enrolment",
        "enrollment", "date of enrolment", "inclusion", "inclusion date", "date inclusion",
        "date d inclusion", "aufnahme", "aufnahmedatum", "einschluss", "einschlussdatum",
        "datum aufnahme", "fecha inclusion", "fecha de inclusion", "inclusion fecha",
        "data arruolamento", "arruolamento", "data inclusione", "data di inclusione", "inclusione",
        "inclusiedatum", "inclusie", "datum inclusie", "intake", "intake date",
    ),
    "age": _names("age", "age years", "alter", "edad", "eta", "leeftijd", "anni"),
    "sex": _names(
        "sex", "gender", "geschlecht", "sexe", "genre", "sexo", "genero", "sesso", "genere",
        "geslacht",
    ),
    "symptom_weeks": _names(
        "symptom_weeks", "symptom weeks", "weeks of symptoms", "symptoms", "symptom duration",
        "duration of symptoms", "symptom_years", "symptom years", "symptom_months", "symptom_days",
        "beschwerdedauer", "beschwerden", "symptomdauer", "dauer der beschwerden",
        "duree des symptomes", "duree symptomes", "duree", "duracion", "duracion sintomas",
        "duracion de los sintomas", "durata", "durata sintomi", "durata dei sintomi", "klachtduur",
        "duur klachten", "duur van de klachten", "sintomi", "settimane sintomi", "sintomas",
        "semanas sintomas", "symptomes", "semaines symptomes", "klachten", "weken klachten",
    ),
    "arm": _names(
        "arm", "study arm", "randomised arm", "randomized arm", "allocation", "studienarm", "bras",
        "bras d etude", "brazo", "braccio", "studiearm", "group", "study group", "treatment group",
        "randomisation", "randomization", "randomisation group", "randomization group",
        "allocated group", "allocation group", "intervention group", "gruppe", "studiengruppe",
        "behandlungsgruppe", "randomisierung", "groupe", "groupe de traitement",
        "grupo", "grupo de tratamiento", "aleatorizacion", "gruppo", "gruppo di trattamento",
        "randomizzazione", "groep", "behandelgroep", "studiegroep", "randomisatie",
    ),
    "anticoagulants": _names(
        "anticoagulants", "anticoagulant", "anticoagulation", "antikoagulanzien",
        "antikoagulation", "blutverdunner", "anticoagulantes", "anticoagulanti", "antistolling",
        "bloedverdunners",
    ),
    "bleeding_disorder": _names(
        "bleeding_disorder", "bleeding disorder", "coagulopathy", "gerinnungsstorung",
        "blutgerinnungsstorung", "trouble de la coagulation", "trouble hemorragique",
        "trastorno hemorragico", "coagulopatia", "disturbo emorragico",
        "disturbo della coagulazione", "stollingsstoornis", "bloedingsstoornis",
    ),
    "pregnant": _names(
        "pregnant", "pregnancy", "schwanger", "schwangerschaft", "enceinte", "grossesse",
        "embarazada", "embarazo", "incinta", "gravidanza", "zwanger", "zwangerschap",
    ),
    "immunocompromised": _names(
        "immunocompromised", "immunosuppressed", "immunosuppression", "immunsuppression",
        "immunsupprimiert", "immunodeprime", "immunodepression", "inmunodeprimido",
        "inmunosupresion", "immunodepresso", "immunosoppressione", "immuungecompromitteerd",
        "immunosuppressie", "weakened immune system",
    ),
    "recent_surgery": _names(
        "recent_surgery", "recent surgery", "kurzliche operation", "frische operation",
        "chirurgie recente", "cirugia reciente", "chirurgia recente", "intervento recente",
        "recente operatie", "recente chirurgie",
    ),
    "needle_phobia": _names(
        "needle_phobia", "needle phobia", "fear of needles", "nadelangst", "nadelphobie",
        "phobie des aiguilles", "peur des aiguilles", "fobia a las agujas", "miedo a las agujas",
        "fobia degli aghi", "paura degli aghi", "naaldangst", "naaldfobie",
    ),
    "unable_to_consent": _names(
        "unable_to_consent", "unable to consent", "nicht einwilligungsfahig",
        "einwilligungsunfahig", "incapable de consentir", "incapacite de consentir",
        "incapaz de consentir", "incapace di consenso", "incapace di acconsentire",
        "wilsonbekwaam",
    ),
    "protocol_deviation": _names(
        "protocol_deviation", "protocol deviation", "protokollabweichung",
        "deviation au protocole", "deviation du protocole", "desviacion del protocolo",
        "deviazione dal protocollo", "protocolafwijking",
    ),
    "session_number": _names(
        "session_number", "session", "session number", "session no", "session nr",
        "treatment number", "sitzung", "sitzungsnummer", "sitzung nr", "behandlung",
        "behandlungsnummer", "seance", "numero de seance", "seance no", "sesion",
        "numero de sesion", "seduta", "numero seduta", "sessie", "behandeling", "sessie nr",
    ),
    "session_date": _names(
        "session_date", "session date", "date of session", "date of the session", "treatment date",
        "sitzungsdatum", "behandlungsdatum", "date de seance", "date seance", "fecha de sesion",
        "fecha sesion", "data seduta", "data della seduta", "sessiedatum", "behandeldatum",
    ),
    "therapist": _names(
        "therapist", "physio", "physiotherapist", "clinician", "practitioner", "therapeut",
        "therapeutin", "behandler", "therapeute", "kine", "kinesitherapeute", "praticien",
        "terapeuta", "fisioterapeuta", "terapista", "fisioterapista", "fysiotherapeut",
        "behandelaar",
    ),
    "depth": _names(
        "depth", "needling depth", "tiefe", "nadeltiefe", "profondeur", "profundidad",
        "profondita", "diepte",
    ),
    "twitch": _names(
        "twitch", "local twitch", "local twitch response", "twitch response", "zuckung",
        "lokale zuckung", "zuckungsantwort", "secousse", "secousse locale", "reponse contractile",
        "espasmo", "respuesta de espasmo local", "contraccion local", "contrazione",
        "risposta contrattile", "spiertrekking", "trekking", "lokale twitch",
    ),
    "ltr_count": _names(
        "ltr_count", "ltr count", "ltrs", "ltr", "number of ltrs", "twitch count",
        "number of twitches", "twitches", "anzahl zuckungen", "zuckungen", "nombre de secousses",
        "secousses", "numero de espasmos", "espasmos", "numero di contrazioni", "contrazioni",
        "aantal trekkingen", "trekkingen",
    ),
    "needles": _names(
        "needles", "number of needles", "needle count", "nadeln", "anzahl nadeln", "nadelanzahl",
        "aiguilles", "nombre d aiguilles", "agujas", "numero de agujas", "aghi", "numero di aghi",
        "naalden", "aantal naalden",
    ),
    "retention_min": _names(
        "retention_min", "retention", "retention min", "retention time", "needle retention",
        "verweildauer", "verweilzeit", "liegedauer", "duree de retention", "temps de retention",
        "tiempo de retencion", "retencion", "tempo di ritenzione", "permanenza", "retentietijd",
        "verblijftijd",
    ),
    "trigger_point": _names(
        "trigger_point", "trigger point", "trigger point type", "triggerpunkt", "triggerpunkttyp",
        "point gachette", "point trigger", "punto gatillo", "punto trigger", "triggerpunt",
    ),
    "co_intervention": _names(
        "co_intervention", "co intervention", "co interventions", "cointervention", "cointerv",
        "other treatment", "concomitant treatment", "begleittherapie", "begleitbehandlung",
        "zusatztherapie", "co traitement", "traitement associe", "cointervencion",
        "tratamiento concomitante", "co intervento", "trattamento concomitante", "cointerventie",
        "bijkomende behandeling",
    ),
    "adverse_event": _names(
        "adverse_event", "adverse event", "adverse events", "ae", "side effect", "side effects",
        "nebenwirkung", "nebenwirkungen", "unerwunschtes ereignis", "effet indesirable",
        "evenement indesirable", "efecto adverso", "evento adverso", "evento avverso",
        "effetto collaterale", "bijwerking", "ongewenst voorval",
    ),
    "ae_severity": _names(
        "ae_severity", "severity", "ae severity", "adverse event severity", "schweregrad",
        "schwere", "gravite", "severite", "gravedad", "severidad", "gravita", "severita", "ernst",
    ),
    "visit": _names(
        "visit", "visit number", "visit no", "timepoint", "time point", "besuch", "visite",
        "messzeitpunkt", "zeitpunkt", "visita", "momento", "bezoek", "meetmoment", "follow up",
        "verlauf",
    ),
    "assessment_date": _names(
        "assessment_date", "assessment date", "date of assessment", "date of the assessment",
        "erhebungsdatum", "untersuchungsdatum", "bewertungsdatum", "date d evaluation",
        "date evaluation", "fecha de evaluacion", "fecha evaluacion", "data valutazione",
        "data della valutazione", "meetdatum", "datum meting",
    ),
    "nrs": _names(
        "nrs", "nprs", "nrs pain", "pain nrs", "numeric rating scale", "pain score", "nrs schmerz",
        "schmerz nrs", "schmerz", "schmerzen", "en", "en douleur", "douleur en",
        "echelle numerique", "douleur", "end", "escala numerica", "nrs dolor", "dolor",
        "nrs dolore", "dolore", "scala numerica", "nrs pijn", "pijnscore", "pijn",
    ),
    "vas_mm": _names(
        "vas_mm", "vas", "vas pain", "pain vas", "visual analogue scale", "visual analog scale",
        "vas schmerz", "eva", "eva douleur", "eva dolor", "echelle visuelle analogique",
        "escala visual analogica", "vas dolore", "scala visuo analogica", "vas pijn",
    ),
    "odi": _names(
        "odi", "odi total", "odi score", "oswestry", "oswestry disability index", "odi points",
        "odi percent", "odi punkte", "odi summe", "odi gesamt", "odi prozent", "odi pourcentage",
        "odi puntos", "odi punti", "odi totale", "odi punten", "odi totaal",
    ),
    "odi_version": _names("odi_version", "odi version", "version odi", "odi versie"),
    "odi_answered": _names(
        "odi_answered", "odi answered", "odi sections answered", "sections answered",
        "answered sections", "odi n", "odi beantwortet", "beantwortete abschnitte",
        "odi sections repondues", "sections repondues", "secciones respondidas",
        "sezioni risposte", "beantwoorde secties", "odi sections", "odi abschnitte",
        "odi secciones", "odi sezioni", "odi secties",
    ),
}
# fmt: on

# A file of one score per line: the column naming the measure, the one holding the score.
MEASURE_WORDS = _names(
    "measure",
    "instrument",
    "questionnaire",
    "scale",
    "test",
    "outcome",
    "item",
    "fragebogen",
    "skala",
    "messinstrument",
    "messung",
    "echelle",
    "instrument de mesure",
    "cuestionario",
    "escala",
    "instrumento",
    "medida",
    "questionario",
    "scala",
    "strumento",
    "misura",
    "vragenlijst",
    "schaal",
    "meetinstrument",
)
SCORE_WORDS = _names(
    "score",
    "value",
    "result",
    "points",
    "wert",
    "ergebnis",
    "punkte",
    "punktwert",
    "valeur",
    "resultat",
    "valor",
    "resultado",
    "puntuacion",
    "puntaje",
    "valore",
    "punteggio",
    "risultato",
    "waarde",
    "uitslag",
    "uitkomst",
)

# Names of a control arm, the reference of a randomised comparison (EN, DE, FR, ES, IT, NL).
CONTROL_WORDS = frozenset(
    _names(
        "sham",
        "sham needling",
        "placebo",
        "control",
        "control group",
        "usual care",
        "standard care",
        "waiting list",
        "wait list",
        "kontrolle",
        "kontrollgruppe",
        "schein",
        "scheinnadelung",
        "controle",
        "groupe controle",
        "simule",
        "simulado",
        "grupo control",
        "controllo",
        "gruppo di controllo",
        "simulato",
        "nep",
        "controlegroep",
    )
)

# A date column without further words: its meaning depends on the layout.
GENERIC_DATE = _names("date", "datum", "fecha", "data", "visit date", "date of visit")
# Names meaning "the numbered visit": a session and the assessment before it (Termin 3).
NUMBER_WORDS = _names(
    "termin",
    "appointment",
    "consultation",
    "konsultation",
    "rendez vous",
    "consulta",
    "afspraak",
    "consult",
)

# An ODI section: "ODI1", "odi_q3", "ODI Abschnitt 4", "ODI question 5", ...
_ODI_ITEM = re.compile(
    r"^odi\s*(?:q|item|section|abschnitt|frage|question|pregunta|seccion|domanda|sezione"
    r"|vraag|sectie|teil)?\s*(\d{1,2})$"
)


def odi_item(name: str) -> str | None:
    """Return the ODI section column a (normalised) name means, if any (``odi 3`` -> odi_q3)."""
    found = _ODI_ITEM.match(name)
    if found and 1 <= int(found.group(1)) <= len(ODI_ITEMS):
        return ODI_ITEMS[int(found.group(1)) - 1]
    return None


# Units written in a column name, per canonical column with a [sources.units] choice.
UNIT_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "vas_mm": {"cm": ("cm",), "mm": ("mm",)},
    "odi": {
        "points": ("points", "punkte", "puntos", "punti", "punten", "pts", "raw"),
        "percent": ("percent", "prozent", "pourcentage", "porcentaje", "percentuale"),
    },
    "symptom_weeks": {
        "weeks": ("weeks", "wochen", "semaines", "semanas", "settimane", "weken", "wk"),
        "days": ("days", "tage", "jours", "dias", "giorni", "dagen"),
        "months": ("months", "monate", "mois", "meses", "mesi", "maanden"),
        "years": ("years", "jahre", "ans", "anos", "anni", "jaren"),
    },
}


def _values(**codes: tuple[str, ...]) -> dict[str, str]:
    return {norm(word): code for code, words in codes.items() for word in words}


# Cell values of the coded columns -> the canonical code (matched after norm()).
# fmt: off
VALUE_WORDS: dict[str, dict[str, str]] = {
    "sex": _values(
        female=(
            "f", "w", "v", "female", "weiblich", "femme", "feminin", "mujer", "femenino", "donna",
            "femmina", "vrouw", "woman", "frau",
        ),
        male=(
            "m", "h", "male", "mannlich", "homme", "masculin", "hombre", "masculino", "uomo",
            "maschio", "man", "mann",
        ),
        other=("d", "x", "divers", "diverse", "other", "autre", "otro", "altro", "anders"),
    ),
    "depth": _values(
        superficial=(
            "superficial", "oberflachlich", "superficiel", "superficielle", "superficiale",
            "oppervlakkig", "flach", "shallow",
        ),
        deep=(
            "deep", "tief", "profond", "profonde", "profundo", "profunda", "profondo", "profonda",
            "diep",
        ),
    ),
    "trigger_point": _values(
        active=("active", "aktiv", "actif", "activo", "activa", "attivo", "attiva", "actief"),
        latent=("latent", "latente"),
    ),
    "adverse_event": _values(
        none=(
            "none", "keine", "kein", "aucun", "aucune", "rien", "ninguno", "ninguna", "nessuno",
            "nessuna", "geen",
        ),
        soreness=(
            "soreness", "sore", "muscle soreness", "muskelkater", "muskelschmerz", "courbature",
            "courbatures",
            "dolor muscular", "agujetas", "indolenzimento", "spierpijn",
        ),
        bruising=(
            "bruising", "bruise", "hamatom", "bluterguss", "hematome", "ecchymose", "hematoma",
            "moraton", "ematoma", "livido", "blauwe plek", "hematoom", "haematoma",
        ),
        fatigue=(
            "fatigue", "mudigkeit", "cansancio", "fatiga", "stanchezza", "fatica", "vermoeidheid",
            "tiredness",
        ),
        discomfort=(
            "discomfort", "unwohlsein", "malaise", "malestar", "malessere", "onwel", "onwelzijn",
            "ongemak",
        ),
        bleeding=("bleeding", "blutung", "saignement", "sangrado", "sanguinamento", "bloeding"),
        fainting=(
            "fainting", "faint", "syncope", "ohnmacht", "evanouissement", "malaise vagal",
            "desmayo", "sincope", "svenimento", "flauwvallen",
        ),
        other=("other", "andere", "anderes", "autre", "otro", "altro", "anders"),
    ),
    "ae_severity": _values(
        mild=("mild", "leicht", "leger", "legere", "leve", "lieve", "licht"),
        moderate=(
            "moderate", "mittel", "mittelschwer", "modere", "moderee", "moderado", "moderada",
            "moderato", "moderata", "matig",
        ),
        severe=("severe", "schwer", "severe", "grave", "ernstig"),
    ),
}

# Adverse events written as one yes/no column per kind ("ae_soreness", "Nebenwirkung Hämatom")
# or as one column listing them, and the severity beside them ("sev_soreness", "Schweregrad").
# A name is about adverse events when it holds one of these phrases as whole words (after
# norm()); what is left of it names the kind (a value of VALUE_WORDS["adverse_event"]).
AE_MARKERS = _names(
    "ae", "adverse event", "adverse events", "adverse", "side effect", "side effects",
    "nebenwirkung", "nebenwirkungen", "nw", "unerwunschtes ereignis", "unerwunscht",
    "effet indesirable", "effets indesirables", "evenement indesirable", "ei",
    "efecto adverso", "efectos adversos", "evento adverso", "ea", "evento avverso",
    "eventi avversi", "effetto collaterale", "effetti collaterali", "bijwerking", "bijwerkingen",
)
SEVERITY_MARKERS = _names(
    "sev", "severity", "grade", "schweregrad", "schwere", "gravite", "severite", "gravedad",
    "severidad", "gravita", "severita", "ernst", "ernstigheid",
)
# Words a flag's name may carry besides the kind: "ae_soreness_yn", "AE bruising flag".
FLAG_NOISE = _names("yn", "flag", "0 1", "ja nein", "oui non", "si no")
# Severities written as grades 1-3 (the commonest form coding): a low guess, to check.
SEVERITY_GRADES = {"1": "mild", "2": "moderate", "3": "severe"}
# What separates the items of a list of adverse events, in the order tried.
AE_LIST_DELIMITERS = (";", ",", "|", "/")

# Co-interventions (free text, "; " between several): the words of the two the report counts.
# fmt: off
CO_INTERVENTION_WORDS = _values(**{
    "exercise": (
        "exercise", "exercises", "ubungen", "uebungen", "ubung", "training", "exercices",
        "exercice", "ejercicios", "ejercicio", "esercizi", "esercizio", "oefeningen",
        "oefentherapie",
    ),
    "manual therapy": (
        "manual therapy", "manuelle therapie", "manualtherapie", "therapie manuelle",
        "terapia manual", "terapia manuale", "manuele therapie",
    ),
})
# fmt: on
# How a cell lists several: "Übungen + Manuelle Therapie", "exercices et thérapie manuelle".
LIST_SEPARATORS = re.compile(r"\s*(?:[+;,&/]|\b(?:und|and|et|y|e|en)\b)\s*", re.IGNORECASE)

# Words naming the baseline time point, and the units of numbered time points (-> weeks).
BASELINE_WORDS = _names(
    "baseline",
    "bl",
    "base",
    "t0",
    "pre",
    "eingang",
    "ausgangswert",
    "inclusion",
    "initial",
    "basal",
    "inicio",
    "iniziale",
    "basale",
    "nulmeting",
    "screening",
)
_WEEKS_PER = {
    "w": 1.0,
    "wk": 1.0,
    "week": 1.0,
    "weeks": 1.0,
    "woche": 1.0,
    "wochen": 1.0,
    "semaine": 1.0,
    "semaines": 1.0,
    "semana": 1.0,
    "semanas": 1.0,
    "settimana": 1.0,
    "settimane": 1.0,
    "weken": 1.0,
    "sem": 1.0,
    "m": 52 / 12,
    "mo": 52 / 12,
    "month": 52 / 12,
    "months": 52 / 12,
    "monat": 52 / 12,
    "monate": 52 / 12,
    "mois": 52 / 12,
    "mes": 52 / 12,
    "meses": 52 / 12,
    "mese": 52 / 12,
    "mesi": 52 / 12,
    "maand": 52 / 12,
    "maanden": 52 / 12,
    "y": 52.0,
    "yr": 52.0,
    "year": 52.0,
    "jahr": 52.0,
    "an": 52.0,
    "ano": 52.0,
    "anno": 52.0,
    "jaar": 52.0,
    "d": 1 / 7,
    "day": 1 / 7,
    "days": 1 / 7,
    "tag": 1 / 7,
    "tage": 1 / 7,
    "jour": 1 / 7,
    "dia": 1 / 7,
    "giorno": 1 / 7,
    "dag": 1 / 7,
    "j": 1 / 7,
    "jours": 1 / 7,
    "g": 1 / 7,
    "giorni": 1 / 7,
    "dias": 1 / 7,
    "dagen": 1 / 7,
}
# fmt: on

_UNIT_FIRST = re.compile(r"^([a-z]+)\s*(\d+(?:\.\d+)?)$")
_UNIT_LAST = re.compile(r"^(\d+(?:\.\d+)?)\s*([a-z]+)$")


def label_weeks(label: str) -> float | None:
    """Return the nominal week a time-point label names (``wk2`` 2, ``3m`` 13, ``baseline`` 0).

    The time may follow words naming the time point (``Follow-up 6 months`` 26,
    ``Seguimiento 3 meses`` 13). ``None`` when the label names no time (``follow up``,
    ``visit 3``).
    """
    text = norm(label)
    if text in BASELINE_WORDS or text == "0":
        return 0.0
    words = text.split()
    for tail in dict.fromkeys((text, " ".join(words[-2:]), words[-1] if words else "")):
        found = _UNIT_FIRST.match(tail)
        number, unit = (found.group(2), found.group(1)) if found else (None, None)
        if not found:
            found = _UNIT_LAST.match(tail)
            number, unit = (found.group(1), found.group(2)) if found else (None, None)
        if unit in _WEEKS_PER:
            return round(float(number) * _WEEKS_PER[unit])
    return None
