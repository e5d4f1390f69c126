"""COCO, CVAT and napari: each export read back by the library (or the rules) the other tool reads it with."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from csknet_studio.cli import main
from csknet_studio.core.classes import MFNET, ClassScheme
from csknet_studio.core.data import ArraySequence, open_sequence
from csknet_studio.core.errors import CancelledError, ExportError
from csknet_studio.core.export import export_hdf5
from csknet_studio.core.export_formats import (
    LABELMAP_HEADER,
    MAX_OBJECTS,
    VOC_VOID,
    export_coco,
    export_cvat,
    voc_palette,
)
from csknet_studio.core.export_read import count_origins, read_frame_origins
from csknet_studio.core.napari_reader import LazyFrames, get_reader, read_label_export
from csknet_studio.core.palette_png import decode_png_indices
from csknet_studio.core.session import AnnotationSession

N, H, W = 5, 48, 64
# pycocotools' decode trips numpy 2's __array__(copy=) check: its warning, not ours
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _frame0() -> np.ndarray:
    """Background, two separate cars, a person of two pixels touching at a corner (one 8-connected
    object), a bike touching a car (two objects of two classes) and an unlabelled strip."""
    lab = np.zeros((H, W), np.uint8)
    lab[2:10, 3:12] = 1
    lab[30:40, 40:60] = 1
    lab[20, 20] = lab[21, 21] = 2
    lab[30:40, 60:64] = 3
    lab[:, 0] = 255
    return lab


@pytest.fixture
def session(tmp_path, make_sequence) -> AnnotationSession:
    seq = make_sequence(tmp_path / "data" / "seq", n=N)
    s = AnnotationSession(seq)
    s.set_prediction(0, _frame0())
    s.accept_prediction(0)  # corrected, exactly _frame0()
    s.set_prediction(1, seq[1].label)  # predicted
    s.apply_propagation({2: np.where(seq[2].label > 0, 4, 0).astype(np.uint8)})  # propagated
    s.set_prediction(4, np.full((H, W), 255, np.uint8))  # predicted, but nothing labelled
    s.accept_prediction(4)
    return s  # frame 3: nothing at all


def _class_masks_from_coco(coco: COCO, image_id: int) -> dict[int, np.ndarray]:
    out: dict[int, np.ndarray] = {}
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image_id])):
        m = coco.annToMask(ann).astype(bool)
        assert not (out.get(ann["category_id"], np.zeros_like(m)) & m).any()  # objects never overlap
        out[ann["category_id"]] = out.get(ann["category_id"], np.zeros_like(m)) | m
    return out


def test_coco_round_trips_through_pycocotools_pixel_exactly(session, tmp_path):
    done = []
    out = export_coco(session, tmp_path / "coco" / "labels.json", progress=lambda d, t: done.append((d, t)))
    assert done == [(i + 1, N) for i in range(N)]
    coco = COCO(str(out))
    cats = coco.loadCats(coco.getCatIds())
    assert [(c["id"], c["name"], c["color"]) for c in cats] == [
        (c, MFNET.class_names[c], list(MFNET.palette[c])) for c in range(1, MFNET.num_classes)]
    images = {img["frame_name"]: img for img in coco.loadImgs(coco.getImgIds())}
    assert sorted(images) == [session.names[i] for i in (0, 1, 2)]  # frames 3 and 4 hold no labels
    for i in (0, 1, 2):
        img = images[session.names[i]]
        assert (img["width"], img["height"], img["frame_index"]) == (W, H, i)
        want = session.labels(i)
        masks = _class_masks_from_coco(coco, img["id"])
        for c in range(1, MFNET.num_classes):  # per class, pixel for pixel
            assert np.array_equal(masks.get(c, np.zeros((H, W), bool)), want == c), (i, c)
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[images[session.names[0]]["id"]]))
    assert sorted(a["category_id"] for a in anns) == [1, 1, 2, 3]  # one per 8-connected object
    person = next(a for a in anns if a["category_id"] == 2)
    assert person["area"] == 2 and person["bbox"] == [20.0, 20.0, 2.0, 2.0] and person["iscrowd"] == 0
    big = max(anns, key=lambda a: a["area"])
    assert big["area"] == 200 and big["bbox"] == [40.0, 30.0, 20.0, 10.0]
    assert isinstance(big["segmentation"]["counts"], str)  # compressed RLE, as JSON text
    assert [img["frame_origin"] for img in images.values()] == ["corrected", "predicted", "propagated"]
    assert read_frame_origins(out) == ["corrected", "predicted", "propagated", "unlabelled", "corrected"]
    assert coco.dataset["info"]["scheme"] == "mfnet" and coco.dataset["info"]["annotation_style"] == "component"


def test_coco_per_class_is_one_annotation_per_class_and_frame(session, tmp_path):
    out = export_coco(session, tmp_path / "c.json", per_class=True)
    data = json.loads(out.read_text())
    first = [a for a in data["annotations"] if a["image_id"] == 1]
    assert sorted(a["category_id"] for a in first) == [1, 2, 3]
    car = next(a for a in first if a["category_id"] == 1)
    decoded = mask_utils.decode(car["segmentation"]).astype(bool)
    assert np.array_equal(decoded, _frame0() == 1) and car["area"] == 72 + 200
    assert data["info"]["annotation_style"] == "class"


def test_coco_names_the_image_files_and_copies_them_on_request(tmp_path, make_sequence, folder_sequence):
    root = folder_sequence(tmp_path / "seq", n=3)
    seq = make_sequence(None, n=3)  # the frames written there
    folder = open_sequence(root)
    s = AnnotationSession(folder, tmp_path / "p.csknet")
    s.fill_polygon(1, [(0, 0), (20, 0), (20, 10)], 2)
    out = export_coco(s, tmp_path / "out" / "c.json")
    img = json.loads(out.read_text())["images"][0]
    assert (out.parent / img["file_name"]).resolve() == (root / "eo" / f"{seq.names[1]}.png").resolve()
    out = export_coco(s, tmp_path / "copy" / "c.json", copy_images=True)
    img = json.loads(out.read_text())["images"][0]
    assert img["file_name"] == f"images/eo/{seq.names[1]}.png"
    assert np.array_equal(cv2.imread(str(out.parent / img["file_name"]))[..., ::-1], folder[1].eo)
    assert np.array_equal(cv2.imread(str(out.parent / img["ir_file_name"]), cv2.IMREAD_UNCHANGED), folder[1].ir)
    folder.close()


def test_coco_images_carry_a_recordings_camera_stamps(tmp_path, make_sequence):
    seq = make_sequence(None, n=2)
    seq.timestamps_ns = np.array([1_700_000_000_400_000_000, 1_700_000_000_500_000_000], np.int64)
    seq.ir_timestamps_ns = seq.timestamps_ns + 3_000_000
    s = AnnotationSession(seq)
    s.set_prediction(1, seq[1].label)
    img = json.loads(export_coco(s, tmp_path / "t.json").read_text())["images"][0]
    assert img["timestamp_ns"] == 1_700_000_000_500_000_000 and img["ir_timestamp_ns"] == 1_700_000_000_503_000_000
    assert img["date_captured"] == "2023-11-14T22:13:20.500000Z"


def test_coco_cancel_keeps_the_earlier_file(session, tmp_path):
    out = export_coco(session, tmp_path / "k.json")
    before = out.read_bytes()
    session.fill_polygon(3, [(0, 0), (30, 0), (30, 20)], 5)
    calls = iter(range(100))
    with pytest.raises(CancelledError, match="unchanged"):
        export_coco(session, out, cancel=lambda: next(calls) >= 2)
    assert out.read_bytes() == before and not [p for p in tmp_path.iterdir() if p.name.startswith(".k.json")]


def _parse_labelmap(path: Path) -> dict[tuple[int, int, int], str]:
    """labelmap.txt as CVAT / Datumaro parse it: `name:r,g,b:parts:actions`, '#' starts a comment."""
    out = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, colour, parts, actions = line.split(":")
        out[tuple(int(v) for v in colour.split(","))] = name
    return out


def _ids_from_colour_mask(png: Path, colour_to_name: dict, names: list[str], ignore: int) -> np.ndarray:
    rgb = cv2.imread(str(png), cv2.IMREAD_COLOR)[..., ::-1]
    ids = np.full(rgb.shape[:2], -1, np.int32)
    for colour, name in colour_to_name.items():
        ids[(rgb == colour).all(-1)] = ignore if name == "ignored" else names.index(name)
    assert (ids >= 0).all(), "a pixel has a colour labelmap.txt does not declare"
    return ids


def test_cvat_folder_reads_back_to_identical_class_ids(session, tmp_path):
    out = export_cvat(session, tmp_path / "cvat")
    assert (out / "labelmap.txt").read_text().splitlines()[0] == LABELMAP_HEADER
    labelmap = _parse_labelmap(out / "labelmap.txt")
    assert list(labelmap.values()) == [*MFNET.class_names, "ignored"] and VOC_VOID in labelmap
    listed = (out / "ImageSets" / "Segmentation" / "default.txt").read_text().split()
    assert listed == [session.names[i] for i in (0, 1, 2)]
    for i in (0, 1, 2):
        ids = _ids_from_colour_mask(out / "SegmentationClass" / f"{session.names[i]}.png", labelmap,
                                    list(MFNET.class_names), 255)
        assert np.array_equal(ids, session.labels(i)), i
    obj, pal = decode_png_indices((out / "SegmentationObject" / f"{session.names[0]}.png").read_bytes())
    assert np.array_equal(pal, voc_palette())
    lab = _frame0()
    assert sorted(np.unique(obj).tolist()) == [0, 1, 2, 3, 4, 255]
    assert np.array_equal(obj == 255, lab == 255) and np.array_equal(obj == 0, lab == 0)
    assert (lab[obj == 1] == 1).all() and (obj == 1).sum() == 200  # the largest object is number 1
    for k in (1, 2, 3, 4):  # each object lies in one class
        assert len(np.unique(lab[obj == k])) == 1
    assert json.loads((out / "frames.json").read_text())["frames"][session.names[3]] == "unlabelled"
    assert count_origins(read_frame_origins(out)) == {"corrected": 2, "propagated": 1, "predicted": 1,
                                                      "unlabelled": 1}


def test_cvat_refuses_a_scheme_whose_colours_clash_and_voids_objects_past_254(tmp_path, make_sequence):
    twins = ClassScheme("twins", ("bg", "a", "b"), ((0, 0, 0), (9, 9, 9), (9, 9, 9)))
    s = AnnotationSession(make_sequence(None, n=1, scheme=twins))
    with pytest.raises(ExportError, match="share the colour"):
        export_cvat(s, tmp_path / "x")
    dots = np.zeros((H, W), np.uint8)
    dots[::2, ::2] = 1  # 24 x 32 = 768 separate objects
    s = AnnotationSession(make_sequence(None, n=1))
    s.set_prediction(0, dots)
    out = export_cvat(s, tmp_path / "dots")
    obj, _ = decode_png_indices((out / "SegmentationObject" / f"{s.names[0]}.png").read_bytes())
    assert obj.max() == 255 and len(np.unique(obj[obj < 255])) == MAX_OBJECTS + 1
    assert json.loads((out / "frames.json").read_text())["objects_made_void"] == {s.names[0]: 768 - MAX_OBJECTS}
    assert "ignored" not in (out / "labelmap.txt").read_text()  # no unlabelled pixel was written


def test_an_id_outside_the_scheme_is_a_clear_error(tmp_path):
    s = AnnotationSession(ArraySequence(np.zeros((1, 8, 8, 3), np.uint8), None, names=["a"]))
    s.set_prediction(0, np.full((8, 8), 42, np.uint8))
    for export in (export_coco, export_cvat):
        with pytest.raises(ExportError, match=r"frame 1 \(a\) holds class id\(s\) \[42\]"):
            export(s, tmp_path / "bad.json")


def test_napari_reader_gives_eo_ir_and_coloured_labels(session, tmp_path):
    out = export_hdf5(session, tmp_path / "l.h5", copy_images=True)
    assert get_reader(str(tmp_path / "other.h5")) is None and get_reader([str(out), str(out)]) is None
    reader = get_reader(str(out))
    assert reader is read_label_export
    layers = reader(str(out))
    assert [(k["name"], t) for _, k, t in layers] == [("EO", "image"), ("IR", "image"), ("labels (mfnet)", "labels")]
    (eo, eo_kw, _), (ir, ir_kw, _), (labels, lab_kw, _) = layers
    assert eo.shape == (N, H, W, 3) and eo_kw["rgb"] and not ir_kw["visible"]
    assert np.array_equal(eo[2], session.sequence[2].eo) and np.array_equal(ir[1:3], [session.sequence[i].ir
                                                                                       for i in (1, 2)])
    assert np.array_equal(np.asarray(ir), np.stack([session.sequence[i].ir for i in range(N)]))
    assert labels.shape == (N, H, W) and all(np.array_equal(labels[i], session.labels(i)) for i in range(N))
    colours = lab_kw["colormap"]
    assert colours[1] == [64 / 255, 0.0, 128 / 255, 1.0] and colours[0][3] == 0 and colours[255][3] == 0
    assert lab_kw["features"]["class"][2] == "person" and lab_kw["metadata"]["frame_origin"][3] == "unlabelled"


def test_napari_reader_falls_back_on_the_source_sequence(tmp_path, make_sequence, folder_sequence):
    root = folder_sequence(tmp_path / "seq", n=3)
    seq = make_sequence(None, n=3)  # the frames written there
    folder = open_sequence(root)
    out = export_hdf5(AnnotationSession(folder), tmp_path / "x" / "l.h5")  # images not copied
    folder.close()
    layers = read_label_export(str(out))
    eo, ir = layers[0][0], layers[1][0]
    assert isinstance(eo, LazyFrames) and eo.shape == (3, H, W, 3)
    assert np.array_equal(eo[2], seq[2].eo) and np.array_equal(ir[-1, 5:9], seq[2].ir[5:9])
    (root / "eo" / f"{seq.names[0]}.png").rename(root / "gone.png")
    with pytest.warns(UserWarning, match="labels only"):
        assert [t for _, _, t in read_label_export(str(out))] == ["labels"]


def test_napari_manifest_names_the_reader():
    from csknet_studio import __file__ as pkg

    text = (Path(pkg).parent / "napari.yaml").read_text()
    assert "python_name: csknet_studio.core.napari_reader:get_reader" in text
    assert '"*.h5"' in text


def test_napari_opens_the_file_through_the_plugin(session, tmp_path):
    """Only where napari is installed (an optional extra): napari's own layers from our LayerData."""
    napari_layers = pytest.importorskip("napari.layers")
    out = export_hdf5(session, tmp_path / "n.h5", copy_images=True)
    built = [napari_layers.Layer.create(d, k, t) for d, k, t in read_label_export(str(out))]
    lab = built[-1]
    assert np.allclose(lab.get_color(1)[:3], np.array(MFNET.palette[1]) / 255)
    assert np.array_equal(np.asarray(lab.data[0]), session.labels(0))


