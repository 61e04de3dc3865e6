"""Phantom anatomy: a lumbar spine (T10..S1 plus sacrum) with per-disc pathology.

Body coordinates (mm): ``x`` → patient left, ``y`` → posterior, ``z`` → superior; the
spine's mid-sagittal plane is ``x = 0``. Sagittal outlines are 2-D points ``(y, z)``.
Corner order of every quadrilateral: anterior-superior, posterior-superior,
posterior-inferior, anterior-inferior.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from spinecore.levels import DISCS, VERTEBRAE

# Adult reference sizes (mm): body height, AP depth, lateral width; disc mid-height.
_BODY_SIZE = {
    "T10": (21, 28, 34), "T11": (22, 29, 36), "T12": (24, 31, 40), "L1": (26, 33, 42),
    "L2": (27, 35, 44), "L3": (28, 36, 46), "L4": (28, 36, 48), "L5": (27, 35, 50), "S1": (30, 40, 52),
}
_DISC_HEIGHT = {
    "T10-T11": 6.0, "T11-T12": 6.5, "T12-L1": 7.0, "L1-L2": 8.5, "L2-L3": 10.0,
    "L3-L4": 11.0, "L4-L5": 11.5, "L5-S1": 10.5,
}
# Share of the lumbar lordosis taken by each disc / vertebral wedge; thoracic wedges in degrees.
_DISC_LORDOSIS_SHARE = {"L5-S1": 0.30, "L4-L5": 0.22, "L3-L4": 0.14, "L2-L3": 0.08, "L1-L2": 0.04}
_BODY_LORDOSIS_SHARE = {"L5": 0.12, "L4": 0.06, "L3": 0.03, "L2": 0.01}
_THORACIC_WEDGE_DEG = {"T10": -3.0, "T11": -3.0, "T12": -2.5, "T10-T11": -1.0, "T11-T12": -1.0}
# How likely each disc is to degenerate, relative to L5-S1.
_DEGENERATION_WEIGHT = {
    "T10-T11": 0.25, "T11-T12": 0.3, "T12-L1": 0.35, "L1-L2": 0.45, "L2-L3": 0.6,
    "L3-L4": 0.75, "L4-L5": 1.0, "L5-S1": 1.0,
}
NARROWING_HEIGHT_FACTOR = (1.0, 0.78, 0.58, 0.38)
MODIC_TYPE_SHARES = (0.4, 0.5, 0.1)  # how often a marrow change is Modic type 1, 2, 3
SLIP_PER_GRADE = 0.25  # fraction of the vertebral body depth
# Per-person variation that makes two phantoms two people: each body's height and depth and its
# marrow signal (fatty marrow) are scaled by a factor drawn once per patient, kept at follow-up.
BODY_HEIGHT_RANGE = (0.9, 1.1)
BODY_DEPTH_RANGE = (0.92, 1.08)
MARROW_SIGNAL_RANGE = (0.8, 1.2)
# Small haemangiomas (bright focal marrow lesions on T1 and T2), common and harmless, mark a person
# as well: per vertebra none up to this many, radius range in mm, kept off the body's walls.
MARROW_FOCI_MAX = 3
MARROW_FOCUS_RADIUS_MM = (1.5, 3.5)
MARROW_FOCUS_SPAN = (0.3, 0.7)


@dataclass(frozen=True)
class DiscGrades:
    """Per-disc grades on the Genodisc scales (thesis 3.1.1.1); each one changes the image.

    ``*_upper`` refers to the cranial side of the disc (the vertebra above), ``*_lower`` to
    the caudal side. ``marrow_*`` is the Modic type (0 none, 1 T1 dark/T2 bright,
    2 both bright, 3 both dark).
    """

    pfirrmann: int = 1          # 1..5
    narrowing: int = 0          # 0..3 normal, slight, moderate, severe
    endplate_upper: int = 0     # 0..3 defect depth
    endplate_lower: int = 0
    marrow_upper: int = 0       # 0..3 Modic type
    marrow_lower: int = 0
    spondylolisthesis: int = 0  # 0..2 anterior slip of the upper vertebra, 25 % of depth per grade
    stenosis: int = 0           # 0..3 central canal
    bulging_anterior: int = 0   # 0..3
    bulging_posterior: int = 0  # 0..3
    herniation: int = 0         # 0..3 focal posterior protrusion

    RANGES = {"pfirrmann": (1, 5), "spondylolisthesis": (0, 2)}

    def __post_init__(self) -> None:
        for f in fields(self):
            lo, hi = self.RANGES.get(f.name, (0, 3))
            value = getattr(self, f.name)
            if not (isinstance(value, (int, np.integer)) and lo <= value <= hi):
                raise ValueError(f"{f.name} must be an integer in {lo}..{hi}, got {value!r}")

    def as_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class VertebraShape:
    level: str
    corners: np.ndarray  # (4, 2) sagittal (y, z)
    half_width: float

    @property
    def centre(self) -> np.ndarray:
        return self.corners.mean(axis=0)

    @property
    def height(self) -> float:
        return float(np.linalg.norm((self.corners[0] + self.corners[1] - self.corners[2] - self.corners[3]) / 2))

    @property
    def depth(self) -> float:
        return float(np.linalg.norm((self.corners[0] + self.corners[3] - self.corners[1] - self.corners[2]) / 2))

    @property
    def up(self) -> np.ndarray:
        """Unit vector from the inferior to the superior endplate midpoint."""
        v = (self.corners[0] + self.corners[1] - self.corners[2] - self.corners[3]) / 2
        return v / np.linalg.norm(v)


@dataclass(frozen=True)
class DiscShape:
    level: str
    corners: np.ndarray  # (4, 2): upper vertebra's AI, PI, lower vertebra's PS, AS
    half_width: float
    grades: DiscGrades

    @property
    def centre(self) -> np.ndarray:
        return self.corners.mean(axis=0)

    @property
    def anterior(self) -> np.ndarray:
        """Unit (y, z) vector along the mean endplate direction, pointing anteriorly."""
        anterior = (self.corners[0] - self.corners[1]) + (self.corners[3] - self.corners[2])
        return anterior / np.linalg.norm(anterior)

    @property
    def normal(self) -> np.ndarray:
        """Unit (y, z) vector perpendicular to the mean endplate direction, pointing up."""
        anterior = self.anterior
        normal = np.array([-anterior[1], anterior[0]])
        return normal if normal[1] > 0 else -normal

    @property
    def height(self) -> float:
        """Mid-disc height (mm): endplate midpoint separation along :attr:`normal`
        (a slip shifts the endplates sideways without changing it)."""
        upper_mid = (self.corners[0] + self.corners[1]) / 2
        lower_mid = (self.corners[2] + self.corners[3]) / 2
        return float(np.dot(upper_mid - lower_mid, self.normal))

    @property
    def anterior_height(self) -> float:
        """Anterior corner separation (mm) along :attr:`normal`."""
        return float(np.dot(self.corners[0] - self.corners[3], self.normal))

    @property
    def posterior_height(self) -> float:
        """Posterior corner separation (mm) along :attr:`normal`."""
        return float(np.dot(self.corners[1] - self.corners[2], self.normal))

    @property
    def slip(self) -> float:
        """Offset (mm) along :attr:`anterior` of the upper body's posterior-inferior corner over the
        lower body's posterior-superior corner: positive when the upper body sits forward."""
        return float(np.dot(self.corners[1] - self.corners[2], self.anterior))

    @property
    def lower_depth(self) -> float:
        """Length (mm) of the lower body's superior endplate."""
        return float(np.linalg.norm(self.corners[3] - self.corners[2]))


