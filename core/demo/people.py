"""Pedestrians and cyclists' riders of the demo street: a camera-facing billboard of limbs, torso,
bag, neck, head and hair in a sprite, seen from the front, the back or the side, walking or pedalling.
Each look (height, clothes, skin, hair, bag, coat) is drawn from the thing's key.

IR: skin is the warmest part, clothes sit between skin and the air (a coat keeps more heat in).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from csknet_studio.core.demo.render import Canvas, Sprite, ellipse_pts
from csknet_studio.core.demo.world import PERSON, WEATHER, Buildings, Thing, light_at, screen_size

SHIRT_COLORS = np.array(
    [
        [0.10, 0.10, 0.12],
        [0.85, 0.85, 0.83],
        [0.55, 0.08, 0.10],
        [0.12, 0.22, 0.48],
        [0.35, 0.40, 0.25],
        [0.55, 0.45, 0.30],
        [0.45, 0.45, 0.47],
        [0.80, 0.55, 0.15],
        [0.25, 0.15, 0.30],
        [0.18, 0.35, 0.55],
        [0.70, 0.30, 0.40],
    ],
    np.float32,
)
TROUSER_COLORS = np.array(
    [[0.12, 0.16, 0.30], [0.08, 0.08, 0.09], [0.55, 0.48, 0.36], [0.35, 0.35, 0.37], [0.20, 0.25, 0.40]],
    np.float32,
)
SKIN_COLORS = np.array(
    [[0.87, 0.70, 0.58], [0.76, 0.57, 0.43], [0.55, 0.38, 0.27], [0.36, 0.24, 0.17]], np.float32
)
HAIR_COLORS = np.array(
    [[0.05, 0.04, 0.04], [0.25, 0.15, 0.08], [0.55, 0.42, 0.25], [0.5, 0.5, 0.5]], np.float32
)
SHOE = np.array([0.08, 0.08, 0.08])
BAG = np.array([0.12, 0.12, 0.14])


def _limb(p0, p1, width: float) -> np.ndarray:
    """A quad of `width` metres from p0 to p1, both (x, y) in a billboard plane."""
    x0, y0 = float(p0[0]), float(p0[1])
    x1, y1 = float(p1[0]), float(p1[1])
    dx, dy = x1 - x0, y1 - y0
    k = width / 2 / (np.hypot(dx, dy) + 1e-9)
    nx, ny = -dy * k, dx * k
    return np.array([(x0 + nx, y0 + ny), (x1 + nx, y1 + ny), (x1 - nx, y1 - ny), (x0 - nx, y0 - ny)])


@dataclass
class _Figure:
    """One person's look, pose and temperatures; shapes go into the sprite in paint order (back to
    front). Coordinates are world (x, y) in the sprite's plane; colours are already lit."""

    sp: Sprite
    x: float
    z: float
    H: float  # body height, metres
    ph: float  # gait / crank phase
    side: bool  # walking across the view (side view), else towards or away from the camera
    fwd: float  # +1 / -1: the way a side view faces
    towards: bool
    riding: bool
    bag: bool
    coat: bool
    light: np.ndarray
    shirt: np.ndarray
    trousers: np.ndarray
    skin: np.ndarray
    hair: np.ndarray
    t_skin: float
    t_cloth: float
    t_legs: float
    t_shoe: float
    hip_y: float
    sh_y: float
    hips: np.ndarray
    sh: np.ndarray  # shoulders

    def poly(self, pts2, col, temp) -> None:
        self.sp.poly_xy(np.asarray(pts2, np.float64), col, temp, PERSON)

    def limb(self, p0, p1, wd: float, col, temp) -> None:
        self.sp.poly_xy(_limb(p0, p1, wd), col, temp, PERSON)


def _figure(sp: Sprite, t: Thing, cond: str, right: Buildings, riding: bool) -> _Figure:
    """Draw the look of `t` from its key and pose it at its phase."""
    w = WEATHER[cond]
    rng = np.random.default_rng([t.key, 2])
    height = float(rng.uniform(1.58, 1.9)) if rng.random() > 0.08 else float(rng.uniform(1.15, 1.35))
    shirt = SHIRT_COLORS[rng.integers(len(SHIRT_COLORS))]
    trousers = TROUSER_COLORS[rng.integers(len(TROUSER_COLORS))]
    skin = SKIN_COLORS[rng.integers(len(SKIN_COLORS))]
    hair = HAIR_COLORS[rng.integers(len(HAIR_COLORS))]
    bag = rng.random() < 0.35
    coat = rng.random() < 0.3
    light = light_at(cond, right, t.x, 1.2, t.z)
    amb = w.ambient
    t_skin = 306.5 + (0.0 if cond == "day" else -1.0)
    t_cloth = amb + (306.0 - amb) * (0.45 if coat else 0.62)
    t_legs = amb + (305.0 - amb) * 0.55
    t_shoe = amb + (305.0 - amb) * 0.3
    H = height
    x = t.x
    side = abs(t.heading[0]) > 0.5
    fwd = float(np.sign(t.heading[0])) if side else 1.0
    hip_y = (0.9 + 0.05) if riding else 0.5 * H
    sh_y = hip_y + 0.33 * H
    hips = np.array([x, hip_y])
    if riding:
        sh = np.array([x + (0.22 * fwd if side else 0.0), sh_y - 0.05])
    else:
        sh = np.array([x, sh_y])
    return _Figure(
        sp=sp, x=x, z=t.z, H=H, ph=t.phase, side=side, fwd=fwd, towards=t.heading[1] < 0, riding=riding,
        bag=bag, coat=coat, light=light,
        shirt=shirt * light, trousers=trousers * light, skin=skin * light, hair=hair * light,
        t_skin=t_skin, t_cloth=t_cloth, t_legs=t_legs, t_shoe=t_shoe, hip_y=hip_y, sh_y=sh_y, hips=hips, sh=sh,
    )


