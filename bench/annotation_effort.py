"""How many user actions labelling a sequence takes with the app's aids, against labelling by hand.

    OMP_NUM_THREADS=1 .venv/bin/python bench/annotation_effort.py [--frames 64] [--size 240x320]
        [--configs manual,model,finetune,propagate,tools,all_aids] [--only night|fog] [--quick]

A scripted annotator labels demo frames the bundled model never saw (seed 2024; the model was
trained on seeds 1-16) until each frame agrees with ground truth on >= 97 % of its pixels (pixels
that are 255 in ground truth do not count). It works through the real `AnnotationSession`, with
the real model, propagation and fine-tuning, and it only knows what a person at the screen knows:
the images, the labels shown (the prediction among them) and the scene it copies, which is the
ground truth. Every change is a session edit, and every click, stroke and key press is counted:
- the next-frame key, one per frame after the first, in every configuration;
- a tool key when the tool changes, a class key when the picked class changes, one key per brush
  size step ([ / ] in the GUI's radius ladder);
- polygon: one click per vertex of the simplified outline (cv2.approxPolyDP) plus Enter; fill,
  take region: one click; brush, snap brush, box: one drag each;
- accept (A), propagate (Ctrl+P and Enter), fine-tune (Start, then Accept or Reject), undo.
It also counts the pixels its edits changed.

On each frame it lists the wrong regions (connected pixels whose label differs from ground truth,
per true class, largest first) and fixes the worst with the edit that gains the most agreement per
action: it can foresee what a polygon, fill, brush, take region or snap brush does, because the GUI
shows their outline or paints them live. A box (GrabCut) is opaque until it runs, so it is tried
for real and undone (one more action) when it does worse than the best foreseeable edit.

Configurations (each adds aids to the manual tools):
- manual: polygon, fill and brush from an empty frame;
- model: the frame opens on the model's prediction; accept it and fix it;
- finetune: model, plus fine-tuning (`finetune()` with its held-out check) after every k corrected
  frames when at least half of them took edits, on the frames that took edits: the ones accepted
  unchanged are unticked first (a click each), since they only hold the model's own output and a
  held-out part made of them can never show a gain. On a gain the new weights are accepted and
  predict the frames still to come; else they are rejected;
- propagate: model, plus, after a frame that took at least PROPAGATE_AFTER actions, its labels
  carried by optical flow over the next N frames (`propagate_labels`, the model filling what the
  flow does not trust). Where the model needs no fixing, its prediction beats carried labels,
  which keep the errors the annotator stopped at;
- tools: model, plus take region, snap brush (superpixels) and box;
- all_aids: all of the above.
Predictions of the starting weights and the rendered frames are cached on disk (`--cache`).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from csknet_studio.core import assist
from csknet_studio.core.classes import IGNORE_INDEX
from csknet_studio.core.data import ArraySequence
from csknet_studio.core.demo import GENERATOR_VERSION, demo_conditions, render_demo_frame
from csknet_studio.core.edits import Origin, Rect, flood_region, polygon_region
from csknet_studio.core.finetune import FinetuneConfig, finetune
from csknet_studio.core.frames import FramePair
from csknet_studio.core.predictor import Predictor
from csknet_studio.core.propagate import propagate_labels, propagation_targets
from csknet_studio.core.session import AnnotationSession

TARGET = 0.97
SEED = 2024
CONFIG_NAMES = ("manual", "model", "finetune", "propagate", "tools", "all_aids")
# Most wrong regions looked at per edit: the worst ones are where the gain is.
REGIONS_PER_EDIT = 5
# Outline simplifications (px) a polygon is drawn with: coarse is few clicks, fine is exact.
POLYGON_EPS = (3.0, 1.5, 0.8)
# Wrong regions above this area are polygon or fill work, not brush strokes.
BRUSH_MAX_AREA = 4000
# Propagate from a finished frame when it took at least this many actions to fix: where the model
# does well, its prediction of the next frames beats labels carried by the flow.
PROPAGATE_AFTER = 4
# A frame that needs more edits than this is given up (reported below the target).
MAX_EDITS_PER_FRAME = 400


def brush_ladder(start: float = 1.0, stop: float = 100.0) -> list[float]:
    """The radii the GUI's [ / ] keys step through (each step is max(1, r // 5))."""
    radii, r = [], start
    while r <= stop:
        radii.append(r)
        r += max(1.0, r // 5)
    return radii


LADDER = brush_ladder()


@dataclass(frozen=True)
class Aids:
    """Which of the app's aids a configuration uses."""

    name: str
    predict: bool = False
    finetune_every: int = 0  # fine-tune after this many newly corrected frames (0: never)
    propagate: int = 0  # frames carried forward from a finished frame (0: no propagation)
    assist: bool = False  # take region, snap brush and box

    def describe(self) -> str:
        parts = ["polygon, fill, brush"]
        if self.predict:
            parts.append("prediction")
        if self.finetune_every:
            parts.append(f"fine-tune every {self.finetune_every}")
        if self.propagate:
            parts.append(f"propagate {self.propagate}")
        if self.assist:
            parts.append("take region, snap, box")
        return " + ".join(parts)


def configurations(finetune_every: int = 10, propagate_frames: int = 5) -> dict[str, Aids]:
    return {
        "manual": Aids("manual"),
        "model": Aids("model", predict=True),
        "finetune": Aids("finetune", predict=True, finetune_every=finetune_every),
        "propagate": Aids("propagate", predict=True, propagate=propagate_frames),
        "tools": Aids("tools", predict=True, assist=True),
        "all_aids": Aids("all_aids", True, finetune_every, propagate_frames, True),
    }


# --- frames ------------------------------------------------------------------------------------------
@dataclass
class Frames:
    """Rendered demo frames with their ground truth and conditions."""

    eo: np.ndarray  # (T, H, W, 3) uint8
    ir: np.ndarray  # (T, H, W) uint16
    truth: np.ndarray  # (T, H, W) uint8
    conditions: list[str]
    indices: list[int]  # frame numbers in the demo clip
    clip_frames: int
    seed: int

    def __len__(self) -> int:
        return len(self.conditions)

    def pair(self, i: int) -> FramePair:
        return FramePair(name=f"{self.indices[i]:06d}", eo=self.eo[i], ir=self.ir[i])

    def key(self) -> str:
        h, w = self.truth.shape[1:]
        text = f"v{GENERATOR_VERSION}-{self.seed}-{h}x{w}-{self.clip_frames}-{self.indices}"
        return hashlib.sha1(text.encode()).hexdigest()[:16]


def demo_indices(seed: int, frames: int, only: str | None) -> tuple[list[int], int]:
    """The clip frames to label and the clip length: the first `frames` of a clip, or the first
    `frames` of the night / fog run of a clip six times longer (those runs are a sixth of it)."""
    if only is None:
        return list(range(frames)), frames
    clip = 6 * frames + 6
    idx = [i for i, c in enumerate(demo_conditions(seed, clip)) if c == only]
    return idx[:frames], clip


def render_frames(seed: int, frames: int, size: tuple[int, int], only: str | None = None,
                  cache: Path | None = None) -> Frames:
    """Render (or load from `cache`) the demo frames the annotator labels."""
    idx, clip = demo_indices(seed, frames, only)
    probe = Frames(np.zeros((0,)), np.zeros((0,)), np.zeros((0, *size), np.uint8), [], idx, clip, seed)
    path = None if cache is None else cache / f"annotation_effort-frames-{probe.key()}.npz"
    if path is not None and path.is_file():
        with np.load(path) as z:
            return Frames(z["eo"], z["ir"], z["truth"], [str(c) for c in z["conditions"]], idx, clip, seed)
    eo, ir, truth, conds = [], [], [], []
    for i in idx:
        pair, cond = render_demo_frame(seed, i, size, clip)
        eo.append(pair.eo)
        ir.append(pair.ir)
        truth.append(pair.label)
        conds.append(cond)
    out = Frames(np.stack(eo), np.stack(ir), np.stack(truth), conds, idx, clip, seed)
    if path is not None:
        _save_npz(path, eo=out.eo, ir=out.ir, truth=out.truth, conditions=np.array(conds))
    return out


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def base_predictions(predictor: Predictor, frames: Frames, weights_hash: str,
                     cache: Path | None = None, batch: int = 4) -> np.ndarray:
    """(T, H, W) uint8 labels of the starting weights (both modalities), cached on disk."""
    key = hashlib.sha1(f"{frames.key()}-{weights_hash}".encode()).hexdigest()[:16]
    path = None if cache is None else cache / f"annotation_effort-pred-{key}.npz"
    if path is not None and path.is_file():
        with np.load(path) as z:
            return z["labels"]
    out = []
    for s in range(0, len(frames), batch):
        out.append(predictor.predict_labels([frames.pair(i) for i in range(s, min(len(frames), s + batch))]))
    labels = np.concatenate(out)
    if path is not None:
        _save_npz(path, labels=labels)
    return labels


# --- what is wrong -----------------------------------------------------------------------------------
@dataclass
class Region:
    """A connected set of wrong pixels that should all be `class_id`."""

    class_id: int
    area: int
    rect: Rect
    mask: np.ndarray  # bool, inside rect


def wrong_regions(labels: np.ndarray, truth: np.ndarray, valid: np.ndarray, limit: int) -> list[Region]:
    """The `limit` largest 8-connected regions of wrong pixels, split by their true class."""
    wrong = (labels != truth) & valid
    found: list[tuple[int, int, Rect, Rect, np.ndarray, int]] = []
    for c in np.unique(truth[wrong]):
        m = wrong & (truth == c)
        box = Rect.bbox(m)
        n, cc, stats, _ = cv2.connectedComponentsWithStats(m[box.slices].astype(np.uint8), connectivity=8)
        for k in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[k])
            found.append((area, int(c), Rect(y, x, y + h, x + w), box, cc, k))
    found.sort(key=lambda t: -t[0])
    return [Region(c, area, Rect(box.y0 + r.y0, box.x0 + r.x0, box.y0 + r.y1, box.x0 + r.x1), cc[r.slices] == k)
            for area, c, r, box, cc, k in found[:limit]]