@dataclass(frozen=True)
class MarrowFocus:
    """A haemangioma in its body's own frame: ``depth`` and ``height`` are fractions of the body's
    depth (from its anterior wall) and height (from its upper endplate), ``side`` a fraction of its
    half width (negative: right)."""

    depth: float
    height: float
    side: float
    radius_mm: float


@dataclass(frozen=True)
class Patient:
    """Everything about one phantom person that does not depend on the scan."""

    seed: int
    size: float                      # scale of all bony dimensions
    sacral_slope_deg: float
    lordosis_deg: float
    degeneration: float              # 0 young .. 1 old
    canal_depth: float               # mm, lumbar
    canal_half_width: float
    abdomen_depth: float             # mm in front of the vertebral bodies
    back_muscle: float               # mm behind the laminae
    fat_posterior: float
    fat_anterior: float
    body_half_width: float
    herniation_side: dict[str, float] = field(default_factory=dict)  # lateral offset per disc
    endplate_position: dict[str, float] = field(default_factory=dict)  # AP position of notches (-1..1)
    grades: dict[str, DiscGrades] = field(default_factory=dict)
    body_proportions: dict[str, tuple[float, float]] = field(default_factory=dict)  # (height, depth) factors
    marrow_signal: dict[str, float] = field(default_factory=dict)  # marrow intensity factor per vertebra
    marrow_foci: dict[str, tuple[MarrowFocus, ...]] = field(default_factory=dict)  # per vertebra


