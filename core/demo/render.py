"""Rasteriser behind the procedural demo: a pinhole camera, a z-buffered canvas that paints EO
colour, IR temperature, class id and depth together, 3D primitives, and sprites (flat things at one
depth painted in one pass).

Why a tiny renderer rather than 2D sprites: every pixel of EO, IR and the label mask comes from the
same polygon with a per-pixel plane depth, so the ground truth is exact, occlusion is right in all
three images, and objects keep their perspective size as they move. Numpy + cv2 only.

World frame: x to the right, y up, z forward (metres); the camera sits at (0, CAM_HEIGHT, 0)
looking along +z with a level horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CAM_HEIGHT = 1.6
Z_NEAR = 0.35


@dataclass(frozen=True)
class Camera:
    """Pinhole camera scaled to the image: the same scene at any size (a ~71 deg horizontal view)."""

    height: int
    width: int

    @property
    def f(self) -> float:
        return 0.7 * self.width

    @property
    def cx(self) -> float:
        return (self.width - 1) / 2.0

    @property
    def v0(self) -> float:
        """Image row of the horizon."""
        return 0.42 * self.height

    def project(self, p: np.ndarray) -> np.ndarray:
        """(N, 3) world points (z > 0) -> (N, 2) pixel coordinates (u, v), pixel centres at integers."""
        k = self.f / p[:, 2]
        out = np.empty((len(p), 2))
        out[:, 0] = self.cx + k * p[:, 0]
        out[:, 1] = self.v0 + k * (CAM_HEIGHT - p[:, 1])
        return out

    def rays(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel ray direction (dx, dy) with dz = 1, as (H, W) float32 arrays."""
        u = (np.arange(self.width, dtype=np.float32) - self.cx) / self.f
        v = -(np.arange(self.height, dtype=np.float32) - self.v0) / self.f
        return np.broadcast_to(u[None, :], (self.height, self.width)), np.broadcast_to(
            v[:, None], (self.height, self.width)
        )