def interior_point(mask: np.ndarray, offset: tuple[int, int] = (0, 0)) -> tuple[float, float]:
    """(x, y) of the pixel of `mask` farthest from its border: where a person would click."""
    dt = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dt)), dt.shape)
    return float(x + offset[1]), float(y + offset[0])


def outline(mask: np.ndarray, offset: tuple[int, int], eps: float) -> np.ndarray | None:
    """Polygon vertices (x, y) of the largest outer contour of `mask`, simplified by `eps` px."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    cnt = max(contours, key=cv2.contourArea)
    pts = cv2.approxPolyDP(cnt, eps, True)[:, 0, :].astype(np.float64)
    if len(pts) < 3:
        return None
    return pts + np.array([offset[1], offset[0]], np.float64)


def centre_line(mask: np.ndarray, offset: tuple[int, int]) -> tuple[list[tuple[float, float]], float, float]:
    """A brush stroke along a blob: the longest path of its skeleton, simplified (x, y points), and
    the blob's median and largest half-thickness along it (distance to its border)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order
    from skimage.morphology import skeletonize

    dt = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
    skel = skeletonize(mask)
    ys, xs = np.nonzero(skel)
    oy, ox = offset
    if ys.size <= 1:
        x, y = interior_point(mask, offset)
        d = float(dt.max())
        return [(x, y)], d, d
    ids = np.full(mask.shape, -1, np.int64)
    ids[ys, xs] = np.arange(ys.size)
    h, w = mask.shape
    rows, cols = [], []
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
        ny, nx = ys + dy, xs + dx
        ok = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        nb = np.full(ys.shape, -1, np.int64)
        nb[ok] = ids[ny[ok], nx[ok]]
        keep = nb >= 0
        rows.append(np.arange(ys.size)[keep])
        cols.append(nb[keep])
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(r.size), (r, c)), shape=(ys.size, ys.size)).tocsr()
    order, _ = breadth_first_order(graph, 0, directed=False)
    end = int(order[-1])
    order, pred = breadth_first_order(graph, end, directed=False)
    node, path = int(order[-1]), []
    while node >= 0:
        path.append(node)
        node = int(pred[node])
    py, px = ys[path], xs[path]
    along = dt[py, px]
    pts = np.stack([px, py], -1).astype(np.int32).reshape(-1, 1, 2)
    simple = cv2.approxPolyDP(pts, 1.0, False)[:, 0, :]
    points = [(float(x + ox), float(y + oy)) for x, y in simple]
    return points, float(np.median(along)), float(along.max())


