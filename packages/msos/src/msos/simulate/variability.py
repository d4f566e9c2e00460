"""Variable stars and microlensing events: the truth light curves.

Every light curve multiplies a star's baseline flux ``F0`` (DN/s):

- ``periodic`` / ``sine``: ``F0 · (1 + a · sin(2π (t − t_ref) / P))``;
- ``periodic`` / ``eclipsing``: ``F0 · (1 − a · d(φ) − a₂ · d(φ − ½))``, ``φ = (t − t_ref) / P``
  mod 1, with Gaussian dips ``d(φ) = exp(−½ (Δφ / w)²)`` (Δφ wrapped to ±½, ``w`` the dip width
  in phase);
- ``microlensing``: ``F0 · (fs · A(t) + 1 − fs)``: ``F0`` the baseline (source + blend) flux and
  ``fs`` the source's fraction of it. Point-source point-lens (``pspl``):
  ``A = (u² + 2) / (u √(u² + 4))``, ``u² = u0² + ((t − t0) / tE)²`` (Paczyński 1986). Binary
  (``binary``, point source): lens masses ``1/(1+q)`` and ``q/(1+q)`` on the real axis at
  ``−s q/(1+q)`` and ``s/(1+q)`` (origin at the centre of mass, lengths in θ_E of the total
  mass); the source moves along ``τ = (t − t0)/tE``: ``y1 = τ cos α − u0 sin α``,
  ``y2 = τ sin α + u0 cos α``; ``A`` is the sum of the images' |det J|⁻¹.

Times are MJD TDB (mid-exposure).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KIND_CONSTANT = "constant"
KIND_PERIODIC = "periodic"
KIND_MICROLENSING = "microlensing"


def paczynski(u: np.ndarray) -> np.ndarray:
    """Point-source point-lens magnification at lens–source separation ``u`` (θ_E)."""
    u = np.asarray(u, dtype=float)
    return (u * u + 2.0) / (u * np.sqrt(u * u + 4.0))


def pspl_magnification(t: np.ndarray, t0: float, u0: float, te: float) -> np.ndarray:
    """PSPL magnification at times ``t`` (same unit as ``t0``, ``te`` in days)."""
    tau = (np.asarray(t, dtype=float) - t0) / te
    return paczynski(np.sqrt(u0 * u0 + tau * tau))


def binary_trajectory(
    t: np.ndarray, t0: float, u0: float, te: float, alpha_rad: float
) -> tuple[np.ndarray, np.ndarray]:
    """Source position (y1, y2) in the binary-lens frame at times ``t``."""
    tau = (np.asarray(t, dtype=float) - t0) / te
    return (
        tau * np.cos(alpha_rad) - u0 * np.sin(alpha_rad),
        tau * np.sin(alpha_rad) + u0 * np.cos(alpha_rad),
    )


def _polymul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Product of batches of polynomials (coefficients lowest degree first, last axis)."""
    batch = np.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    out = np.zeros((*batch, a.shape[-1] + b.shape[-1] - 1), dtype=complex)
    for i in range(a.shape[-1]):
        out[..., i : i + b.shape[-1]] += a[..., i : i + 1] * b
    return out


