"""The instrument library: validated outcome measures a study may name in ``[outcomes.NAME]``.

Each :class:`Instrument` gives the range, the direction (whether a higher score is worse or
better), the minimal clinically important difference and the source of each figure. A study
declares ``[outcomes.rmdq] instrument = "rmdq"`` to use one as it is, and may override any field
(label, unit, range, direction, MCID) in the same table; an outcome that is not in the library
declares every field itself (:func:`pipeline.config.study.load_study`).

Nothing happens at import time: the library is a constant mapping of frozen records.
"""

from __future__ import annotations

from dataclasses import dataclass

HIGHER_WORSE = "higher_worse"
HIGHER_BETTER = "higher_better"
DIRECTIONS = (HIGHER_WORSE, HIGHER_BETTER)
SCORINGS = ("recorded", "odi_items")


@dataclass(frozen=True)
class Instrument:
    """One outcome measure.

    Attributes
    ----------
    label : str
        Name for people (``Roland–Morris Disability Questionnaire``).
    short : str
        Short name for table headers and figure axes (``RMDQ``).
    unit : str
        Unit of the score (``points``, ``mm``, ``%``, ``kg/cm²``).
    low, high : float
        Range of possible scores.
    direction : {"higher_worse", "higher_better"}
        Whether a higher score means more pain / disability or better function.
    mcid_points : float or None
        Minimal clinically important improvement in points of the scale.
    mcid_percent : float or None
        Minimal clinically important improvement in per cent of the baseline score.
    integer : bool
        Whether scores are whole numbers.
    scoring : {"recorded", "odi_items"}
        ``recorded``: the score as written; ``odi_items``: scored from the ten ODI sections
        with the missing-section rule (SAP §2).
    source : str
        Where the range and the MCID come from.
    """

    label: str
    short: str
    unit: str
    low: float
    high: float
    direction: str
    mcid_points: float | None
    mcid_percent: float | None
    integer: bool = False
    scoring: str = "recorded"
    source: str = ""

    @property
    def higher_is_better(self) -> bool:
        """Whether a rise of the score is an improvement."""
        return self.direction == HIGHER_BETTER


OSTELO = (
    "Ostelo RWJG et al. Interpreting change scores for pain and functional status in low back "
    "pain. Spine 2008;33:90-94"
)

LIBRARY: dict[str, Instrument] = {
    "nrs": Instrument(
        label="pain, Numeric Rating Scale",
        short="NRS",
        unit="points",
        low=0,
        high=10,
        direction=HIGHER_WORSE,
        mcid_points=2,
        mcid_percent=30,
        integer=True,
        source=OSTELO,
    ),
    "vas": Instrument(
        label="pain, Visual Analogue Scale",
        short="VAS",
        unit="mm",
        low=0,
        high=100,
        direction=HIGHER_WORSE,
        mcid_points=15,
        mcid_percent=30,
        source=OSTELO,
    ),
    "odi": Instrument(
        label="Oswestry Disability Index",
        short="ODI",
        unit="%",
        low=0,
        high=100,
        direction=HIGHER_WORSE,
        mcid_points=10,
        mcid_percent=30,
        scoring="odi_items",
        source="Fairbank JCT, Pynsent PB. The Oswestry Disability Index. Spine "
        "2000;25:2940-2953 (scoring); " + OSTELO + " (MCID)",
    ),
    "rmdq": Instrument(
        label="Roland–Morris Disability Questionnaire",
        short="RMDQ",
        unit="points",
        low=0,
        high=24,
        direction=HIGHER_WORSE,
        mcid_points=5,
        mcid_percent=30,
        integer=True,
        source="Roland M, Morris R. A study of the natural history of back pain. Spine "
        "1983;8:141-144 (24 items); " + OSTELO + " (MCID)",
    ),
    "ndi": Instrument(
        label="Neck Disability Index",
        short="NDI",
        unit="points",
        low=0,
        high=50,
        direction=HIGHER_WORSE,
        mcid_points=7.5,
        mcid_percent=None,
        integer=True,
        source="Vernon H, Mior S. The Neck Disability Index. J Manipulative Physiol Ther "
        "1991;14:409-415 (ten sections 0-5); Young BA et al. Responsiveness of the Neck "
        "Disability Index in patients with mechanical neck disorders. Spine J 2009;9:802-808 "
        "(MCID 7.5 points)",
    ),
    "psfs": Instrument(
        label="Patient-Specific Functional Scale",
        short="PSFS",
        unit="points",
        low=0,
        high=10,
        direction=HIGHER_BETTER,
        mcid_points=2,
        mcid_percent=None,
        source="Stratford P et al. Assessing disability and change on individual patients: "
        "a report of a patient specific measure. Physiother Can 1995;47:258-263 (mean of "
        "activities scored 0-10, 10 = able to perform at the pre-injury level; MCID 2 points "
        "for the mean score)",
    ),
    "ppt": Instrument(
        label="pressure-pain threshold",
        short="PPT",
        unit="kg/cm²",
        low=0,
        high=20,
        direction=HIGHER_BETTER,
        mcid_points=1.0,
        mcid_percent=None,
        source="Fischer AA. Pressure algometry over normal muscles. Pain 1987;30:115-126 "
        "(algometry in kg/cm²); Walton DM et al. Reliability, standard error, and minimum "
        "detectable change of clinical pressure pain threshold testing in people with and "
        "without acute neck pain. J Orthop Sports Phys Ther 2011;41:644-650 (minimum "
        "detectable change up to about 1 kg/cm², used here as the smallest important change: "
        "no anchor-based MCID is established)",
    ),
}

# Columns of the canonical assessments table that hold a library instrument's score.
BUILT_IN_COLUMNS = {"nrs": "nrs", "vas": "vas_mm", "odi": "odi"}


def instrument(name: str) -> Instrument:
    """Return the library instrument ``name``.

    Raises
    ------
    KeyError
        When the library has no such instrument.
    """
    return LIBRARY[name]
