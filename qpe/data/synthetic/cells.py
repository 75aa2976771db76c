"""Convective cells with life cycles: their rain cores, cloud towers and anvils.

Every cell lives ``life`` minutes and then leaves its anvil behind for ``anvil_life`` more. With age
``a`` (minutes since birth), growth time ``g = 0.35 life`` and cooling lead ``l``:

- **tower top** ``H(a) = h0 + (H_max - h0) s(a / g)`` (``s`` a smoothstep): the top rises and cools
  during growth and stays at ``H_max`` until the cell dies;
- **rain** ``I(a) = I_peak exp(-(a - a_p)^2 / (2 w^2))`` with its peak at ``a_p = g + l``, i.e. ``l``
  (15-30 min) *after* the top reached its coldest: cooling precedes the rain;
- **anvil** from ``a = g``: an ice cloud at ``H_max - 0.5 km`` drifting with the upper-level wind,
  spreading at a constant speed, thick in the centre and thin at the edge, that thins out
  exponentially after the cell dies — cold cloud without rain.

Positions live on the periodic simulation domain (pixels); :meth:`CellPopulation.render` draws the
cells on a window of it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from qpe.data.synthetic.config import CloudConfig, RainConfig

#: Height of a newborn cumulus top, km; optical depth of a tower and of a fresh anvil core.
BIRTH_TOP_KM = 3.0
TOWER_OPTICAL_DEPTH = 80.0
ANVIL_OPTICAL_DEPTH = 30.0


@dataclass
class CellPopulation:
    """Properties of convective cells, one array element per cell (times in min, lengths in pixels)."""

    row: np.ndarray
    col: np.ndarray
    birth: np.ndarray
    life: np.ndarray
    lead: np.ndarray
    peak_mm_h: np.ndarray
    radius: np.ndarray
    top_km: np.ndarray
    anvil_life: np.ndarray
    drift_row: np.ndarray
    drift_col: np.ndarray
    anvil_drift_row: np.ndarray
    anvil_drift_col: np.ndarray
    aspect: np.ndarray
    angle: np.ndarray

    @classmethod
    def empty(cls) -> CellPopulation:
        return cls(**{f.name: np.zeros(0) for f in fields(cls)})

    @classmethod
    def spawn(
        cls,
        rng: np.random.Generator,
        row: np.ndarray,
        col: np.ndarray,
        birth: np.ndarray,
        rain: RainConfig,
        clouds: CloudConfig,
        pixel_km: float,
        steering_px_min: tuple[float, float],
        upper_px_min: tuple[float, float],
    ) -> CellPopulation:
        """New cells born at ``(row, col)`` at times ``birth`` (min), properties drawn from the configs."""
        n = row.size
        life = rng.uniform(*rain.cell_lifetime_min, n)
        # Individual motion: the steering wind plus a deviation of up to 2 m/s.
        deviation = rng.normal(0.0, 2.0 * 0.06 / pixel_km, (2, n))  # 2 m/s = 0.12 km/min
        anvil_spread = rng.uniform(0.5, 1.5, n)
        return cls(
            row=row,
            col=col,
            birth=birth,
            life=life,
            lead=np.minimum(rng.uniform(*rain.cooling_lead_min, n), 0.4 * life),
            peak_mm_h=rain.cell_peak_mm_h * np.exp(rain.cell_peak_spread * rng.standard_normal(n)),
            radius=rng.uniform(*rain.cell_radius_km, n) / pixel_km,
            top_km=rng.uniform(9.0, 13.5, n),
            anvil_life=rng.uniform(*clouds.anvil_lifetime_min, n),
            drift_row=steering_px_min[0] + deviation[0],
            drift_col=steering_px_min[1] + deviation[1],
            anvil_drift_row=(upper_px_min[0] - steering_px_min[0]) * anvil_spread,
            anvil_drift_col=(upper_px_min[1] - steering_px_min[1]) * anvil_spread,
            aspect=rng.uniform(1.0, 2.2, n),
            angle=rng.uniform(0.0, np.pi, n),
        )

    def __len__(self) -> int:
        return self.row.size

    def extend(self, other: CellPopulation) -> CellPopulation:
        return CellPopulation(**{f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                                 for f in fields(self)})

    def select(self, keep: np.ndarray) -> CellPopulation:
        return CellPopulation(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})

    def alive(self, t_min: float) -> CellPopulation:
        """The cells (or their anvils) that exist at time ``t_min``."""
        age = t_min - self.birth
        return self.select((age >= 0) & (age <= self.life + self.anvil_life))

    # -- life cycles (vectorised over cells) ------------------------------------------------------
    def growth(self) -> np.ndarray:
        """Duration of the growth stage, min."""
        return 0.35 * self.life

    def rain_rate(self, age: np.ndarray) -> np.ndarray:
        """Peak rain rate of each cell at ``age`` min, mm/h (zero outside its life)."""
        peak = self.growth() + self.lead
        width = np.where(age < peak, peak / 2.5, (self.life - peak) / 2.5)
        rate = self.peak_mm_h * np.exp(-0.5 * ((age - peak) / np.maximum(width, 1.0)) ** 2)
        return np.where((age >= 0) & (age <= self.life), rate, 0.0)

    def tower_top_km(self, age: np.ndarray) -> np.ndarray:
        """Height of the tower top at ``age`` min, km (NaN once the cell has died)."""
        x = np.clip(age / self.growth(), 0.0, 1.0)
        height = BIRTH_TOP_KM + (self.top_km - BIRTH_TOP_KM) * x * x * (3 - 2 * x)
        return np.where(age <= self.life, height, np.nan)

    def anvil(self, age: np.ndarray, spread_px_min: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Radius (px), core optical depth and height (km) of each anvil at ``age`` min (0 before it forms).

        ``spread_px_min`` is the speed at which anvils spread, pixels per minute.
        """
        since = age - self.growth()
        radius = np.where(since > 0, 1.8 * self.radius + spread_px_min * np.maximum(since, 0.0), 0.0)
        after_death = np.maximum(age - self.life, 0.0)
        tau = ANVIL_OPTICAL_DEPTH * np.exp(-3.0 * after_death / self.anvil_life)
        exists = (since > 0) & (after_death < self.anvil_life)
        tau = np.where(exists, tau * np.minimum(since / 15.0, 1.0), 0.0)  # builds up over 15 minutes
        height = self.top_km - 0.5 - after_death / 60.0
        return radius, tau, height

    # -- drawing ------------------------------------------------------------------------------------
    def render(
        self, t_min: float, window: tuple[int, int, int], period: int, spread_px_min: float
    ) -> dict[str, np.ndarray]:
        """Draw the cells alive at ``t_min`` on a square window of the periodic domain.

        Parameters
        ----------
        t_min : float
            Time, min since the start.
        window : (int, int, int)
            Row and column of the window's upper-left pixel in the domain, and its side, pixels.
        period : int
            Side of the periodic domain, pixels.
        spread_px_min : float
            Anvil spreading speed, pixels per minute.

        Returns
        -------
        dict of numpy.ndarray
            Window fields (side, side) float32: ``rain`` (mm/h), ``tower_km`` and ``tower_tau`` (tower
            top height and optical depth, 0 where none), ``anvil_km`` and ``anvil_tau``.
        """
        row0, col0, side = window
        out = {name: np.zeros((side, side), dtype="float32")
               for name in ("rain", "tower_km", "tower_tau", "anvil_km", "anvil_tau")}
        cells = self.alive(t_min)
        if not len(cells):
            return out
        age = t_min - cells.birth
        rate = cells.rain_rate(age)
        tower = cells.tower_top_km(age)
        growing = np.clip(age / cells.growth(), 0.0, 1.0)
        tower_radius = cells.radius * (1.4 + 0.6 * growing)
        anvil_radius, anvil_tau, anvil_km = cells.anvil(age, spread_px_min)
        row = cells.row + cells.drift_row * age
        col = cells.col + cells.drift_col * age
        since = np.maximum(age - cells.growth(), 0.0)
        # Window coordinates of the periodic image nearest to the window's centre.
        core_r, core_c = _to_window(row, row0, side, period), _to_window(col, col0, side, period)
        anvil_r = _to_window(row + cells.anvil_drift_row * since, row0, side, period)
        anvil_c = _to_window(col + cells.anvil_drift_col * since, col0, side, period)
        core_reach = np.maximum(2.5 * cells.radius, tower_radius)
        visible = (_overlaps(core_r, core_c, core_reach, side)
                   | _overlaps(anvil_r, anvil_c, anvil_radius, side))
        # Anvils stretch downwind of the upper-level wind relative to the cell.
        anvil_angle = np.arctan2(cells.anvil_drift_col, cells.anvil_drift_row)
        anvil_aspect = 1.0 + 0.1 * np.hypot(cells.anvil_drift_row, cells.anvil_drift_col) * since
        canvas = out["rain"].shape
        for i in np.flatnonzero(visible):
            has_rain, has_tower = rate[i] > 0.05, np.isfinite(tower[i])
            if has_rain or has_tower:
                reach = max(2.5 * cells.radius[i] if has_rain else 0.0, tower_radius[i] if has_tower else 0.0)
                box, r2, _ = _ellipse(canvas, core_r[i], core_c[i], reach, (cells.aspect[i], cells.angle[i]))
                if box is not None and has_rain:
                    reach2 = np.float32((2.5 * cells.radius[i]) ** 2)
                    core = rate[i] * np.exp(-r2 / cells.radius[i] ** 2)
                    out["rain"][box] += np.where(r2 < reach2, core, 0.0)
                if box is not None and has_tower:
                    b2 = np.float32(tower_radius[i] ** 2)
                    inside = r2 < b2
                    top = out["tower_km"][box]
                    np.maximum(top, np.where(inside, tower[i] - 1.5 * r2 / b2, 0.0), out=top)
                    tau = out["tower_tau"][box]
                    np.maximum(tau, np.float32(TOWER_OPTICAL_DEPTH) * inside, out=tau)
            if anvil_tau[i] > 0:
                b = anvil_radius[i]
                stretch = (min(anvil_aspect[i], 2.5), anvil_angle[i])
                box, r2, inside = _ellipse(canvas, anvil_r[i], anvil_c[i], b, stretch)
                if box is not None:
                    out["anvil_tau"][box] += anvil_tau[i] * np.maximum(1.0 - r2 / b**2, 0.0) ** 1.5
                    km = out["anvil_km"][box]
                    np.maximum(km, np.float32(anvil_km[i]) * inside, out=km)
        return out


