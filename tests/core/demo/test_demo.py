"""The procedural demo: determinism, formats, classes, conditions (night / fog defeat EO, not IR),
label/IR consistency, temporal coherence, and the atomic on-disk layout."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from csknet_studio.core import demo
from csknet_studio.core.classes import MFNET
from csknet_studio.core.demo import (
    demo_conditions,
    generate_demo,
    is_complete_demo,
    read_demo_meta,
    render_demo_frame,
)
from csknet_studio.core.demo import sequence as demo_sequence
from csknet_studio.core.errors import CancelledError, ConfigError, CSKNetError

SMALL = (120, 160)
MID = (240, 320)
N = 120
PERSON, CAR = MFNET.class_names.index("person"), MFNET.class_names.index("car")


def _first(cond: str, offset: int = 4) -> int:
    return demo_conditions(0, N).index(cond) + offset


def test_same_seed_same_arrays_other_seed_differs():
    a, ca = render_demo_frame(0, 7, SMALL, N)
    b, cb = render_demo_frame(0, 7, SMALL, N)
    c, _ = render_demo_frame(1, 7, SMALL, N)
    assert ca == cb
    for x, y in ((a.eo, b.eo), (a.ir, b.ir), (a.label, b.label)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.eo, c.eo) and not np.array_equal(a.label, c.label)


def test_shapes_dtypes_and_ranges():
    fp, cond = render_demo_frame(3, 0, SMALL, 10)
    assert cond in ("day", "night", "fog") and fp.name == "000000"
    assert fp.eo.shape == (*SMALL, 3) and fp.eo.dtype == np.uint8
    assert fp.ir.shape == SMALL and fp.ir.dtype == np.uint16
    assert fp.label.shape == SMALL and fp.label.dtype == np.uint8
    assert fp.label.max() < MFNET.num_classes  # every pixel labelled, none ignored
    kelvin = fp.ir.astype(np.float64) * demo.IR_SCALE
    assert kelvin.min() > 220 and kelvin.max() < 380  # plausible radiometric scene
    assert fp.shape == SMALL


def test_bad_arguments_raise_documented_errors():
    with pytest.raises(ConfigError, match="index"):
        render_demo_frame(0, 10, SMALL, 10)
    with pytest.raises(ConfigError, match="size"):
        render_demo_frame(0, 0, (8, 8), 10)
    with pytest.raises(ConfigError, match="seed"):
        render_demo_frame(-1, 0, SMALL, 10)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 120, 301])
def test_conditions_are_contiguous_segments_about_a_third_bad(n):
    conds = demo_conditions(5, n)
    assert len(conds) == n and set(conds) <= {"day", "night", "fog"}
    assert conds == demo_conditions(5, n)
    if n >= 3:
        assert "night" in conds and "fog" in conds
        for c in ("night", "fog"):  # one contiguous run each
            idx = [i for i, x in enumerate(conds) if x == c]
            assert idx == list(range(idx[0], idx[-1] + 1))
    if n >= 60:
        bad = sum(c != "day" for c in conds) / n
        assert 0.25 <= bad <= 0.42


def test_all_mfnet_classes_appear_across_the_sequence():
    seen = set()
    for i in range(0, N, 20):
        seen |= set(np.unique(render_demo_frame(0, i, MID, N)[0].label).tolist())
    assert seen == set(range(MFNET.num_classes))
    # People, cars and bikes are in every frame, not just somewhere.
    for i in (0, 61, 119):
        lab = render_demo_frame(0, i, MID, N)[0].label
        for name in ("car", "person", "bike"):
            assert (lab == MFNET.class_names.index(name)).sum() > 20, (i, name)


def _lum(eo: np.ndarray) -> np.ndarray:
    return eo.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _person_separability(img: np.ndarray, label: np.ndarray) -> float:
    """d' between person pixels and the background right around them."""
    person = label == PERSON
    ring = (
        cv2.dilate(person.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool) & ~person & (label == 0)
    )
    a, b = img[person], img[ring]
    return float(abs(a.mean() - b.mean()) / np.sqrt(0.5 * (a.var() + b.var()) + 1e-9))


def test_night_and_fog_defeat_eo_but_not_ir():
    day, _ = render_demo_frame(0, _first("day"), MID, N)
    night, c_night = render_demo_frame(0, _first("night"), MID, N)
    fog, c_fog = render_demo_frame(0, _first("fog"), MID, N)
    assert (c_night, c_fog) == ("night", "fog")
    lum_day, lum_night, lum_fog = _lum(day.eo), _lum(night.eo), _lum(fog.eo)
    assert np.median(lum_night) < 0.3 * np.median(lum_day)  # dark
    assert np.percentile(lum_fog, 5) > 3 * np.percentile(lum_day, 5)  # washed out
    assert lum_fog.std() < 0.75 * lum_day.std()
    for fp in (day, night, fog):
        person = fp.label == PERSON
        assert person.sum() > 50
        k = fp.ir.astype(np.float64) * demo.IR_SCALE
        assert _person_separability(k, fp.label) > 1.5  # people stand out in IR in every condition
    for fp in (night, fog):
        d_ir = _person_separability(fp.ir.astype(np.float64), fp.label)
        d_eo = _person_separability(_lum(fp.eo), fp.label)
        assert d_ir > 2.5 * d_eo, (d_ir, d_eo)