def _pad(a: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([a, np.zeros((*a.shape[:-1], n - a.shape[-1]), complex)], axis=-1)


def binary_images(zeta: np.ndarray, s: float, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Images of point sources at complex positions ``zeta`` (batch): the 5 roots of the
    binary-lens polynomial sorted by lens-equation residual, and the number of real images."""
    m1, m2 = 1.0 / (1.0 + q), q / (1.0 + q)
    z1, z2 = -s * m2, s * m1
    zeta = np.atleast_1d(np.asarray(zeta, dtype=complex))[:, None]
    a = np.array([[z1 * z2, -(z1 + z2), 1.0]], dtype=complex)  # (z − z1)(z − z2)
    # conj(z) = conj(ζ) + m1/(z − z1) + m2/(z − z2) = w / a; the lens equation × d1 d2:
    # (z − ζ) d1 d2 − m1 a d2 − m2 a d1 = 0 with d_k = w − z_k a
    w = np.conj(zeta) * a + _pad(np.array([[-(m1 * z2 + m2 * z1), 1.0]], dtype=complex), 3)
    d1, d2 = w - z1 * a, w - z2 * a
    lhs = _polymul(_polymul(np.concatenate([-zeta, np.ones_like(zeta)], axis=1), d1), d2)
    poly = lhs - _pad(m1 * _polymul(a, d2) + m2 * _polymul(a, d1), 6)
    companion = np.zeros((len(zeta), 5, 5), dtype=complex)
    companion[:, 1:, :-1] = np.eye(4)
    companion[:, :, -1] = -poly[:, :5] / poly[:, 5:6]
    roots = np.linalg.eigvals(companion)
    lensed = roots - m1 / (np.conj(roots) - z1) - m2 / (np.conj(roots) - z2)
    residual = np.abs(lensed - zeta)
    order = np.argsort(residual, axis=1)
    roots = np.take_along_axis(roots, order, axis=1)
    residual = np.take_along_axis(residual, order, axis=1)
    # 3 images outside the caustics, 5 inside; the 2 spurious roots solve the polynomial only
    count = np.where(residual[:, 4] < 1e-6 * np.maximum(1.0, np.abs(zeta[:, 0])), 5, 3)
    return roots, count


def binary_magnification(
    y1: np.ndarray, y2: np.ndarray, s: float, q: float
) -> tuple[np.ndarray, np.ndarray]:
    """Point-source binary-lens magnification at source positions ``(y1, y2)`` and the number
    of images (3 outside the caustics, 5 inside)."""
    m1, m2 = 1.0 / (1.0 + q), q / (1.0 + q)
    z1, z2 = -s * m2, s * m1
    y1, y2 = np.atleast_1d(y1).astype(float), np.atleast_1d(y2).astype(float)
    roots, count = binary_images(y1 + 1j * y2, s, q)
    shear = m1 / (np.conj(roots) - z1) ** 2 + m2 / (np.conj(roots) - z2) ** 2
    inverse_det = 1.0 / np.abs(1.0 - np.abs(shear) ** 2)
    real = np.arange(5)[None, :] < count[:, None]
    return np.sum(np.where(real, inverse_det, 0.0), axis=1), count


def periodic_factor(
    t: np.ndarray,
    shape: str,
    period: float,
    t_ref: float,
    amplitude: float,
    amplitude2: float = 0.0,
    width: float = 0.05,
) -> np.ndarray:
    """Flux relative to the baseline of a periodic variable at times ``t``."""
    phase = (np.asarray(t, dtype=float) - t_ref) / period
    if shape == "sine":
        return 1.0 + amplitude * np.sin(2 * np.pi * phase)
    d1 = (phase % 1.0 + 0.5) % 1.0 - 0.5
    d2 = ((phase - 0.5) % 1.0 + 0.5) % 1.0 - 0.5
    return (
        1.0
        - amplitude * np.exp(-0.5 * (d1 / width) ** 2)
        - amplitude2 * np.exp(-0.5 * (d2 / width) ** 2)
    )


#: the parameter columns of :class:`Variability` (NaN where a model does not use one)
PARAMETERS = (
    "period_d", "t_ref_mjd_tdb", "amplitude", "amplitude2", "eclipse_width",
    "t0_mjd_tdb", "u0", "te_d", "fs", "q", "s", "alpha_deg",
)  # fmt: skip


@dataclass
class Variability:
    """Which stars vary, and how: one entry per variable star, ``index`` into the star field,
    ``model`` one of sine / eclipsing / pspl / binary, ``params`` the :data:`PARAMETERS`."""

    index: np.ndarray
    model: np.ndarray
    params: dict[str, np.ndarray]

    @classmethod
    def from_rows(cls, rows: list[tuple[int, str, dict[str, float]]]) -> Variability:
        rows = sorted(rows, key=lambda row: row[0])
        return cls(
            index=np.array([r[0] for r in rows], dtype=np.int64),
            model=np.array([r[1] for r in rows], dtype="U9"),
            params={
                name: np.array([r[2].get(name, np.nan) for r in rows], dtype=float)
                for name in PARAMETERS
            },
        )

    def __len__(self) -> int:
        return len(self.index)

    @property
    def kind(self) -> np.ndarray:
        """constant / periodic / microlensing of each variable star."""
        return np.where(np.isin(self.model, ("pspl", "binary")), KIND_MICROLENSING, KIND_PERIODIC)

    def light_curves(self, t: np.ndarray) -> np.ndarray:
        """``[n_variable, n_times]`` flux relative to the baseline at times ``t`` (MJD TDB)."""
        t = np.atleast_1d(np.asarray(t, dtype=float))[None, :]
        p = {name: values[:, None] for name, values in self.params.items()}
        out = np.ones((len(self), t.shape[1]))
        sine = self.model == "sine"
        out[sine] = periodic_factor(
            t, "sine", p["period_d"][sine], p["t_ref_mjd_tdb"][sine], p["amplitude"][sine]
        )
        ecl = self.model == "eclipsing"
        out[ecl] = periodic_factor(
            t, "eclipsing", p["period_d"][ecl], p["t_ref_mjd_tdb"][ecl], p["amplitude"][ecl],
            p["amplitude2"][ecl], p["eclipse_width"][ecl],
        )  # fmt: skip
        pspl = self.model == "pspl"
        mag = pspl_magnification(t, p["t0_mjd_tdb"][pspl], p["u0"][pspl], p["te_d"][pspl])
        out[pspl] = p["fs"][pspl] * mag + 1.0 - p["fs"][pspl]
        for k in np.flatnonzero(self.model == "binary"):
            q = {name: values[k] for name, values in self.params.items()}
            y1, y2 = binary_trajectory(
                t[0], q["t0_mjd_tdb"], q["u0"], q["te_d"], np.radians(q["alpha_deg"])
            )
            mag, _ = binary_magnification(y1, y2, q["s"], q["q"])
            out[k] = q["fs"] * mag + 1.0 - q["fs"]
        return out


def draw_variability(
    rng: np.random.Generator,
    mag: np.ndarray,
    interior: np.ndarray,
    t_start: float,
    t_end: float,
    periodic_fraction: float = 0.01,
    n_pspl: int = 5,
    n_binary: int = 1,
) -> Variability:
    """Choose the variables: ``periodic_fraction`` of all stars (any magnitude) are periodic;
    ``n_pspl`` point-lens and ``n_binary`` binary-lens events have sources of 18.5–23 mag
    among the ``interior`` stars (well inside the image), most peaking between ``t_start``
    and ``t_end`` (MJD TDB), one PSPL peaking a little after it."""
    n = len(mag)
    rows: list[tuple[int, str, dict[str, float]]] = []
    span = max(t_end - t_start, 1e-3)

    candidates = np.flatnonzero(interior & (mag > 18.5) & (mag < 23.0))
    n_events = min(n_pspl + n_binary, len(candidates))
    sources = rng.choice(candidates, size=n_events, replace=False) if n_events else []
    for k, star in enumerate(sources):
        binary = k >= n_events - min(n_binary, n_events)
        late = not binary and k == 0 and n_pspl > 1
        params = {
            "t0_mjd_tdb": t_start
            + span * (rng.uniform(1.05, 1.5) if late else rng.uniform(0.2, 0.8)),
            "u0": rng.uniform(0.05, 0.5),
            "te_d": float(np.exp(rng.uniform(np.log(0.3), np.log(20.0)))),
            "fs": rng.uniform(0.3, 1.0),
        }
        if binary:
            params.update(_draw_binary(rng, params, t_start, t_end))
        rows.append((int(star), "binary" if binary else "pspl", params))

    n_periodic = round(periodic_fraction * n)
    pool = np.setdiff1d(np.arange(n), [row[0] for row in rows])
    for star in np.sort(rng.choice(pool, size=min(n_periodic, len(pool)), replace=False)):
        eclipsing = rng.uniform() < 0.3
        period = float(np.exp(rng.uniform(np.log(0.05), np.log(5.0))))
        params = {
            "period_d": period,
            "t_ref_mjd_tdb": t_start + rng.uniform(0.0, period),
            "amplitude": rng.uniform(0.05, 0.4) if eclipsing else rng.uniform(0.01, 0.2),
        }
        if eclipsing:
            params.update(amplitude2=rng.uniform(0.0, 0.2), eclipse_width=rng.uniform(0.02, 0.06))
        rows.append((int(star), "eclipsing" if eclipsing else "sine", params))
    return Variability.from_rows(rows)


def _draw_binary(
    rng: np.random.Generator, params: dict[str, float], t_start: float, t_end: float
) -> dict[str, float]:
    """A planetary binary lens whose central-caustic anomaly falls in the window, the source
    passing close to the caustic without crossing it (point-source magnification stays finite)."""
    params["te_d"] = rng.uniform(1.0, 4.0)
    times = np.linspace(t_start - 0.5, t_end + 0.5, 600)
    best: dict[str, float] = {}
    for _ in range(200):
        trial = {
            "q": float(10.0 ** rng.uniform(-3.0, -2.0)),
            "s": rng.uniform(0.85, 1.15),
            "alpha_deg": rng.uniform(0.0, 360.0),
            "u0": rng.uniform(0.005, 0.03),
        }
        y1, y2 = binary_trajectory(
            times, params["t0_mjd_tdb"], trial["u0"], params["te_d"], np.radians(trial["alpha_deg"])
        )
        mag, count = binary_magnification(y1, y2, trial["s"], trial["q"])
        if np.all(count == 3):
            pspl = pspl_magnification(times, params["t0_mjd_tdb"], trial["u0"], params["te_d"])
            best = trial
            if np.max(np.abs(mag / pspl - 1.0)) > 0.02:  # a visible anomaly
                break
    if not best:  # (never in practice) fall back to a lens too far to disturb the light curve
        best = {"q": 1e-4, "s": 3.0, "alpha_deg": 0.0, "u0": 0.1}
    return best