def ladder_radius(r: float) -> float:
    """The ladder radius nearest to `r` (at least 1, the GUI's smallest brush)."""
    return min(LADDER, key=lambda v: abs(v - r))


# --- the annotator -----------------------------------------------------------------------------------
@dataclass
class Edit:
    """One edit the annotator can make: its pixels, its cost in actions and its gain in agreement."""

    kind: str
    tool: str
    class_id: int | None  # the class that must be picked first (None: the edit needs none)
    radius: float | None
    clicks: int
    rect: Rect
    sel: np.ndarray  # bool inside rect: the pixels the edit sets to the region's class
    run: Callable[[], Rect]
    gain: int = 0
    cost: int = 0


@dataclass
class FrameResult:
    """What labelling one frame took."""

    index: int
    condition: str
    actions: int = 0
    painted: int = 0
    agreement: float = 0.0
    start_agreement: float = 0.0
    kinds: Counter = field(default_factory=Counter)


@dataclass
class EffortResult:
    """One configuration's run over the sequence."""

    aids: Aids
    frames: list[FrameResult]
    seconds: float  # wall
    cpu_seconds: float  # this process's CPU time (steadier than wall time on a shared machine)
    finetunes: list[str] = field(default_factory=list)

    @property
    def actions(self) -> int:
        return sum(f.actions for f in self.frames)

    @property
    def per_frame(self) -> float:
        return self.actions / max(1, len(self.frames))

    def mean_where(self, condition: str) -> float:
        sel = [f.actions for f in self.frames if f.condition == condition]
        return float(np.mean(sel)) if sel else float("nan")

    def kinds(self) -> Counter:
        total: Counter = Counter()
        for f in self.frames:
            total.update(f.kinds)
        return total