def _sample_grades(rng: np.random.Generator, level: str, degeneration: float) -> DiscGrades:
    s = float(np.clip(degeneration * _DEGENERATION_WEIGHT[level] + rng.normal(0, 0.18), 0, 1))
    pfirrmann = int(np.clip(round(1 + 4 * s + rng.normal(0, 0.5)), 1, 5))
    narrowing = {1: 0, 2: 0, 3: int(rng.random() < 0.25), 4: int(rng.integers(0, 3)), 5: int(rng.integers(1, 4))}[pfirrmann]

    def present(p: float) -> bool:
        return bool(rng.random() < p)

    def graded(p: float) -> int:
        return int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15])) if present(p) else 0

    def modic(p: float) -> int:
        return int(rng.choice([1, 2, 3], p=MODIC_TYPE_SHARES)) if present(p) else 0

    lumbosacral = level in ("L4-L5", "L5-S1")
    return DiscGrades(
        pfirrmann=pfirrmann, narrowing=narrowing,
        endplate_upper=graded(0.08 + 0.35 * s), endplate_lower=graded(0.08 + 0.35 * s),
        marrow_upper=modic(0.03 + 0.35 * s * (pfirrmann >= 3)), marrow_lower=modic(0.03 + 0.35 * s * (pfirrmann >= 3)),
        spondylolisthesis=int(rng.choice([1, 2], p=[0.8, 0.2])) if present(0.1 if lumbosacral else 0.02) else 0,
        stenosis=graded(0.05 + 0.4 * s), bulging_anterior=graded(0.05 + 0.4 * s),
        bulging_posterior=graded(0.1 + 0.5 * s), herniation=graded(0.05 + 0.3 * s),
    )


def independent_grades(rng: np.random.Generator, prevalence: float = 0.3) -> DiscGrades:
    """Grades whose findings are drawn each on its own (present with probability ``prevalence``,
    independent of degeneration and of each other; no narrowing or slip), so that a grader trained
    on them can learn a finding only from its own evidence: a test bed for hotspots."""
    def graded() -> int:
        return int(rng.choice([1, 2, 3])) if rng.random() < prevalence else 0

    def modic() -> int:
        return int(rng.choice([1, 2, 3], p=MODIC_TYPE_SHARES)) if rng.random() < prevalence else 0

    return DiscGrades(pfirrmann=int(rng.integers(1, 6)), endplate_upper=graded(), endplate_lower=graded(),
                      marrow_upper=modic(), marrow_lower=modic(), stenosis=graded(), bulging_anterior=graded(),
                      bulging_posterior=graded(), herniation=graded())


def _marrow_foci(rng: np.random.Generator) -> tuple[MarrowFocus, ...]:
    return tuple(MarrowFocus(depth=float(rng.uniform(*MARROW_FOCUS_SPAN)), height=float(rng.uniform(*MARROW_FOCUS_SPAN)),
                             side=float(rng.uniform(-0.5, 0.5)), radius_mm=float(rng.uniform(*MARROW_FOCUS_RADIUS_MM)))
                 for _ in range(int(rng.integers(0, MARROW_FOCI_MAX + 1))))


