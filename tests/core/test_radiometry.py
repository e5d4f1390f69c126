"""Radiometric IR: counts to °C through a linear scale (16-bit TIFFs, sidecar JSON, the user's
--ir-scale) or FLIR's Planck model (R-JPEGs read through flyr); what `info` reports about it."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import tifffile

from csknet_studio.core.data import ArraySequence, open_sequence
from csknet_studio.core.data.report import report_lines, sequence_report
from csknet_studio.core.data.thermal import read_ir_file, tiff_scale
from csknet_studio.core.errors import CorruptImageError, SequenceError
from csknet_studio.core.radiometry import LinearScale, PlanckScale, parse_ir_scale, scale_from_meta

H, W = 12, 16


def _folder(root, ir_writer, n=2):
    """eo/ + ir/ folders; ir_writer(path_stem, i) writes frame i's IR file."""
    (root / "eo").mkdir(parents=True)
    (root / "ir").mkdir()
    for i in range(n):
        cv2.imwrite(str(root / "eo" / f"{i:03d}.png"), np.full((H, W, 3), 40 * i, np.uint8))
        ir_writer(root / "ir" / f"{i:03d}", i)
    return root


# ------------------------------------------------------------------------------------- linear scale
def test_scale_parsing_units_and_gain_offset():
    assert parse_ir_scale("centikelvin") == LinearScale(0.01, -273.15)
    assert parse_ir_scale("0.04, -273.15") == LinearScale(0.04, -273.15)
    assert parse_ir_scale("Celsius") == LinearScale(1.0, 0.0)
    for bad in ("0.01", "a,b", "furlongs", "0,5"):
        with pytest.raises(ValueError, match="IR scale"):
            parse_ir_scale(bad)
    # a unit alone, or a scale and offset to the unit's base (kelvin here, as the demo's demo.json says)
    assert scale_from_meta({"units": "decikelvin"}, "x") == LinearScale(0.1, -273.15, "x")
    assert scale_from_meta({"ir": {"units": "centikelvin", "scale": 0.01, "offset": 0.0}}, "x").celsius(
        29315) == pytest.approx(20.0)
    assert scale_from_meta({"units": "celsius", "scale": 0.1, "offset": -100}, "x") == LinearScale(0.1, -100, "x")
    assert scale_from_meta({"shape": [4, 4]}, "x") is None
    with pytest.raises(ValueError, match="unknown IR unit"):
        scale_from_meta({"units": "rankine-ish"}, "x")