def test_cli_exports_each_format(tmp_path, capsys, folder_sequence):
    root = folder_sequence(tmp_path / "seq", n=3)
    seq = open_sequence(root)
    s = AnnotationSession(seq)
    s.fill_polygon(1, [(0, 0), (30, 0), (30, 20)], 2)
    want = s.labels(1).copy()
    seq.close()
    assert main(["export", str(root), "--format", "coco", "--quiet"]) == 0
    assert "3 frames: 1 corrected, 0 propagated, 0 predicted, 2 unlabelled" in capsys.readouterr().out
    coco = COCO(str(tmp_path / "seq.coco.json"))
    assert np.array_equal(_class_masks_from_coco(coco, 2)[2], want == 2)
    assert main(["export", str(root), "--format", "cvat", "--out", str(tmp_path / "cv"), "--quiet"]) == 0
    assert (tmp_path / "cv" / "SegmentationClass" / f"{coco.imgs[2]['frame_name']}.png").is_file()
    assert main(["export", str(root), "--format", "coco", "--png", str(tmp_path / "p"), "--quiet"]) == 2
    assert "--png" in capsys.readouterr().err
    assert main(["export", str(root), "--format", "cvat", "--probabilities", "--quiet"]) == 2
    assert "HDF5" in capsys.readouterr().err


def test_rle_of_an_object_is_what_pycocotools_encodes_from_the_whole_frame():
    """The COCO writer encodes only the columns an object spans; the result must equal
    pycocotools' own encoding of the full-frame mask, runs and compressed string alike."""
    from csknet_studio.core.export_formats import _rle, objects

    rng = np.random.default_rng(1)
    checked = 0
    for trial in range(150):
        h, w = (int(v) for v in rng.integers(1, 24, 2))
        lab = ((rng.random((h, w)) < rng.random()) * rng.integers(1, 4, (h, w))).astype(np.uint8)
        for _c, y, x, crop in objects(lab, 255, per_class=bool(trial % 2)):
            full = np.zeros((h, w), np.uint8, order="F")
            full[y: y + crop.shape[0], x: x + crop.shape[1]] = crop
            seg, rle = _rle(mask_utils, (h, w), y, x, crop)
            assert rle["counts"] == mask_utils.encode(full)["counts"] and seg["size"] == [h, w]
            checked += 1
    assert checked > 1000