def sample_patient(seed: int) -> Patient:
    """A random, reproducible patient (anatomy and baseline grades) from ``seed``."""
    rng = np.random.default_rng([seed, 0])
    identity = np.random.default_rng([seed, 2])  # its own stream: the draws below stay as they were
    foci = np.random.default_rng([seed, 3])  # and another one for the marrow foci
    degeneration = float(rng.uniform(0, 1))
    sacral_slope = float(rng.uniform(28, 45))
    return Patient(
        seed=seed, size=float(rng.uniform(0.9, 1.1)), sacral_slope_deg=sacral_slope,
        lordosis_deg=sacral_slope + float(rng.uniform(-4, 12)), degeneration=degeneration,
        canal_depth=float(rng.uniform(14, 19)), canal_half_width=float(rng.uniform(10, 13)),
        abdomen_depth=float(rng.uniform(70, 130)), back_muscle=float(rng.uniform(45, 75)),
        fat_posterior=float(rng.uniform(8, 35)), fat_anterior=float(rng.uniform(10, 45)),
        body_half_width=float(rng.uniform(130, 170)),
        herniation_side={d: float(rng.choice([0.0, -7.0, 7.0])) for d in DISCS},
        endplate_position={d: float(rng.uniform(-0.4, 0.4)) for d in DISCS},
        grades={d: _sample_grades(rng, d, degeneration) for d in DISCS},
        body_proportions={v: (float(identity.uniform(*BODY_HEIGHT_RANGE)), float(identity.uniform(*BODY_DEPTH_RANGE)))
                          for v in VERTEBRAE},
        marrow_signal=dict(zip(VERTEBRAE, (identity.uniform(*MARROW_SIGNAL_RANGE)
                                           * identity.uniform(0.95, 1.05, len(VERTEBRAE))).tolist())),
        marrow_foci={v: _marrow_foci(foci) for v in VERTEBRAE},
    )


def progress(patient: Patient, years: float) -> Patient:
    """The same patient ``years`` later: discs degenerate, vertebrae keep their shape."""
    if years <= 0:
        return patient
    rng = np.random.default_rng([patient.seed, 1, int(round(years * 12))])
    rate = min(1.0, years / 10.0)
    grades = {}
    for level, g in patient.grades.items():
        p = rate * (0.3 + 0.5 * patient.degeneration * _DEGENERATION_WEIGHT[level])
        pf = min(5, g.pfirrmann + int(rng.random() < p) + int(rng.random() < p * 0.3))
        narrowing = g.narrowing
        if pf >= 4 and pf > g.pfirrmann:
            narrowing = min(3, max(narrowing, pf - 3) + int(rng.random() < 0.3))

        def grow(value: int, chance: float, top: int = 3) -> int:
            return min(top, value + int(rng.random() < chance))

        def modic(value: int) -> int:
            if value == 1 and rng.random() < rate:
                return 2  # oedema converts to fatty marrow
            return value or (int(rng.choice([1, 2])) if rng.random() < 0.15 * p else 0)

        grades[level] = replace(
            g, pfirrmann=pf, narrowing=narrowing,
            endplate_upper=grow(g.endplate_upper, 0.3 * p), endplate_lower=grow(g.endplate_lower, 0.3 * p),
            marrow_upper=modic(g.marrow_upper), marrow_lower=modic(g.marrow_lower),
            spondylolisthesis=grow(g.spondylolisthesis, 0.2 * p if g.spondylolisthesis else 0.0, top=2),
            stenosis=grow(g.stenosis, 0.5 * p), bulging_anterior=grow(g.bulging_anterior, 0.5 * p),
            bulging_posterior=grow(g.bulging_posterior, 0.6 * p), herniation=grow(g.herniation, 0.3 * p),
        )
    return replace(patient, grades=grades)


