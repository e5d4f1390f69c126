"""Our HDF5 export opens in HDF5 1.x readers, not only in the HDF5 2.0 that h5py bundles.

h5dump from Debian's hdf5-tools (HDF5 1.10; `make` installs it as root) reads the file back: the
structure, the attributes and every byte of the label and image datasets.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from csknet_studio.core.classes import MFNET
from csknet_studio.core.export import export_hdf5
from csknet_studio.core.session import AnnotationSession

H5DUMP = shutil.which("h5dump")
pytestmark = pytest.mark.skipif(H5DUMP is None, reason="h5dump (Debian hdf5-tools, HDF5 1.x) is not installed")


def _h5dump(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([H5DUMP, *args], capture_output=True, text=True, timeout=60)


def _h5dump_version() -> tuple[int, int]:
    m = re.search(r"Version (\d+)\.(\d+)", _h5dump("--version").stdout)
    assert m, "h5dump --version printed no version"
    return int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize("compression", ["gzip", "lzf"])
def test_hdf5_1x_h5dump_reads_our_export(tmp_path, compression, make_sequence):
    seq = make_sequence(tmp_path / "seq", n=4)
    s = AnnotationSession(seq, autosave=False)
    s.set_prediction(1, seq[1].label)
    s.flood_fill(2, (0, 0), 5)
    out = export_hdf5(s, tmp_path / "labels.h5", copy_images=compression == "gzip", compression=compression)
    major, minor = _h5dump_version()
    assert major == 1, f"this test wants an HDF5 1.x h5dump, found {major}.{minor}"

    header = _h5dump("-H", "-A", str(out))
    if compression == "lzf":  # lzf is h5py's own filter: 1.x tools read the structure, not the data
        assert header.returncode == 0, header.stderr
        assert 'DATASET "labels"' in header.stdout
        return
    assert header.returncode == 0, header.stderr
    text = header.stdout
    for name in ("labels", "corrected", "frame_origin", "frame_names", "eo", "ir"):
        assert f'DATASET "{name}"' in text
    assert 'SOFTLINK "exported_data"' in text and 'LINKTARGET "/labels"' in text
    for attr in ("class_names", "palette", "axistags", "DIMENSION_LABELS"):
        assert f'ATTRIBUTE "{attr}"' in text
    assert MFNET.class_names[1] in text

    for name, want in (("labels", np.stack([s.labels(i) for i in range(4)])),
                       ("eo", np.stack([seq[i].eo for i in range(4)])),
                       ("ir", np.stack([seq[i].ir for i in range(4)]))):
        raw = tmp_path / f"{name}.bin"
        r = _h5dump("-d", f"/{name}", "-b", "LE", "-o", str(raw), str(out))
        assert r.returncode == 0, r.stderr
        assert raw.read_bytes() == np.ascontiguousarray(want).astype(want.dtype.newbyteorder("<")).tobytes()
    names = _h5dump("-d", "/frame_names", str(out))
    assert names.returncode == 0 and all(n in names.stdout for n in seq.names)
