"""Thermal counts to degrees Celsius: a linear scale, or FLIR's Planck calibration.

A radiometric camera's IR frame holds counts that stand for a temperature. The frame the model gets
stays those raw counts (its normalisation is configured on the model); the conversion travels with
the frame (`FramePair.radiometry`), so the status bar, the °C display span and the export can turn
counts into °C without a second copy of every frame in the cache.

- `LinearScale`: °C = value * gain + offset. Centikelvin (°C = v * 0.01 - 273.15), a user's
  `GAIN,OFFSET`, a TIFF's metadata or a sidecar JSON's `ir` block.
- `PlanckScale`: FLIR's raw-to-temperature model from the calibration constants (R1, R2, B, F, O)
  and the object parameters (emissivity, distance, reflected and atmospheric temperature, humidity)
  a FLIR R-JPEG carries, the same equations flyr and ExifTool's users apply.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import numpy as np

ZERO_CELSIUS_K = 273.15

# One count of each unit, as (gain, offset) giving °C.
UNITS: dict[str, tuple[float, float]] = {
    "kelvin": (1.0, -ZERO_CELSIUS_K), "decikelvin": (0.1, -ZERO_CELSIUS_K),
    "centikelvin": (0.01, -ZERO_CELSIUS_K), "millikelvin": (0.001, -ZERO_CELSIUS_K),
    "celsius": (1.0, 0.0), "decicelsius": (0.1, 0.0), "centicelsius": (0.01, 0.0), "millicelsius": (0.001, 0.0),
}
_ALIASES = {"k": "kelvin", "dk": "decikelvin", "ck": "centikelvin", "mk": "millikelvin", "c": "celsius",
            "degc": "celsius", "°c": "celsius", "deg_c": "celsius", "degree_celsius": "celsius"}


def unit_name(text: str) -> str | None:
    """The UNITS key `text` names (case-insensitive, a few aliases), or None."""
    key = str(text).strip().lower().replace(" ", "_")
    key = _ALIASES.get(key, key)
    return key if key in UNITS else None


@dataclass(frozen=True)
class LinearScale:
    """°C = value * gain + offset. `source` says where the numbers came from (shown by `info`)."""

    gain: float
    offset: float
    source: str = "user"
    kind: ClassVar[str] = "linear"

    def __post_init__(self) -> None:
        for k in ("gain", "offset"):
            v = getattr(self, k)
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"IR scale {k} must be a finite number, got {v!r}")
        if self.gain == 0:
            raise ValueError("IR scale gain must not be 0")

    @classmethod
    def of_units(cls, units: str, source: str = "user") -> LinearScale:
        name = unit_name(units)
        if name is None:
            raise ValueError(f"unknown IR unit {units!r}; known: {', '.join(UNITS)}")
        gain, offset = UNITS[name]
        return cls(gain, offset, source)

    def celsius(self, values: Any) -> np.ndarray:
        """float32 °C of `values` (computed in float64, so centikelvin converts exactly)."""
        v = np.asarray(values, dtype=np.float64)
        return (v * self.gain + self.offset).astype(np.float32)

    def raw_of(self, celsius: float) -> float:
        """The count that reads `celsius` (a °C display span becomes raw display levels)."""
        return (float(celsius) - self.offset) / self.gain

    def describe(self) -> str:
        sign = "-" if self.offset < 0 else "+"
        return f"°C = v × {self.gain:g} {sign} {abs(self.offset):g} ({self.source})"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "gain": self.gain, "offset": self.offset, "source": self.source}


def parse_ir_scale(text: str, source: str = "user") -> LinearScale:
    """A unit name ("centikelvin", "kelvin", "celsius", ...) or "GAIN,OFFSET" (°C = v*GAIN + OFFSET)."""
    s = str(text).strip()
    if unit_name(s) is not None:
        return LinearScale.of_units(s, source)
    parts = [p.strip() for p in s.split(",")]
    try:
        if len(parts) != 2:
            raise ValueError
        return LinearScale(float(parts[0]), float(parts[1]), source)
    except ValueError:
        raise ValueError(f"IR scale {text!r}: give GAIN,OFFSET (°C = value × GAIN + OFFSET, e.g. 0.01,-273.15) "
                         f"or a unit: {', '.join(UNITS)}") from None


def scale_from_meta(meta: Any, source: str) -> LinearScale | None:
    """The linear scale a JSON block states, or None when it states none.

    Form: {"units": U, "scale": s, "offset": o}, at the top level or under "ir", "thermal" or
    "radiometry". U is the unit of one count (UNITS). Without scale/offset the unit says it all;
    with them, value * scale + offset is in kelvin for a kelvin unit, in °C for a Celsius one
    (the demo's demo.json: centikelvin, scale 0.01, offset 0). An unknown unit raises ValueError."""
    if not isinstance(meta, dict):
        return None
    block = next((meta[k] for k in ("ir", "thermal", "radiometry") if isinstance(meta.get(k), dict)), meta)
    units = block.get("units", block.get("unit"))
    if units is None:
        return None
    name = unit_name(units)
    if name is None:
        raise ValueError(f"{source}: unknown IR unit {units!r}; known: {', '.join(UNITS)}")
    gain, offset = UNITS[name]
    if "scale" in block or "offset" in block:
        base = -ZERO_CELSIUS_K if name.endswith("kelvin") else 0.0
        try:
            gain, offset = float(block.get("scale", gain)), float(block.get("offset", 0.0)) + base
        except (TypeError, ValueError):
            raise ValueError(f"{source}: IR scale and offset must be numbers, got {block.get('scale')!r}, "
                             f"{block.get('offset')!r}") from None
    return LinearScale(gain, offset, source)


# FLIR's defaults for the atmospheric transmission model, used when a file does not carry them.
_ATM_DEFAULTS = {"alpha1": 0.006569, "alpha2": 0.01262, "beta1": -0.002276, "beta2": -0.00667, "x": 1.9}


@dataclass(frozen=True)
class PlanckScale:
    """FLIR's raw-to-temperature model. Temperatures in kelvin, distance in metres, humidity 0..1.

    raw_obj = (raw / (E τ1 τw τ2)) - (what atmosphere, window and reflections add, in counts)
    T = B / ln(R1 / (R2 (raw_obj + O)) + F)
    With E = 1, no distance and no window that is T = B / ln(R1 / (R2 (raw + O)) + F)."""

    r1: float
    r2: float
    b: float
    f: float
    o: float
    emissivity: float = 1.0
    object_distance: float = 0.0
    reflected_temperature: float = 293.15
    atmospheric_temperature: float = 293.15
    ir_window_temperature: float = 293.15
    ir_window_transmission: float = 1.0
    relative_humidity: float = 0.5
    alpha1: float = _ATM_DEFAULTS["alpha1"]
    alpha2: float = _ATM_DEFAULTS["alpha2"]
    beta1: float = _ATM_DEFAULTS["beta1"]
    beta2: float = _ATM_DEFAULTS["beta2"]
    x: float = _ATM_DEFAULTS["x"]
    source: str = "FLIR metadata"
    kind: ClassVar[str] = "planck"

    def __post_init__(self) -> None:
        for fld in fields(self):
            v = getattr(self, fld.name)
            if fld.name != "source" and (not isinstance(v, int | float) or not math.isfinite(v)):
                raise ValueError(f"{self.source}: Planck constant {fld.name} must be a finite number, got {v!r}")
        if self.r2 == 0 or self.b == 0:
            raise ValueError(f"{self.source}: Planck constants R2 and B must not be 0")
        if not 0 < self.emissivity <= 1 or not 0 < self.ir_window_transmission <= 1:
            raise ValueError(f"{self.source}: emissivity and IR window transmission must be in (0, 1]")

    @classmethod
    def from_flir(cls, meta: dict[str, Any], source: str) -> PlanckScale:
        """From the camera-info record as flyr's `parse_camera_info` names its keys."""
        m = {**{f"atmospheric_trans_{k}": v for k, v in _ATM_DEFAULTS.items()}, **meta}
        try:
            return cls(
                r1=float(m["planck_r1"]), r2=float(m["planck_r2"]), b=float(m["planck_b"]),
                f=float(m["planck_f"]), o=float(m["planck_o"]), emissivity=float(m["emissivity"]),
                object_distance=float(m["object_distance"]),
                reflected_temperature=float(m["reflected_apparent_temperature"]),
                atmospheric_temperature=float(m["atmospheric_temperature"]),
                ir_window_temperature=float(m["ir_window_temperature"]),
                ir_window_transmission=float(m["ir_window_transmission"]),
                relative_humidity=float(m["relative_humidity"]),
                alpha1=float(m["atmospheric_trans_alpha1"]), alpha2=float(m["atmospheric_trans_alpha2"]),
                beta1=float(m["atmospheric_trans_beta1"]), beta2=float(m["atmospheric_trans_beta2"]),
                x=float(m["atmospheric_trans_x"]), source=source)
        except KeyError as exc:
            raise ValueError(f"{source}: FLIR camera info lacks {exc.args[0]}") from None

    def _counts(self, t_kelvin: float) -> float:
        """The raw count a black body at `t_kelvin` gives (the inverse of the model)."""
        return self.r1 / (self.r2 * (math.exp(self.b / t_kelvin) - self.f)) - self.o

    @functools.cached_property
    def _terms(self) -> tuple[float, float]:
        """(divisor, subtraction): raw_obj = raw / divisor - subtraction. Per frame, not per pixel."""
        t_atm = self.atmospheric_temperature
        water = self.relative_humidity * math.exp(1.5587 + 0.06939 * (t_atm - ZERO_CELSIUS_K)
                                                  - 0.00027816 * (t_atm - ZERO_CELSIUS_K) ** 2
                                                  + 0.00000068455 * (t_atm - ZERO_CELSIUS_K) ** 3)

        def atmos(alpha: float, beta: float) -> float:
            return math.exp(-math.sqrt(self.object_distance / 2) * (alpha + beta * math.sqrt(water)))

        tau = self.x * atmos(self.alpha1, self.beta1) + (1 - self.x) * atmos(self.alpha2, self.beta2)
        e, tw = self.emissivity, self.ir_window_transmission
        refl = self._counts(self.reflected_temperature)
        atm = self._counts(t_atm)
        term3 = e * tau * tw
        sub = math.fsum([(1 - tau) / e / tau * atm, (1 - tau) / term3 / tau * atm,
                         (1 - tw) / term3 * self._counts(self.ir_window_temperature), (1 - e) / e * refl])
        return e * tau * tw * tau, sub

    def celsius(self, values: Any) -> np.ndarray:
        """float32 °C of raw counts; counts below the model's range give NaN."""
        divisor, sub = self._terms
        obj = np.asarray(values, dtype=np.float64) / divisor - sub
        with np.errstate(divide="ignore", invalid="ignore"):
            t = self.b / np.log(self.r1 / (self.r2 * (obj + self.o)) + self.f)
        t = np.where(np.isfinite(t) & (t > 0), t, np.nan)
        return (t - ZERO_CELSIUS_K).astype(np.float32)

    def describe(self) -> str:
        return (f"FLIR Planck R1 {self.r1:g} R2 {self.r2:g} B {self.b:g} F {self.f:g} O {self.o:g}, "
                f"emissivity {self.emissivity:g} ({self.source})")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


Radiometry = LinearScale | PlanckScale