def _far_figure(f: _Figure) -> None:
    """Far away: legs, torso and head are all that would show."""
    x, H, hip_y, sh_y = f.x, f.H, f.hip_y, f.sh_y
    hw = (0.07 if f.side else 0.11) * H
    sw = 0.04 * H * np.sin(f.ph) if f.side else 0.0
    f.poly([(x - hw + sw, 0), (x + hw - sw, 0), (x + 0.8 * hw, hip_y), (x - 0.8 * hw, hip_y)], f.trousers, f.t_legs)
    f.poly([(x - 0.8 * hw, hip_y), (x + 0.8 * hw, hip_y), (x + hw, sh_y), (x - hw, sh_y)], f.shirt, f.t_cloth)
    f.poly(
        [(x - 0.06 * H, sh_y), (x + 0.06 * H, sh_y), (x + 0.055 * H, H), (x - 0.055 * H, H)],
        f.skin if f.towards or f.side else f.hair,
        f.t_skin - 0.5,
    )


def _side_legs(f: _Figure) -> None:
    """Side view: scissoring thighs and shins (walking) or turning on the pedals (riding), shoes."""
    x, H, ph, fwd, hips = f.x, f.H, f.ph, f.fwd, f.hips
    leg_w = 0.075 * H
    for k, sgn in ((0, 1.0), (1, -1.0)):
        if f.riding:
            ped = np.array(
                [
                    x + 0.17 * fwd + 0.17 * np.cos(ph + k * np.pi) * fwd,
                    0.3 + 0.17 * np.sin(ph + k * np.pi),
                ]
            )
            knee = (hips + ped) / 2 + np.array([0.18 * fwd, 0.12])
            foot = ped
        else:
            a = 0.42 * np.sin(ph) * sgn
            knee = hips + 0.26 * H * np.array([np.sin(a) * fwd, -np.cos(a)])
            bend = max(0.0, -np.sin(ph) * sgn) * 0.5
            foot = knee + 0.25 * H * np.array([np.sin(a - bend) * fwd, -np.cos(a - bend)])
        f.limb(hips, knee, leg_w * 1.1, f.trousers * (0.85 if k else 1.0), f.t_legs)
        f.limb(knee, foot, leg_w, f.trousers * (0.85 if k else 1.0), f.t_legs)
        f.limb(foot, foot + np.array([0.12 * fwd, 0.0]), 0.05, SHOE * f.light, f.t_shoe)


def _side_upper(f: _Figure) -> np.ndarray:
    """Side view: torso, backpack, the near arm (swinging, or reaching for the bar); the neck."""
    x, H, fwd, hips, sh = f.x, f.H, f.fwd, f.hips, f.sh
    torso = [hips + (-0.06, 0), hips + (0.06, 0), sh + (0.07, 0), sh + (-0.07, 0)]
    f.poly(torso, f.shirt, f.t_cloth)
    if f.bag:
        f.poly(
            [
                sh + (-0.07 * fwd - 0.16 * fwd, -0.05),
                sh + (-0.07 * fwd, -0.05),
                sh + (-0.07 * fwd, -0.42),
                sh + (-0.07 * fwd - 0.16 * fwd, -0.40),
            ],
            BAG * f.light,
            f.t_cloth - 2,
        )
    if f.riding:
        hand = np.array([x + 0.53 * fwd, 1.02])
        f.limb(sh, hand, 0.06 * H, f.shirt * 0.9, f.t_cloth)
    else:
        arm_a = -0.35 * np.sin(f.ph)
        elbow = sh + 0.19 * H * np.array([np.sin(arm_a) * fwd, -np.cos(arm_a)])
        hand = elbow + 0.17 * H * np.array([np.sin(arm_a + 0.2) * fwd, -np.cos(arm_a + 0.2)])
        f.limb(sh, elbow, 0.055 * H, f.shirt * 0.9, f.t_cloth)
        f.limb(
            elbow,
            hand,
            0.045 * H,
            f.skin if not f.coat else f.shirt * 0.9,
            f.t_skin - 1.5 if not f.coat else f.t_cloth,
        )
    return sh + (0.0, 0.0)


