"""`csknet-studio info` on the demo sequence and on a recording, through the real CLI entry point."""

from __future__ import annotations

import json

from csknet_studio.cli import main


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_info_on_demo(tmp_path, capsys):
    demo = tmp_path / "demo"
    assert main(["demo", "--out", str(demo), "--frames", "4", "--size", "48x64", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["info", str(demo), "--json"]) == 0
    out = capsys.readouterr().out
    r = _last_json(out)
    assert r["layout"] == "folders" and r["frames"] == 4
    assert r["eo_shape"] == [48, 64, 3] and r["ir_shape"] == [48, 64]
    assert r["ir_dtype"] == "uint16" and r["ir_bit_depth"] == 16
    assert r["labels"] is True and r["scheme"] == "mfnet"
    assert r["bad_frames"] == []
    assert "folders, 4 frames" in out
    # the demo's IR is centikelvin, and its demo.json says so
    assert r["radiometric"] is True and r["ir_to_celsius"]["gain"] == 0.01
    assert "radiometric: yes, °C = v × 0.01 - 273.15 (demo.json)" in out


def test_info_on_recording(tmp_path, capsys, bagdata):
    cams = [bagdata.Camera("/eo", 30.0, "rgb8", (48, 64)),
            bagdata.Camera("/ir", 9.0, "mono16", (24, 32), offset_ns=3_000_000, gaps=[(5, 8)], corrupt=[2]),
            bagdata.Camera("/ir_preview", 9.0, "mono8", (24, 32))]
    bag = bagdata.write_recording(tmp_path / "rec.bag", cams, 2.0, "ros1")
    assert main(["info", str(bag)]) == 2  # three image topics: the user must pick
    err = capsys.readouterr().err
    assert "--eo-topic" in err and "/ir_preview" in err
    assert main(["info", str(bag), "--eo-topic", "/eo", "--ir-topic", "/ir", "--json"]) == 0
    out = capsys.readouterr().out
    r = _last_json(out)
    assert r["layout"] == "rosbag1" and r["frames"] == 15 == r["pairs"]
    assert r["ir_dtype"] == "uint16" and r["ir_native_shape"] == [24, 32]
    assert [t["name"] for t in r["topics"]] == ["/eo", "/ir", "/ir_preview"]
    assert r["unpaired"] == {"eo": 45, "ir": 0} and r["dropped"] == {"eo": 0, "ir": 3}
    assert abs(r["clock_offset_ns"] + 3_000_000) < 17_000_000
    assert r["bad_frames"] == [2]
    assert "clock offset" in out and "/ir [IR]" in out


def test_info_warns_of_colour_mapped_thermal(tmp_path, capsys, write_colour_mapped_folder):
    seq = write_colour_mapped_folder(tmp_path / "jet")
    assert main(["info", str(seq), "--json"]) == 0
    out = capsys.readouterr().out
    assert _last_json(out)["ir_colour_mapped"] is True
    assert sum("colour-mapped" in line for line in out.splitlines()[:-1]) == 1  # said once, not per frame
    demo = tmp_path / "demo"
    assert main(["demo", "--out", str(demo), "--frames", "2", "--size", "48x64", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["info", str(demo), "--json"]) == 0
    assert _last_json(capsys.readouterr().out)["ir_colour_mapped"] is False