def _clip_near(pts: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman clip of a closed polygon against z >= Z_NEAR."""
    if pts[:, 2].min() >= Z_NEAR:
        return pts
    out = []
    n = len(pts)
    for i in range(n):
        a, b = pts[i], pts[(i + 1) % n]
        ina, inb = a[2] >= Z_NEAR, b[2] >= Z_NEAR
        if ina:
            out.append(a)
        if ina != inb:
            t = (Z_NEAR - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.asarray(out) if out else np.zeros((0, 3))


def _newell_normal(pts: np.ndarray) -> np.ndarray:
    nxt = np.roll(pts, -1, axis=0)
    n = np.array(
        [
            np.sum((pts[:, 1] - nxt[:, 1]) * (pts[:, 2] + nxt[:, 2])),
            np.sum((pts[:, 2] - nxt[:, 2]) * (pts[:, 0] + nxt[:, 0])),
            np.sum((pts[:, 0] - nxt[:, 0]) * (pts[:, 1] + nxt[:, 1])),
        ]
    )
    norm = np.linalg.norm(n)
    return n / norm if norm > 0 else np.array([0.0, 0.0, 1.0])


Color = tuple[float, float, float] | np.ndarray


class Canvas:
    """EO (H, W, 3) float32 in [0, 1], IR temperature (H, W) float32 kelvin, label (H, W) uint8,
    depth (H, W) float32 metres (inf = sky). Every draw call writes all four where it wins the
    depth test, so the label is exact by construction."""

    def __init__(self, cam: Camera, eo: np.ndarray, temp: np.ndarray, label: np.ndarray, depth: np.ndarray):
        self.cam, self.eo, self.temp, self.label, self.depth = cam, eo, temp, label, depth

    @classmethod
    def blank(cls, cam: Camera) -> Canvas:
        h, w = cam.height, cam.width
        return cls(
            cam,
            np.zeros((h, w, 3), np.float32),
            np.zeros((h, w), np.float32),
            np.zeros((h, w), np.uint8),
            np.full((h, w), np.inf, np.float32),
        )

    def copy(self) -> Canvas:
        return Canvas(self.cam, self.eo.copy(), self.temp.copy(), self.label.copy(), self.depth.copy())

    # -- rasterisation helpers ---------------------------------------------------------------------
    def _roi(self, uv: np.ndarray, pad: float = 1.0) -> tuple[int, int, int, int] | None:
        u0 = max(int(np.floor(uv[:, 0].min() - pad)), 0)
        u1 = min(int(np.ceil(uv[:, 0].max() + pad)) + 1, self.cam.width)
        v0 = max(int(np.floor(uv[:, 1].min() - pad)), 0)
        v1 = min(int(np.ceil(uv[:, 1].max() + pad)) + 1, self.cam.height)
        if u0 >= u1 or v0 >= v1:
            return None
        return u0, u1, v0, v1

    def _plane_depth(
        self, pts: np.ndarray, roi: tuple[int, int, int, int], n: np.ndarray | None
    ) -> np.ndarray | float:
        """Exact per-pixel depth of the polygon's plane inside the ROI (clamped to its z range)."""
        cam = self.cam
        zmin, zmax = float(pts[:, 2].min()), float(pts[:, 2].max())
        if zmax - zmin < 1e-6:  # facing the camera: constant depth
            return np.float32(zmin)
        u0, u1, v0, v1 = roi
        if n is None:
            n = _newell_normal(pts)
        d = float(n @ (pts[0] - np.array([0.0, CAM_HEIGHT, 0.0])))
        du = (np.arange(u0, u1, dtype=np.float32) - cam.cx) / cam.f
        dv = -(np.arange(v0, v1, dtype=np.float32) - cam.v0) / cam.f
        den = n[0] * du[None, :] + n[1] * dv[:, None] + n[2]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = d / den
        z = np.clip(z, zmin, zmax)
        z[np.isnan(z)] = zmax
        return z.astype(np.float32, copy=False)

    def _composite(
        self, roi, mask: np.ndarray, depth: np.ndarray | float, color, temp, label: int, bias: float
    ):
        u0, u1, v0, v1 = roi
        sub_d = self.depth[v0:v1, u0:u1]
        m = mask.astype(bool)
        m &= (depth - bias) < sub_d
        if not m.any():
            return
        rows = v1 - v0
        color = np.asarray(color, np.float32)
        eo = self.eo[v0:v1, u0:u1]
        if color.ndim == 2:  # (2, 3): vertical gradient top -> bottom over the ROI
            t = np.linspace(0.0, 1.0, rows, dtype=np.float32)[:, None]
            grad = color[0][None, :] * (1 - t) + color[1][None, :] * t
            eo[m] = np.broadcast_to(grad[:, None, :], eo.shape)[m]
        else:
            eo[m] = color
        if isinstance(temp, tuple):
            t = np.linspace(temp[0], temp[1], rows, dtype=np.float32)[:, None]
            self.temp[v0:v1, u0:u1][m] = np.broadcast_to(t, m.shape)[m]
        else:
            self.temp[v0:v1, u0:u1][m] = temp
        self.label[v0:v1, u0:u1][m] = label
        if np.isscalar(depth):
            sub_d[m] = depth
        else:
            sub_d[m] = depth[m]

    # -- primitives ---------------------------------------------------------------------------------
    def poly(self, pts, color, temp, label: int, bias: float = 0.0, normal: np.ndarray | None = None) -> None:
        """A planar polygon given by (N, 3) world points (its plane normal, when known, saves work)."""
        pts = _clip_near(np.asarray(pts, np.float64))
        if len(pts) < 3:
            return
        hit = self.polygon_mask(pts)
        if hit is None:
            return
        roi, mask = hit
        self._composite(roi, mask, self._plane_depth(pts, roi, normal), color, temp, label, bias)

    def polygon_mask(self, pts: np.ndarray) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
        """Project a 3-D polygon; its on-screen box (u0, u1, v0, v1) and a uint8 mask of that box
        (sub-pixel vertices, 1/16 px), or None when it is off screen."""
        uv = self.cam.project(pts)
        roi = self._roi(uv)
        if roi is None:
            return None
        u0, u1, v0, v1 = roi
        mask = np.zeros((v1 - v0, u1 - u0), np.uint8)
        fx = np.round((uv - np.array([u0, v0])) * 16).astype(np.int32)
        cv2.fillPoly(mask, [fx], 1, lineType=cv2.LINE_8, shift=4)
        return roi, mask

    def polyline(
        self, pts, thickness_m: float, color, temp, label: int, closed: bool = False, bias: float = 0.0
    ):
        """A stroked 3D polyline (bike frames, wheels, poles) at its mean depth."""
        pts = np.asarray(pts, np.float64)
        if pts[:, 2].min() < Z_NEAR:
            return
        uv = self.cam.project(pts)
        zmean = float(pts[:, 2].mean())
        th = max(1, int(round(self.cam.f * thickness_m / zmean)))
        roi = self._roi(uv, pad=th + 1)
        if roi is None:
            return
        u0, u1, v0, v1 = roi
        mask = np.zeros((v1 - v0, u1 - u0), np.uint8)
        fx = np.round((uv - np.array([u0, v0])) * 16).astype(np.int32)
        cv2.polylines(mask, [fx], closed, 1, thickness=th, lineType=cv2.LINE_8, shift=4)
        self._composite(roi, mask, np.float32(zmean), color, temp, label, bias)

    def box(self, lo, hi, color, temp, label: int, shade: dict | None = None, temps: dict | None = None):
        """Axis-aligned box: draws its camera-facing faces. `shade`/`temps` map a face key
        ('x-', 'x+', 'y+', 'z-', 'z+') to a colour factor / a temperature."""
        lo = np.asarray(lo, np.float64)
        hi = np.asarray(hi, np.float64)
        cam = (0.0, CAM_HEIGHT, 0.0)
        color = np.asarray(color, np.float32)
        for axis, key in ((0, "x"), (1, "y"), (2, "z")):
            if cam[axis] < lo[axis]:
                side, c = "-", lo[axis]
            elif cam[axis] > hi[axis]:
                side, c = "+", hi[axis]
            else:
                continue
            fk = key + side
            a, b = [i for i in range(3) if i != axis]
            corners = []
            for ca, cb in ((lo[a], lo[b]), (hi[a], lo[b]), (hi[a], hi[b]), (lo[a], hi[b])):
                p = np.empty(3)
                p[axis], p[a], p[b] = c, ca, cb
                corners.append(p)
            f = (shade or {}).get(fk, 1.0)
            t = (temps or {}).get(fk, temp)
            n = np.zeros(3)
            n[axis] = 1.0
            self.poly(np.array(corners), color * f, t, label, normal=n)

    def glow(self, p, radius_m: float, color, strength: float, layer: np.ndarray) -> None:
        """Additive light source (headlight, lamp) into a separate glare layer."""
        p = np.asarray(p, np.float64)[None, :]
        if p[0, 2] < Z_NEAR:
            return
        u, v = self.cam.project(p)[0]
        r = min(max(1.5, self.cam.f * radius_m / p[0, 2]), 0.08 * self.cam.width)
        rr = 6 * r
        u0, u1 = max(int(u - rr), 0), min(int(u + rr) + 1, self.cam.width)
        v0, v1 = max(int(v - rr), 0), min(int(v + rr) + 1, self.cam.height)
        if u0 >= u1 or v0 >= v1:
            return
        # Hidden lights (behind a nearer surface) do not glare.
        iu, iv = (
            int(round(min(max(u, 0), self.cam.width - 1))),
            int(round(min(max(v, 0), self.cam.height - 1))),
        )
        if self.depth[iv, iu] < p[0, 2] - 0.6:
            return
        du = (np.arange(u0, u1, dtype=np.float32) - u) / r
        dv = (np.arange(v0, v1, dtype=np.float32) - v) / r
        d2 = du[None, :] ** 2 + dv[:, None] ** 2
        g = strength * (np.exp(-d2) + 0.25 * np.exp(-d2 / 9.0))
        layer[v0:v1, u0:u1] += g[..., None] * np.asarray(color, np.float32)


def circle_pts(center, radius: float, axis_u, axis_v, n: int = 16) -> np.ndarray:
    """Points of a circle in the plane spanned by two world unit vectors."""
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c = np.asarray(center, np.float64)
    return c[None, :] + radius * (
        np.cos(a)[:, None] * np.asarray(axis_u)[None, :] + np.sin(a)[:, None] * np.asarray(axis_v)[None, :]
    )


def ellipse_pts(center, rx: float, ry: float, axis_u, n: int = 14) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c = np.asarray(center, np.float64)
    return (
        c[None, :]
        + rx * np.cos(a)[:, None] * np.asarray(axis_u)[None, :]
        + ry * np.sin(a)[:, None] * np.array([0.0, 1.0, 0.0])[None, :]
    )


class Sprite:
    """Flat things at one depth (a pedestrian, a bike and its rider): shapes are projected and
    painted in order into a small ROI, then z-tested and composited once. Same exactness as
    `Canvas.poly`, a fraction of the per-shape cost."""

    def __init__(self, cv: Canvas, z: float):
        self.cv = cv
        self.z = float(z)
        self.ops: list[tuple] = []

    def poly(self, pts, color, temp, label: int) -> None:
        pts = np.asarray(pts, np.float64)
        if pts[:, 2].min() < Z_NEAR:
            return
        self.ops.append((self.cv.cam.project(pts), _flat(color), _flat_t(temp), label, 0, True))

    def poly_xy(self, pts, color, temp, label: int) -> None:
        """A polygon in the sprite's own plane, given as (N, 2) world (x, y) at depth self.z."""
        if self.z < Z_NEAR:
            return
        pts = np.asarray(pts, np.float64)
        cam = self.cv.cam
        k = cam.f / self.z
        uv = np.empty((len(pts), 2))
        uv[:, 0] = cam.cx + k * pts[:, 0]
        uv[:, 1] = cam.v0 + k * (CAM_HEIGHT - pts[:, 1])
        self.ops.append((uv, _flat(color), _flat_t(temp), label, 0, True))

    def line(self, pts, thickness_m: float, color, temp, label: int, closed: bool = False) -> None:
        pts = np.asarray(pts, np.float64)
        if pts[:, 2].min() < Z_NEAR:
            return
        th = max(1, int(round(self.cv.cam.f * thickness_m / float(pts[:, 2].mean()))))
        self.ops.append((self.cv.cam.project(pts), _flat(color), _flat_t(temp), label, th, closed))

    def flush(self, bias: float = 0.0) -> None:
        if not self.ops or self.z < Z_NEAR:
            return
        cv = self.cv
        uv = np.concatenate([op[0] for op in self.ops])
        pad = max(op[4] for op in self.ops) + 1
        roi = cv._roi(uv, pad=pad)
        if roi is None:
            return
        u0, u1, v0, v1 = roi
        shape = (v1 - v0, u1 - u0)
        eo = np.zeros(shape + (3,), np.float32)
        tmp = np.zeros(shape, np.float32)
        lab = np.zeros(shape, np.uint8)
        off = np.array([u0, v0])
        for p, color, temp, label, th, closed in self.ops:
            q = [np.round((p - off) * 16).astype(np.int32)]
            if th == 0:
                cv2.fillPoly(eo, q, color, lineType=cv2.LINE_8, shift=4)
                cv2.fillPoly(tmp, q, (temp,), lineType=cv2.LINE_8, shift=4)
                cv2.fillPoly(lab, q, (label + 1,), lineType=cv2.LINE_8, shift=4)
            else:
                cv2.polylines(eo, q, closed, color, thickness=th, lineType=cv2.LINE_8, shift=4)
                cv2.polylines(tmp, q, closed, (temp,), thickness=th, lineType=cv2.LINE_8, shift=4)
                cv2.polylines(lab, q, closed, (label + 1,), thickness=th, lineType=cv2.LINE_8, shift=4)
        sub_d = cv.depth[v0:v1, u0:u1]
        m = (lab > 0) & ((self.z - bias) < sub_d)
        if not m.any():
            return
        cv.eo[v0:v1, u0:u1][m] = eo[m]
        cv.temp[v0:v1, u0:u1][m] = tmp[m]
        cv.label[v0:v1, u0:u1][m] = lab[m] - 1
        sub_d[m] = self.z
        self.ops.clear()


def _flat(color) -> tuple[float, float, float]:
    c = np.asarray(color, np.float64)
    if c.ndim == 2:
        c = c.mean(axis=0)
    return (float(c[0]), float(c[1]), float(c[2]))


def _flat_t(temp) -> float:
    return float(np.mean(temp)) if isinstance(temp, tuple) else float(temp)