class Annotator:
    """Labels frames through an AnnotationSession the way a person with the GUI would, counting
    every click, stroke and key press (see the module docstring for what each costs)."""

    def __init__(self, frames: Frames, aids: Aids, predictor: Predictor | None = None,
                 predictions: np.ndarray | None = None, *, target: float = TARGET, finetune_steps: int = 30,
                 log: Callable[[str], None] | None = None) -> None:
        if aids.predict and predictor is None:
            raise ValueError(f"configuration {aids.name} needs a model")
        self.frames, self.aids, self.target = frames, aids, float(target)
        self.sequence = ArraySequence(list(frames.eo), list(frames.ir), None,
                                      [f"{i:06d}" for i in frames.indices])
        self.session = AnnotationSession(self.sequence, autosave=False)
        self.levels = self.sequence.display_levels()
        self.predictor = predictor
        self.base = predictions
        self.finetune_steps = int(finetune_steps)
        self.log = log or (lambda _s: None)
        self.version = 0  # weights in use: 0 = the starting ones, +1 per accepted fine-tuning
        self._pred_version: dict[int, int] = {}
        self._superpixels: dict[int, np.ndarray] = {}
        self._pred_regions: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._truth_regions: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._shape_cache: dict[tuple, list[Edit]] = {}
        self.tool, self.class_id, self.radius = "pan", 1, 6.0  # the GUI's start-up state
        self.box_tries = self.box_kept = 0
        self.finetunes: list[str] = []
        self._since_finetune: list[int] = []  # frames corrected since the last fine-tuning decision
        self._edited: set[int] = set()  # corrected frames that took edits (not accepted unchanged)
        self._unticked: set[int] = set()
        self._tally: FrameResult | None = None

    # --- counting ------------------------------------------------------------------------------------
    def _act(self, kind: str, n: int = 1) -> None:
        assert self._tally is not None
        self._tally.actions += n
        self._tally.kinds[kind] += n

    def _switch_cost(self, tool: str, class_id: int | None, radius: float | None) -> int:
        cost = int(tool != self.tool)
        if class_id is not None and class_id != self.class_id:
            cost += 1
        if radius is not None:
            cost += abs(LADDER.index(radius) - LADDER.index(ladder_radius(self.radius)))
        return cost

    def _switch(self, tool: str, class_id: int | None, radius: float | None) -> None:
        if tool != self.tool:
            self._act("tool key")
            self.tool = tool
        if class_id is not None and class_id != self.class_id:
            self._act("class key")
            self.class_id = class_id
        if radius is not None and radius != self.radius:
            self._act("brush size key", abs(LADDER.index(radius) - LADDER.index(ladder_radius(self.radius))))
            self.radius = radius

    # --- model ---------------------------------------------------------------------------------------
    def prediction(self, i: int) -> np.ndarray | None:
        """Frame i's prediction by the weights in use, computed the first time it is needed (the GUI
        segments the frame on screen; after a fine-tuning it recomputes)."""
        if not self.aids.predict:
            return None
        if self._pred_version.get(i) != self.version:
            if self.version == 0 and self.base is not None:
                labels = self.base[i]
            else:
                labels = self.predictor.predict_labels([self.frames.pair(i)])[0]
            self.session.set_prediction(i, labels)
            self._pred_version[i] = self.version
            self._pred_regions.pop(i, None)
        return self.session.prediction(i)

    def _prediction_regions(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """4-connected regions of equal predicted class (what take region selects): id map, class
        of each id, bounding boxes (x, y, w, h)."""
        if i not in self._pred_regions:
            pred = self.session.prediction(i)
            ids = np.zeros(pred.shape, np.int32)
            classes, boxes, nxt = [0], [(0, 0, 0, 0)], 1
            for c in np.unique(pred):
                n, cc, stats, _ = cv2.connectedComponentsWithStats((pred == c).astype(np.uint8), connectivity=4)
                ids[cc > 0] = cc[cc > 0] + (nxt - 1)
                classes += [int(c)] * (n - 1)
                boxes += [tuple(int(v) for v in s[:4]) for s in stats[1:]]
                nxt += n - 1
            self._pred_regions[i] = (ids, np.array(classes), np.array(boxes))
        return self._pred_regions[i]

    def _truth_regions_of(self, i: int, c: int) -> tuple[np.ndarray, np.ndarray]:
        """8-connected objects of true class c in frame i (what a person outlines): ids, stats."""
        if (i, c) not in self._truth_regions:
            _, cc, stats, _ = cv2.connectedComponentsWithStats((self.frames.truth[i] == c).astype(np.uint8),
                                                               connectivity=8)
            self._truth_regions[(i, c)] = (cc, stats)
        return self._truth_regions[(i, c)]

    def _segments(self, i: int) -> np.ndarray:
        if i not in self._superpixels:
            self._superpixels = {i: assist.superpixels(self.frames.eo[i], self.frames.ir[i], self.levels)}
        return self._superpixels[i]

    # --- one frame -----------------------------------------------------------------------------------
    def agreement(self, i: int) -> float:
        truth = self.frames.truth[i]
        valid = truth != IGNORE_INDEX
        return float(((self.session.labels(i) == truth) & valid).sum() / max(1, int(valid.sum())))

    def label_frame(self, i: int) -> FrameResult:
        """Bring frame i to the target agreement and make it a corrected frame."""
        s = self.session
        tally = self._tally = FrameResult(i, self.frames.conditions[i])
        self._shape_cache.clear()
        self._truth_regions.clear()
        if i > 0:
            self._act("next frame")
        self.prediction(i)
        tally.start_agreement = self.agreement(i)
        self._fix(i)
        if s.origin(i) is not Origin.CORRECTED:
            self._act("accept")
            s.accept_prediction(i)
        tally.agreement = self.agreement(i)
        work = tally.actions - tally.kinds["next frame"] - tally.kinds["accept"]
        if work:
            self._edited.add(i)
        self._since_finetune.append(i)
        if self.aids.propagate and work >= PROPAGATE_AFTER and i + 1 < len(s):
            self._propagate(i)
        if self.aids.finetune_every and len(self._since_finetune) >= self.aids.finetune_every and i + 1 < len(s):
            if 2 * len(self._edited.intersection(self._since_finetune)) >= len(self._since_finetune):
                self._finetune()
            self._since_finetune = []
        self._tally = None
        return tally

    def _propagate(self, i: int) -> None:
        """Ctrl+P, Enter: carry frame i's labels over the next N frames."""
        s = self.session
        targets = propagation_targets(s.origins(), i, self.aids.propagate, 1)
        if not targets:
            return
        self._act("propagate", 2)
        for t in targets:
            self.prediction(t)
        preds = s.prediction if self.aids.predict else None
        out = propagate_labels(self.sequence, i, s.labels(i).copy(), targets, preds)
        s.apply_propagation({p.index: p.labels for p in out})

    def _finetune(self) -> None:
        """Untick the frames accepted unchanged (new corrected frames start ticked; they would only
        teach the model its own output, and the held-out check could then never show a gain),
        Start, then Accept on a held-out gain, else Reject."""
        s = self.session
        frames = [j for j in s.corrected_frames() if j in self._edited]
        untick = [j for j in s.corrected_frames() if j not in self._edited and j not in self._unticked]
        if untick:
            self._act("untick frame", len(untick))
            self._unticked.update(untick)
        samples = [(self.frames.eo[j], self.frames.ir[j], s.labels(j).copy()) for j in frames]
        t0 = time.perf_counter()
        result = finetune(self.predictor.model, samples,
                          FinetuneConfig(steps=self.finetune_steps, modes=("both",), seed=len(self.finetunes)))
        self._act("fine-tune", 2)
        if result.improved:
            self.predictor.set_state_dict(result.state_dict)
            self.version += 1
        self.finetunes.append(
            f"{len(frames)} frames: held-out mIoU {100 * result.before:.1f} -> {100 * result.after:.1f} % "
            f"({'accepted' if result.improved else 'rejected'}, {result.steps_done} steps, "
            f"{time.perf_counter() - t0:.0f} s)")
        self.log("  fine-tune " + self.finetunes[-1])

    def _fix(self, i: int) -> None:
        truth = self.frames.truth[i]
        valid = truth != IGNORE_INDEX
        need = math.ceil(self.target * int(valid.sum()))
        tried_boxes: set[Rect] = set()
        for _ in range(MAX_EDITS_PER_FRAME):
            labels = self.session.labels(i)
            correct = int(((labels == truth) & valid).sum())
            if correct >= need:
                return
            regions = wrong_regions(labels, truth, valid, REGIONS_PER_EDIT)
            edits = [e for r in regions for e in self._edits(i, labels, truth, valid, r)]
            for e in edits:
                e.cost = self._switch_cost(e.tool, e.class_id, e.radius) + e.clicks
            best = choose(edits, need - correct)
            if best is None:
                return
            before = labels.copy()
            if self.aids.assist and self._try_box(i, regions[0], best, tried_boxes, need - correct, before):
                continue
            self._apply(i, best, before)

    def _apply(self, i: int, e: Edit, before: np.ndarray) -> None:
        self._switch(e.tool, e.class_id, e.radius)
        self._act(e.kind, e.clicks)
        self._count_painted(i, e.run(), before)

    def _count_painted(self, i: int, rect: Rect, before: np.ndarray) -> None:
        assert self._tally is not None
        if not rect.empty:
            self._tally.painted += int((self.session.labels(i)[rect.slices] != before[rect.slices]).sum())

    def _try_box(self, i: int, region: Region, best: Edit, tried: set[Rect], deficit: int,
                 before_labels: np.ndarray) -> bool:
        """Drag a box around the object of the worst region when it may beat `best`; keep it when
        it did, else undo it. Returns whether the box was kept."""
        c = region.class_id
        cost = self._switch_cost("box", c, None) + 1
        if best.cost <= cost or region.area < 60 or (self.box_tries >= 6 and self.box_kept < 0.25 * self.box_tries):
            return False
        cc, stats = self._truth_regions_of(i, c)
        ys, xs = np.nonzero(region.mask)
        obj = np.bincount(cc[ys + region.rect.y0, xs + region.rect.x0]).argmax()
        x, y, w, h, _ = (int(v) for v in stats[obj])
        shape = self.session.frame_shape(i)
        if w < 4 or h < 4 or w * h > 0.25 * shape[0] * shape[1]:
            return False
        box = Rect(max(0, y - 2), max(0, x - 2), min(shape[0], y + h + 2), min(shape[1], x + w + 2))
        if box in tried:
            return False
        tried.add(box)
        truth = self.frames.truth[i]
        valid = truth != IGNORE_INDEX
        before = int(((before_labels == truth) & valid).sum())
        self._switch("box", c, None)
        self._act("box")
        self.box_tries += 1
        try:
            rect = self.session.grabcut_box(i, (box.x0, box.y0), (box.x1 - 1, box.y1 - 1), c,
                                            self.frames.eo[i], self.frames.ir[i], self.levels)
        except ValueError:
            return False
        gain = int(((self.session.labels(i) == truth) & valid).sum()) - before
        if gain > 0 and (gain >= deficit or gain / cost >= best.gain / best.cost):
            self.box_kept += 1
            self._count_painted(i, rect, before_labels)
            return True
        if not rect.empty:
            self._act("undo")
            self.session.undo()
        return False

    def _edits(self, i: int, labels: np.ndarray, truth: np.ndarray, valid: np.ndarray, r: Region) -> list[Edit]:
        """The edits that could fix region r, each with its foreseeable gain on the current labels."""
        s, c = self.session, r.class_id
        off = (r.rect.y0, r.rect.x0)
        key = (c, r.rect, hashlib.sha1(np.packbits(r.mask).tobytes()).digest())
        if key not in self._shape_cache:
            self._shape_cache[key] = self._shaped_edits(i, labels.shape, r)
        out = list(self._shape_cache[key])
        # fill the region of equal labels under a click (depends on the labels, so never cached)
        values, counts = np.unique(labels[r.rect.slices][r.mask], return_counts=True)
        for v in values[np.argsort(-counts)][:2]:
            seed = interior_point(r.mask & (labels[r.rect.slices] == v), off)
            rect, sel = flood_region(labels, seed)
            out.append(Edit("fill click", "fill", c, None, 1, rect, sel, lambda p=seed: s.flood_fill(i, p, c)))
        for e in out:
            e.gain = edit_gain(labels, truth, valid, e.rect, e.sel, c)
        return out

    def _shaped_edits(self, i: int, shape: tuple[int, int], r: Region) -> list[Edit]:
        """The edits whose pixels depend only on the region, the images and the prediction (which do
        not change while a frame is being fixed): polygons, strokes, take region."""
        s, c = self.session, r.class_id
        off = (r.rect.y0, r.rect.x0)
        out: list[Edit] = []
        # polygon around the wrong region, or around the whole object it belongs to
        shapes = [(r.mask, off)]
        cc, stats = self._truth_regions_of(i, c)
        ys, xs = np.nonzero(r.mask)
        obj = int(np.bincount(cc[ys + off[0], xs + off[1]]).argmax())
        ox, oy, ow, oh, oarea = (int(v) for v in stats[obj])
        if r.area < oarea <= 0.25 * shape[0] * shape[1]:
            shapes.append((cc[oy : oy + oh, ox : ox + ow] == obj, (oy, ox)))
        for mask, o in shapes:
            for eps in POLYGON_EPS:
                pts = outline(mask, o, eps)
                if pts is None:
                    continue
                rect, sel = polygon_region(shape, pts)
                out.append(Edit("polygon vertex", "polygon", c, None, len(pts) + 1, rect, sel,
                                lambda p=[tuple(v) for v in pts]: s.fill_polygon(i, p, c)))
        # brush (and snap brush) along the region's centre line
        if r.area <= BRUSH_MAX_AREA:
            points, median_r, max_r = centre_line(r.mask, off)
            radii = {ladder_radius(median_r - 0.5), ladder_radius(max_r - 0.5)}
            for rad in radii:
                rect, sel = assist.stroke_region(shape, points, rad)
                out.append(Edit("brush stroke", "brush", c, rad, 1, rect, sel,
                                lambda p=points, q=rad: s.paint_stroke(i, p, c, q)))
            if self.aids.assist:
                seg = self._segments(i)
                for rad in radii | {ladder_radius(max(1.0, median_r / 2))}:
                    rect, sel = assist.snap_region(seg, points, rad)
                    out.append(Edit("snap stroke", "snap", c, rad, 1, rect, sel,
                                    lambda p=points, q=rad: s.fill_superpixels(i, self._segments(i), p, q, c)))
        # take the predicted region under a click (Shift+click: as the picked class)
        if self.aids.assist and s.prediction(i) is not None:
            ids, classes, boxes = self._prediction_regions(i)
            hit = np.bincount(ids[r.rect.slices][r.mask])
            for k in np.argsort(-hit)[:3]:
                if hit[k] == 0:
                    continue
                bx, by, bw, bh = (int(v) for v in boxes[k])
                rect = Rect(by, bx, by + bh, bx + bw)
                seed = interior_point(r.mask & (ids[r.rect.slices] == k), off)
                as_class = None if int(classes[k]) == c else c
                out.append(Edit("take click", "take", as_class, None, 1, rect, ids[rect.slices] == k,
                                lambda p=seed, a=as_class: s.take_region(i, p, a)))
        return out


def edit_gain(labels: np.ndarray, truth: np.ndarray, valid: np.ndarray, rect: Rect, sel: np.ndarray,
              value: int) -> int:
    """Pixels that agree with ground truth after setting `sel` (inside rect) to `value`, minus before."""
    if rect.empty:
        return 0
    lab, tru, ok = labels[rect.slices], truth[rect.slices], valid[rect.slices] & sel
    return int((ok & (tru == value) & (lab != value)).sum() - (ok & (lab == tru) & (tru != value)).sum())


def choose(edits: list[Edit], deficit: int) -> Edit | None:
    """The edit to make: the most agreement per action, unless one edit closes the gap for no more
    actions than the best rate would need."""
    useful = [e for e in edits if e.gain > 0]
    if not useful:
        return None
    rate = max(useful, key=lambda e: (e.gain / e.cost, e.gain))
    closing = [e for e in useful if e.gain >= deficit]
    if closing:
        cheapest = min(closing, key=lambda e: (e.cost, -e.gain))
        if cheapest.cost <= math.ceil(deficit / (rate.gain / rate.cost)):
            return cheapest
    return rate


# --- a whole run ---------------------------------------------------------------------------------------
def run_config(frames: Frames, aids: Aids, model: torch.nn.Module | None = None,
               predictions: np.ndarray | None = None, *, target: float = TARGET, finetune_steps: int = 30,
               log: Callable[[str], None] | None = None) -> EffortResult:
    """Label every frame of `frames` with the aids of `aids`. `model` is copied (fine-tuning changes
    the copy); `predictions` are the starting weights' labels, when already computed."""
    predictor = None
    if aids.predict:
        if model is None:
            raise ValueError(f"configuration {aids.name} needs a model")
        predictor = Predictor(copy.deepcopy(model) if aids.finetune_every else model, "cpu", amp=False)
    annotator = Annotator(frames, aids, predictor, predictions, target=target, finetune_steps=finetune_steps,
                          log=log)
    t0, c0 = time.perf_counter(), time.process_time()
    results = [annotator.label_frame(i) for i in range(len(frames))]
    return EffortResult(aids, results, time.perf_counter() - t0, time.process_time() - c0, annotator.finetunes)


def report(results: dict[str, EffortResult], frames: Frames) -> str:
    """The markdown table docs/benchmarks.md records."""
    conds = Counter(frames.conditions)
    lines = ["| configuration | aids | actions/frame | day | night | fog | px painted/frame | "
             "frames >= target | CPU s |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        cells = [f"{r.mean_where(c):.1f}" if conds.get(c) else "-" for c in ("day", "night", "fog")]
        reached = sum(f.agreement >= TARGET - 1e-9 for f in r.frames)
        lines.append(f"| {name} | {r.aids.describe()} | **{r.per_frame:.1f}** | {' | '.join(cells)} | "
                     f"{np.mean([f.painted for f in r.frames]):.0f} | {reached}/{len(r.frames)} | "
                     f"{r.cpu_seconds:.0f} |")
    return "\n".join(lines)


def parse_size(text: str) -> tuple[int, int]:
    h, w = (int(v) for v in text.lower().split("x"))
    return h, w


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=64, help="frames to label (default 64)")
    ap.add_argument("--size", type=parse_size, default=(240, 320), help="HxW (default 240x320, the size the "
                    "bundled model was trained at; the GUI's demo is 480x640)")
    ap.add_argument("--configs", default=",".join(CONFIG_NAMES), help="comma-separated, among " + ", ".join(CONFIG_NAMES))
    ap.add_argument("--only", choices=["night", "fog"], default=None,
                    help="label only night or only fog frames (where the bundled model is weakest)")
    ap.add_argument("--seed", type=int, default=SEED, help="demo seed (the bundled model saw seeds 1-16)")
    ap.add_argument("--checkpoint", type=Path, default=None, help="weights (default: the bundled model)")
    ap.add_argument("--finetune-every", type=int, default=10, help="corrected frames between fine-tunings")
    ap.add_argument("--finetune-steps", type=int, default=30)
    ap.add_argument("--propagate", type=int, default=5, help="frames carried forward per propagation")
    ap.add_argument("--target", type=float, default=TARGET, help="pixel agreement that finishes a frame")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "csknet-studio" / "bench",
                    help="where rendered frames and predictions are cached")
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--per-frame", action="store_true", help="also print every frame's actions per configuration")
    ap.add_argument("--quick", action="store_true", help="16 frames, fine-tuning every 4 with 10 steps")
    args = ap.parse_args(argv)
    if args.quick:
        args.frames, args.finetune_every, args.finetune_steps = 16, 4, 10
    torch.set_num_threads(max(1, args.threads))
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    table = configurations(args.finetune_every, args.propagate)
    unknown = [n for n in names if n not in table]
    if unknown:
        ap.error(f"unknown configuration(s) {unknown}; choose among {', '.join(CONFIG_NAMES)}")
    cache = None if args.no_cache else args.cache

    from csknet_studio.core.checkpoint import load_checkpoint
    from csknet_studio.resources import resource_path

    ckpt = args.checkpoint or Path(resource_path("default_model.pt"))
    t0 = time.perf_counter()
    frames = render_frames(args.seed, args.frames, args.size, args.only, cache)
    loaded = load_checkpoint(ckpt)
    model = loaded.model.eval()
    preds = base_predictions(Predictor(model, "cpu", amp=False), frames, loaded.weights_hash, cache)
    conds = Counter(frames.conditions)
    h, w = args.size
    where = f"{args.only} only" if args.only else "day / night / fog"
    print(f"annotation effort: demo seed {args.seed}, {len(frames)} frames at {h}x{w} ({where}: "
          + ", ".join(f"{k} {v}" for k, v in conds.items()) + f"), target {100 * args.target:.0f} % pixel "
          f"agreement; weights {ckpt.name} ({loaded.weights_hash}); {args.threads} torch thread(s); "
          f"frames and predictions ready in {time.perf_counter() - t0:.0f} s")
    truth_ok = (preds == frames.truth).mean(axis=(1, 2))
    print(f"model alone: {100 * truth_ok.mean():.1f} % pixel agreement on average, "
          f"{int((truth_ok >= args.target).sum())}/{len(frames)} frames at the target")
    sys.stdout.flush()
    results: dict[str, EffortResult] = {}
    for name in names:
        r = run_config(frames, table[name], model, preds, target=args.target, finetune_steps=args.finetune_steps,
                       log=print)
        results[name] = r
        print(f"{name:9s} {r.per_frame:6.1f} actions/frame  ({r.aids.describe()}; {r.seconds:.0f} s wall, "
              f"{r.cpu_seconds:.0f} s CPU)  "
              + ", ".join(f"{k} {v}" for k, v in r.kinds().most_common()))
        if args.per_frame:
            print("          per frame: " + " ".join(str(f.actions) for f in r.frames))
        sys.stdout.flush()
    print()
    print(report(results, frames))
    print()
    for name, r in results.items():
        print(f"{name:9s} per frame: " + " ".join(str(f.actions) for f in r.frames))
    if "manual" in results and "all_aids" in results:
        ratio = results["manual"].actions / max(1, results["all_aids"].actions)
        print(f"RATIO manual/all_aids = {ratio:.1f}  ({len(frames)} frames at {h}x{w}, {where}; target >= 8)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