def test_16_bit_tiff_in_centikelvin_reads_exact_celsius(tmp_path):
    values = np.array([[27315, 29315, 31015, 37315]], np.uint16).repeat(H, 0).repeat(W // 4, 1)

    def write(stem, i):
        tifffile.imwrite(stem.with_suffix(".tif"), values + i * 100, description=json.dumps({"units": "centikelvin"}))

    with open_sequence(_folder(tmp_path / "seq", write), prefetch=0) as seq:
        assert seq.radiometric
        fp = seq[1]
        assert fp.ir.dtype == np.uint16 and int(fp.ir[0, 0]) == 27415  # the model still gets raw counts
        c = seq.ir_celsius(1)
        assert c.dtype == np.float32 and c.shape == (H, W)
        # exact to float32's resolution: 27315 * 0.01 - 273.15 is 6e-14 in float64, not 0
        np.testing.assert_allclose(c[0, ::4], [1.0, 21.0, 38.0, 101.0], rtol=0, atol=1e-6)
        np.testing.assert_allclose(seq.ir_celsius(0)[0, ::4], [0.0, 20.0, 37.0, 100.0], rtol=0, atol=1e-6)
        assert float(seq[0].radiometry.celsius(np.uint16(29315))) == 20.0


def test_tiff_gdal_scale_and_user_scale_override(tmp_path):
    gdal = ('<GDALMetadata><Item name="SCALE" sample="0" role="scale">0.04</Item>'
            '<Item name="OFFSET" sample="0" role="offset">0</Item>'
            '<Item name="UNITTYPE" sample="0" role="unittype">K</Item></GDALMetadata>')

    def write(stem, i):
        tifffile.imwrite(stem.with_suffix(".tiff"), np.full((H, W), 7500, np.uint16),
                         extratags=[(42112, "s", 0, gdal, True)])

    root = _folder(tmp_path / "seq", write)
    with open_sequence(root, prefetch=0) as seq:
        assert seq.ir_celsius(0)[0, 0] == pytest.approx(7500 * 0.04 - 273.15, abs=1e-4)
        assert "GDAL" in seq.radiometry.source
    with open_sequence(root, prefetch=0, ir_scale="0.01,5") as seq:  # the user's scale wins over the file
        assert seq.ir_celsius(0)[0, 0] == pytest.approx(80.0)
    assert tiff_scale("not json", None, "a.tif") is None


def test_plain_16_bit_ir_is_not_radiometric_until_the_user_says(tmp_path):
    def write(stem, i):
        cv2.imwrite(str(stem.with_suffix(".png")), np.full((H, W), 30000, np.uint16))

    root = _folder(tmp_path / "seq", write)
    with open_sequence(root, prefetch=0) as seq:
        assert not seq.radiometric and seq.ir_celsius(0) is None and seq[0].radiometry is None
        report = sequence_report(seq)
        assert report["radiometric"] is False and report["ir_to_celsius"] is None
        assert any(line.strip().startswith("radiometric: no") for line in report_lines(report))
    with open_sequence(root, prefetch=0, ir_scale="centikelvin") as seq:
        assert seq.radiometric and seq.ir_celsius(0)[0, 0] == pytest.approx(26.85)
    with pytest.raises(SequenceError, match="IR scale 'nope'"):
        open_sequence(root, ir_scale="nope")


def test_sidecar_json_and_the_demo_are_radiometric(tmp_path):
    from csknet_studio.core.demo import generate_demo

    demo = generate_demo(tmp_path / "demo", 2, (48, 64), 0)
    with open_sequence(demo, prefetch=0) as seq:
        assert seq.radiometric and seq.radiometry == LinearScale(0.01, -273.15, "demo.json")
        np.testing.assert_allclose(seq.ir_celsius(0), seq[0].ir.astype(np.float64) / 100 - 273.15, atol=1e-4)
        r = sequence_report(seq)
    assert r["radiometric"] is True and r["ir_to_celsius"]["gain"] == 0.01
    lo, hi = r["ir_celsius_range"]
    assert -60 < lo < hi < 110  # a street at night and by day, exhaust pipes included
    assert any("radiometric: yes, °C = v × 0.01 - 273.15 (demo.json)" in line for line in report_lines(r))
    (demo / "demo.json").write_text(json.dumps({"ir": {"units": "furlongs"}}), encoding="utf-8")
    with pytest.raises(SequenceError, match="demo.json.*unknown IR unit"):
        open_sequence(demo)


def test_array_sequence_carries_the_scale_to_every_frame():
    ir = np.full((3, H, W), 30315, np.uint16)
    seq = ArraySequence(None, ir, ir_scale=LinearScale.of_units("centikelvin"))
    assert seq[2].radiometry is not None and seq.ir_celsius(2)[5, 5] == pytest.approx(30.0)
    seq.set_ir_scale(None)
    assert not seq.radiometric and seq[2].ir_celsius() is None


# ------------------------------------------------------------------------------------- FLIR / Planck
def test_planck_conversion_matches_a_hand_computed_value():
    # E = 1, no distance, no window: T = B / ln(R1 / (R2 (raw + O)) + F).
    # raw 18000: R2 * (18000 - 7340) = 133.7324..., R1 / that = 157.828..., ln(158.828...) = 5.067824,
    # 1501 / 5.067824 = 296.1823 K = 23.0323 °C.
    p = PlanckScale(r1=21106.77, r2=0.012545258, b=1501.0, f=1.0, o=-7340, emissivity=1.0)
    assert p.celsius(np.array([18000]))[0] == pytest.approx(23.0323, abs=1e-3)
    assert float(p.celsius(16000)) == pytest.approx(
        1501.0 / math.log(21106.77 / (0.012545258 * (16000 - 7340)) + 1.0) - 273.15, abs=1e-4)
    assert np.isnan(p.celsius(np.array([7000]))[0])  # below the offset: no temperature, not a wrong one
    with pytest.raises(ValueError, match="emissivity"):
        PlanckScale(r1=1, r2=1, b=1, f=1, o=0, emissivity=0)


def test_planck_with_object_parameters_matches_flyr(flir_constants):
    from flyr import FlyrThermogram

    raw = np.linspace(12000, 20000, H * W).reshape(H, W)
    ours = PlanckScale.from_flir(flir_constants, "test").celsius(raw)
    theirs = FlyrThermogram(raw.copy(), flir_constants).celsius
    np.testing.assert_allclose(ours, theirs, atol=2e-3)
    assert not np.allclose(ours, PlanckScale.from_flir({**flir_constants, "emissivity": 1.0}, "t").celsius(raw), atol=0.1)


@pytest.mark.parametrize("png", [True, False], ids=["png-raw", "plain-raw"])
def test_flir_rjpeg_counts_and_celsius_match_flyr(tmp_path, png, write_rjpeg):
    import flyr

    counts = (np.arange(H * W).reshape(H, W) * 30 + 14000).astype(np.uint16)
    path = write_rjpeg(tmp_path / "frame.jpg", counts, png=png)
    raw, scale = read_ir_file(path)
    assert raw.dtype == np.uint16
    np.testing.assert_array_equal(raw, counts)
    assert isinstance(scale, PlanckScale) and scale.emissivity == pytest.approx(0.95)
    np.testing.assert_allclose(scale.celsius(raw), flyr.unpack(str(path)).celsius, atol=2e-3)


def test_folder_of_flir_rjpegs_is_radiometric(tmp_path, write_rjpeg):
    def write(stem, i):
        write_rjpeg(stem.with_suffix(".jpg"), np.full((H, W), 17000 + 500 * i, np.uint16))

    with open_sequence(_folder(tmp_path / "seq", write), prefetch=0) as seq:
        assert isinstance(seq.radiometry, PlanckScale)
        assert seq[0].ir.dtype == np.uint16 and int(seq[1].ir[3, 3]) == 17500
        t0, t1 = float(seq.ir_celsius(0)[3, 3]), float(seq.ir_celsius(1)[3, 3])
        assert -40 < t0 < t1 < 60
        r = sequence_report(seq)
    assert r["radiometric"] and r["ir_to_celsius"]["kind"] == "planck"
    assert r["ir_celsius_range"] == pytest.approx([t0, t1], abs=1e-2)


def test_damaged_rjpeg_names_the_file(tmp_path, write_rjpeg):
    path = write_rjpeg(tmp_path / "bad.jpg", np.full((H, W), 15000, np.uint16), png=False)
    data = path.read_bytes()
    path.write_bytes(data[:400])  # the thermal record is cut off
    with pytest.raises(CorruptImageError, match="bad.jpg"):
        read_ir_file(path)


# ------------------------------------------------------------------------------------- HDF5 export
def test_hdf5_export_writes_ir_celsius_for_radiometric_ir(tmp_path):
    import h5py

    from csknet_studio.core.export import export_hdf5
    from csknet_studio.core.export_read import read_labels_hdf5
    from csknet_studio.core.session import AnnotationSession

    rng = np.random.default_rng(0)
    eo = rng.integers(0, 255, (3, H, W, 3), dtype=np.uint8)
    ir = rng.integers(26000, 34000, (3, H, W), dtype=np.uint16)
    seq = ArraySequence(eo, ir, ir_scale=LinearScale.of_units("centikelvin"))
    out = export_hdf5(AnnotationSession(seq), tmp_path / "r.h5", copy_images=True)
    with h5py.File(out, "r") as f:
        ds = f["ir_celsius"]
        assert ds.dtype == np.float32 and ds.shape == (3, H, W) and ds.attrs["units"] == "degC"
        assert json.loads(ds.attrs["conversion"]) == {"kind": "linear", "gain": 0.01, "offset": -273.15,
                                                      "source": "user"}
        np.testing.assert_allclose(ds[2], ir[2] * 0.01 - 273.15, atol=1e-4)
        np.testing.assert_array_equal(f["ir"][2], ir[2])  # the raw counts stay as they were
    assert read_labels_hdf5(out).ir_celsius.shape == (3, H, W)
    with open_sequence(out, prefetch=0) as back:  # the export opens as a sequence, radiometric again
        assert back.radiometry == LinearScale(0.01, -273.15, "user")
        np.testing.assert_allclose(back.ir_celsius(1), ir[1] * 0.01 - 273.15, atol=1e-4)
    plain = ArraySequence(eo, ir)  # not radiometric, or no image copies: no temperatures
    for s, copy in ((plain, True), (seq, False)):
        with h5py.File(export_hdf5(AnnotationSession(s), tmp_path / f"n{copy}.h5", copy_images=copy), "r") as f:
            assert "ir_celsius" not in f


def test_cli_export_with_ir_scale_writes_celsius(tmp_path, capsys):
    import h5py

    from csknet_studio.cli import main

    def write(stem, i):
        cv2.imwrite(str(stem.with_suffix(".png")), np.full((H, W), 31315 + i, np.uint16))

    root = _folder(tmp_path / "seq", write, n=3)
    out = tmp_path / "out.h5"
    assert main(["export", str(root), "--out", str(out), "--copy-images", "--ir-scale", "centikelvin",
                 "--quiet"]) == 0
    with h5py.File(out, "r") as f:
        assert f["ir_celsius"][2, 0, 0] == pytest.approx(40.02, abs=1e-4)
    assert main(["info", str(root), "--ir-scale", "kelvin", "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["radiometric"] and r["ir_celsius_range"] == pytest.approx([31315 - 273.15, 31317 - 273.15])


def test_damaged_rjpegs_and_tiffs_raise_only_corrupt_image_error(tmp_path, write_rjpeg):
    """Truncated and bit-flipped R-JPEGs and TIFFs: a frame or one CorruptImageError, nothing else."""
    rjpeg = write_rjpeg(tmp_path / "ok.jpg", np.full((H, W), 15000, np.uint16), png=True).read_bytes()
    tif = tmp_path / "ok.tif"
    tifffile.imwrite(tif, np.full((H, W), 30000, np.uint16), description=json.dumps({"units": "centikelvin"}))
    rng = np.random.default_rng(7)
    for good in (rjpeg, tif.read_bytes()):
        for k in range(40):
            data = bytearray(good)
            if k % 2:
                data = data[: int(rng.integers(2, len(data)))]
            else:
                for i in rng.integers(0, len(data), 6):
                    data[i] ^= 1 << int(rng.integers(0, 8))
            path = tmp_path / f"bad{k}{'.jpg' if good is rjpeg else '.tif'}"
            path.write_bytes(bytes(data))
            try:
                ir, _ = read_ir_file(path)
            except CorruptImageError as exc:
                assert path.name in str(exc)
            else:
                assert ir.ndim == 2 and ir.dtype in (np.uint8, np.uint16, np.float32)