def _to_window(position: np.ndarray, origin: int, side: int, period: int) -> np.ndarray:
    """Window coordinate of the periodic image of ``position`` nearest to the window's centre."""
    centre = side / 2
    return ((position - origin - centre + period / 2) % period) - period / 2 + centre


def _overlaps(r: np.ndarray, c: np.ndarray, reach: np.ndarray, side: int) -> np.ndarray:
    return (r + reach >= 0) & (r - reach < side) & (c + reach >= 0) & (c - reach < side) & (reach > 0)


def _ellipse(
    canvas_shape: tuple[int, int], r: float, c: float, reach: float, shape: tuple[float, float]
) -> tuple[tuple[slice, slice] | None, np.ndarray | None, np.ndarray | None]:
    """The box around an ellipse at window position ``(r, c)``, squared distances in it and the inside.

    ``shape = (aspect, angle)``: the ellipse is ``aspect`` times longer along ``angle`` (radians from the
    row axis) than across, with the area of the circle of radius ``reach`` (pixels). Returns the box
    (slices into the canvas), the squared elliptical distance ``r2`` of its pixels from the centre and
    whether they are inside; ``(None, None, None)`` off the canvas.
    """
    aspect, angle = shape
    ny, nx = canvas_shape
    extent = reach * np.sqrt(aspect)
    r_lo, r_hi = max(int(r - extent), 0), min(int(r + extent) + 2, ny)
    c_lo, c_hi = max(int(c - extent), 0), min(int(c + extent) + 2, nx)
    if r_lo >= r_hi or c_lo >= c_hi:
        return None, None, None
    rr = (np.arange(r_lo, r_hi, dtype="float32") - np.float32(r))[:, None]
    cc = (np.arange(c_lo, c_hi, dtype="float32") - np.float32(c))[None, :]
    cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    along, across = rr * cos + cc * sin, cc * cos - rr * sin
    r2 = along * along / np.float32(aspect) + across * across * np.float32(aspect)
    return (slice(r_lo, r_hi), slice(c_lo, c_hi)), r2, r2 < np.float32(reach * reach)