def test_labels_agree_with_the_ir_physics():
    fp, _ = render_demo_frame(0, 12, MID, N)
    k = fp.ir.astype(np.float64) * demo.IR_SCALE
    bg = np.median(k[fp.label == 0])
    assert np.median(k[fp.label == PERSON]) > bg + 4  # people are warm
    car = fp.label == CAR
    assert k[car].max() > bg + 12  # running engines, tyres and exhausts are hot
    assert np.percentile(k[fp.label == 0], 2) < bg - 5  # cold sky and sky-reflecting glass


def test_motion_is_temporally_coherent():
    labs = [render_demo_frame(0, i, MID, N)[0].label for i in (50, 51, 70)]
    step = (labs[0] != labs[1]).mean()
    jump = (labs[0] != labs[2]).mean()
    assert 0 < step < 0.03 and jump > step  # things move, a little per frame


def test_generate_demo_writes_the_generic_layout(tmp_path):
    seen = []
    out = generate_demo(
        tmp_path / "demo", n_frames=3, size=SMALL, seed=2, progress=lambda d, t: seen.append((d, t))
    )
    assert seen == [(1, 3), (2, 3), (3, 3)]
    for sub in ("eo", "ir", "labels"):
        assert sorted(p.name for p in (out / sub).iterdir()) == ["000000.png", "000001.png", "000002.png"]
    meta = json.loads((out / "demo.json").read_text())
    assert meta["seed"] == 2 and meta["size"] == list(SMALL) and meta["class_scheme"] == "mfnet"
    assert meta["conditions"] == demo_conditions(2, 3) and meta["generator_version"] == demo.GENERATOR_VERSION
    assert read_demo_meta(out) == meta and is_complete_demo(out, 3)
    fp, _ = render_demo_frame(2, 1, SMALL, 3)
    eo = cv2.imread(str(out / "eo" / "000001.png"), cv2.IMREAD_UNCHANGED)
    ir = cv2.imread(str(out / "ir" / "000001.png"), cv2.IMREAD_UNCHANGED)
    lab = cv2.imread(str(out / "labels" / "000001.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(cv2.cvtColor(eo, cv2.COLOR_BGR2RGB), fp.eo)  # RGB on disk is RGB
    assert ir.dtype == np.uint16
    np.testing.assert_array_equal(ir, fp.ir)
    np.testing.assert_array_equal(lab, fp.label)
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]  # no temporary folder left behind


def test_generate_demo_refuses_foreign_folders_and_replaces_an_earlier_demo(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty"):
        generate_demo(foreign, n_frames=1, size=SMALL)
    assert (foreign / "notes.txt").read_text() == "keep me"
    out = generate_demo(tmp_path / "d", n_frames=2, size=SMALL, seed=0)
    generate_demo(out, n_frames=1, size=SMALL, seed=1)
    assert read_demo_meta(out)["seed"] == 1 and len(list((out / "eo").iterdir())) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "mine"]


def test_cancel_or_failure_leaves_no_half_demo(tmp_path):
    target = tmp_path / "demo"
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(CancelledError):
        generate_demo(target, n_frames=5, size=SMALL, cancel=cancel)
    assert not target.exists() and list(tmp_path.iterdir()) == []
    # An earlier demo survives a failed regeneration untouched.
    generate_demo(target, n_frames=2, size=SMALL, seed=4)

    def boom(done: int, total: int) -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        generate_demo(target, n_frames=3, size=SMALL, seed=5, progress=boom)
    assert read_demo_meta(target)["seed"] == 4 and is_complete_demo(target, 2)
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]
    assert issubclass(CancelledError, CSKNetError)


def test_ensure_default_demo_generates_once_in_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(demo_sequence, "DEFAULT_FRAMES", 2)  # what ensure_default_demo reads
    monkeypatch.setattr(demo_sequence, "DEFAULT_SIZE", SMALL)
    stale = tmp_path / "cache" / "csknet-studio" / "demo-v0-seed0"
    generate_demo(stale, n_frames=1, size=SMALL)  # an older generator's cache
    d = demo.default_demo_dir()
    assert d.parent == tmp_path / "cache" / "csknet-studio" and f"v{demo.GENERATOR_VERSION}" in d.name
    first = demo.ensure_default_demo()
    assert first == d and is_complete_demo(d, 2)
    assert not stale.exists()  # older versions' caches are cleaned up
    stamp = (d / "demo.json").stat().st_mtime_ns
    calls = []
    assert demo.ensure_default_demo(progress=lambda *a: calls.append(a)) == d
    assert calls == [] and (d / "demo.json").stat().st_mtime_ns == stamp  # reused, not regenerated
    (d / "ir" / "000001.png").unlink()  # damaged cache: regenerated
    assert demo.ensure_default_demo() == d and is_complete_demo(d, 2)


def test_written_demo_opens_with_the_generic_reader_as_mfnet(tmp_path):
    from csknet_studio.core.data import open_sequence

    out = generate_demo(tmp_path / "demo", n_frames=2, size=SMALL, seed=6)
    seq = open_sequence(out)
    try:
        assert len(seq) == 2 and seq.has_labels and seq.scheme is not None and seq.scheme.name == "mfnet"
        fp, _ = render_demo_frame(6, 1, SMALL, 2)
        got = seq[1]
        np.testing.assert_array_equal(got.eo, fp.eo)
        np.testing.assert_array_equal(got.ir, fp.ir)
        np.testing.assert_array_equal(got.label, fp.label)
    finally:
        seq.close()