def _front_legs(f: _Figure) -> None:
    """Front or back view: two legs stepping (walking) or pedalling (riding), and shoes."""
    x, H, ph, hip_y = f.x, f.H, f.ph, f.hip_y
    leg_w = 0.075 * H
    for k, sgn in ((0, -1.0), (1, 1.0)):
        lift = 0.04 * max(0.0, np.sin(ph) * sgn) if not f.riding else 0.0
        xl = x + sgn * 0.055 * H
        foot_y = (0.3 + 0.15 * np.sin(ph + k * np.pi)) if f.riding else lift
        f.limb((x + sgn * 0.04 * H, hip_y), (xl, foot_y + 0.04), leg_w * 1.15, f.trousers, f.t_legs)
        f.poly(
            [
                (xl - 0.05, foot_y),
                (xl + 0.05, foot_y),
                (xl + 0.05, foot_y + 0.06),
                (xl - 0.05, foot_y + 0.06),
            ],
            SHOE * f.light,
            f.t_shoe,
        )


def _front_upper(f: _Figure) -> np.ndarray:
    """Front or back view: torso, backpack (seen from behind), both arms and hands; the neck."""
    x, z, H, hip_y, sh_y = f.x, f.z, f.H, f.hip_y, f.sh_y
    half_sh, half_hip = 0.125 * H, 0.095 * H
    torso = [
        (x - half_hip, hip_y - 0.03),
        (x + half_hip, hip_y - 0.03),
        (x + half_sh, sh_y),
        (x - half_sh, sh_y),
    ]
    f.poly(torso, f.shirt, f.t_cloth)
    if f.bag and not f.towards:
        f.poly(
            [
                (x - 0.1 * H * 0.9, sh_y - 0.05),
                (x + 0.1 * H * 0.9, sh_y - 0.05),
                (x + 0.09 * H, sh_y - 0.3 * H),
                (x - 0.09 * H, sh_y - 0.3 * H),
            ],
            BAG * f.light,
            f.t_cloth - 3,
        )
    for sgn in (-1.0, 1.0):
        swing = 0.03 * np.sin(f.ph) * sgn
        top = (x + sgn * (half_sh - 0.02), sh_y - 0.02)
        wrist = (x + sgn * 0.2, 1.0) if f.riding else (x + sgn * (half_sh + 0.03) + swing, sh_y - 0.36 * H)
        f.limb(top, wrist, 0.05 * H, f.shirt * 0.9, f.t_cloth)
        f.poly(
            ellipse_pts((wrist[0], wrist[1] - 0.03, z), 0.035, 0.045, [1, 0, 0], 8)[:, :2],
            f.skin,
            f.t_skin - 1.0,
        )
    return np.array([x, sh_y])


def _head(f: _Figure, neck: np.ndarray) -> None:
    """Neck and head (face warm; hair covers the back of the head)."""
    z, H, fwd, side = f.z, f.H, f.fwd, f.side
    head_c = np.array([neck[0] + (0.03 * fwd if side else 0.0), neck[1] + 0.115 * H])
    f.poly(
        [neck + (-0.03, -0.02), neck + (0.03, -0.02), neck + (0.03, 0.05), neck + (-0.03, 0.05)],
        f.skin,
        f.t_skin,
    )
    face = f.towards or side
    head = ellipse_pts((head_c[0], head_c[1], z), 0.062 * H, 0.072 * H, [1, 0, 0], 14)[:, :2]
    f.poly(head, f.skin if face else f.hair, f.t_skin if face else f.t_skin - 3.0)
    hair_pts = ellipse_pts(
        (head_c[0] - (0.01 * fwd if side else 0), head_c[1] + 0.02 * H, z), 0.064 * H, 0.06 * H, [1, 0, 0], 12
    )[:, :2]
    hair_pts = hair_pts[hair_pts[:, 1] >= head_c[1] + 0.01 * H - (0.03 * H if side else 0)]
    if side:
        back = hair_pts[:, 0] * fwd <= head_c[0] * fwd + 0.02
        hair_pts = (
            np.vstack([hair_pts, [[head_c[0] - 0.05 * fwd, head_c[1] - 0.03 * H]]])
            if back.any()
            else hair_pts
        )
    if len(hair_pts) >= 3:
        f.poly(hair_pts, f.hair, f.t_skin - 4.0)


def draw_person(
    cv: Canvas, t: Thing, cond: str, right: Buildings, riding: bool = False, sprite: Sprite | None = None
) -> None:
    """A pedestrian (or, into the cyclist's sprite, a rider) as a camera-facing billboard, front /
    back or side view. Shapes are painted back to front inside the sprite."""
    own = sprite is None
    sp = Sprite(cv, t.z) if own else sprite
    _person_shapes(sp, cv, t, cond, right, riding)
    if own:
        sp.flush()


def _person_shapes(sp: Sprite, cv: Canvas, t: Thing, cond: str, right: Buildings, riding: bool) -> None:
    px = screen_size(cv, t.x, t.z, 0.5, 1.9)
    if px <= 0:
        return
    f = _figure(sp, t, cond, right, riding)
    if px < 22 and not riding:
        _far_figure(f)
        return
    if f.side:
        _side_legs(f)
        neck = _side_upper(f)
    else:
        _front_legs(f)
        neck = _front_upper(f)
    _head(f, neck)