def _rotate(v: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate a (y, z) vector; positive angles tilt a superior normal posteriorly."""
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    return np.array([c * v[0] + s * v[1], -s * v[0] + c * v[1]])


@dataclass(frozen=True)
class SpineShape:
    """Sagittal outlines of the vertebral bodies, discs and sacrum of one patient."""

    vertebrae: dict[str, VertebraShape]
    discs: dict[str, DiscShape]
    sacrum: list[np.ndarray]  # (4, 2) outlines of S2..S5, below S1


def _body_size(patient: Patient, level: str) -> tuple[float, float, float]:
    """Height, AP depth and width (mm) of one vertebral body of ``patient``."""
    height, depth, width = (v * patient.size for v in _BODY_SIZE[level])
    height_factor, depth_factor = patient.body_proportions.get(level, (1.0, 1.0))
    return height * height_factor, depth * depth_factor, width


def build_spine(patient: Patient) -> SpineShape:
    """Chain the vertebrae upwards from the S1 endplate, wedging discs and bodies for
    lordosis, shrinking degenerate discs and slipping listhetic levels forwards."""
    f = patient.size
    ss = np.deg2rad(patient.sacral_slope_deg)
    anterior = np.array([-np.cos(ss), -np.sin(ss)])  # along the S1 endplate, anterior edge lower
    up = np.array([-np.sin(ss), np.cos(ss)])
    centre = np.zeros(2)

    height, depth, width = _body_size(patient, "S1")
    vertebrae = {"S1": VertebraShape("S1", np.array([
        centre + anterior * depth / 2, centre - anterior * depth / 2,
        centre - up * height - anterior * depth * 0.45, centre - up * height + anterior * depth * 0.35,
    ]), width / 2)}
    # S2..S5: fused segments curving posteriorly (sacral kyphosis).
    sacrum, seg_up, seg_ant = [], up, anterior
    top = (vertebrae["S1"].corners[2] + vertebrae["S1"].corners[3]) / 2
    seg_depth = depth * 0.8
    for seg_height in (20 * f, 17 * f, 14 * f, 11 * f):
        seg_up, seg_ant = _rotate(seg_up, 14), _rotate(seg_ant, 14)
        bottom = top - seg_up * seg_height
        sacrum.append(np.array([top + seg_ant * seg_depth / 2, top - seg_ant * seg_depth / 2,
                                bottom - seg_ant * seg_depth * 0.4, bottom + seg_ant * seg_depth * 0.4]))
        top, seg_depth = bottom, seg_depth * 0.78

    discs = {}
    for upper, lower, disc in zip(VERTEBRAE[-2::-1], VERTEBRAE[:0:-1], DISCS[::-1]):
        g = patient.grades[disc]
        below = vertebrae[lower]
        height, depth, width = _body_size(patient, upper)
        squash = NARROWING_HEIGHT_FACTOR[g.narrowing]
        disc_wedge = (_DISC_LORDOSIS_SHARE.get(disc, 0) * patient.lordosis_deg + _THORACIC_WEDGE_DEG.get(disc, 0)) * squash
        body_wedge = _BODY_LORDOSIS_SHARE.get(upper, 0) * patient.lordosis_deg + _THORACIC_WEDGE_DEG.get(upper, 0)

        centre = (below.corners[0] + below.corners[1]) / 2
        anterior = below.corners[0] - below.corners[1]
        anterior /= np.linalg.norm(anterior)
        up = np.array([-anterior[1], anterior[0]])
        if up[1] < 0:
            up = -up
        disc_mid_up = _rotate(up, disc_wedge / 2)
        centre = centre + disc_mid_up * _DISC_HEIGHT[disc] * f * squash
        anterior, up = _rotate(anterior, disc_wedge), _rotate(up, disc_wedge)
        centre = centre + anterior * SLIP_PER_GRADE * g.spondylolisthesis * depth
        body_mid_up = _rotate(up, body_wedge / 2)
        top_centre = centre + body_mid_up * height
        top_anterior = _rotate(anterior, body_wedge)
        corners = np.array([top_centre + top_anterior * depth / 2, top_centre - top_anterior * depth / 2,
                            centre - anterior * depth / 2, centre + anterior * depth / 2])
        vertebrae[upper] = VertebraShape(upper, corners, width / 2)
        half_width = (width / 2 + below.half_width) / 2
        discs[disc] = DiscShape(disc, np.array([corners[3], corners[2], below.corners[1], below.corners[0]]),
                                half_width, g)
    ordered = {level: vertebrae[level] for level in VERTEBRAE}
    return SpineShape(ordered, {d: discs[d] for d in DISCS}, sacrum)
