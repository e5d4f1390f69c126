"""An HDF5 export that fails however it fails (a real write over the file size limit, a segfault in
the writer, too little space, Ctrl+C or SIGTERM in the CLI) costs that export only: this process
lives on, the error says what happened, the earlier file is intact and no temporary file is left."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from csknet_studio.core import export_process
from csknet_studio.core.classes import MFNET
from csknet_studio.core.data import ArraySequence
from csknet_studio.core.errors import CancelledError, ExportError
from csknet_studio.core.export import export_hdf5, remove_stale_temps
from csknet_studio.core.export_read import read_labels_hdf5
from csknet_studio.core.session import AnnotationSession

N, H, W = 12, 96, 128
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and resource limits")


@pytest.fixture
def session(tmp_path) -> AnnotationSession:
    """Noise imagery (it does not compress), so copying it writes about 600 kB."""
    rng = np.random.default_rng(0)
    seq = ArraySequence(rng.integers(0, 255, (N, H, W, 3), dtype=np.uint8),
                        rng.integers(0, 65535, (N, H, W), dtype=np.uint16), scheme=MFNET,
                        source=tmp_path / "seq")
    s = AnnotationSession(seq, tmp_path / "seq.csknet", autosave=False)
    for i in range(N):
        s.set_prediction(i, rng.integers(0, MFNET.num_classes, (H, W)).astype(np.uint8))
    s.fill_polygon(0, [(0, 0), (40, 0), (40, 30)], 3)
    return s


def _child(monkeypatch, code: str) -> None:
    """Run the export's writer process with `code` before its main(): a fault to inject."""
    body = "import resource\nresource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n" + textwrap.dedent(code) + \
        "\nfrom csknet_studio.core.export_process import main\nraise SystemExit(main())\n"
    monkeypatch.setattr(export_process, "writer_command", lambda: [sys.executable, "-c", body])


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("sigxfsz", ["kills", "ignored"])
def test_a_write_over_the_file_size_limit_fails_the_export_only(session, tmp_path, monkeypatch, sigxfsz):
    """RLIMIT_FSIZE makes the child's real write fail: SIGXFSZ kills it, or (Python ignores the
    signal) the write returns EFBIG and HDF5 raises or crashes. Whatever the child does, this
    process lives on."""
    out = export_hdf5(session, tmp_path / "out" / "labels.h5")
    earlier = out.read_bytes()
    kill = "import signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n" if sigxfsz == "kills" else ""
    _child(monkeypatch, kill + "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))\n")
    with pytest.raises(ExportError) as err:
        export_hdf5(session, out, copy_images=True)
    msg = str(err.value)
    assert str(out) in msg and "earlier file is left intact" in msg
    if sigxfsz == "kills":
        assert "the export process crashed (signal 25: File size limit exceeded)" in msg
    else:  # EFBIG from the write, or HDF5 crashing on it
        assert re.search(r"File too large|crashed \(signal \d+", msg), msg
    assert out.read_bytes() == earlier and _leftovers(out.parent) == []
    monkeypatch.undo()  # the app goes on: the next export works
    again = read_labels_hdf5(export_hdf5(session, out, copy_images=True))
    assert np.array_equal(again.labels[0], session.labels(0)) and again.eo.shape == (N, H, W, 3)


def test_a_segfault_in_the_writer_is_reported_and_nothing_else_is_lost(session, tmp_path, monkeypatch):
    out = export_hdf5(session, tmp_path / "labels.h5")
    earlier = out.read_bytes()
    _child(monkeypatch, """
        import os, signal
        from csknet_studio.core import export_process
        real = export_process._Writer.frame
        def frame(self, i, *a):
            if i == 3:
                os.kill(os.getpid(), signal.SIGSEGV)
            real(self, i, *a)
        export_process._Writer.frame = frame
    """)
    t0 = time.monotonic()
    with pytest.raises(ExportError, match=r"the export process crashed \(signal 11: Segmentation fault\)") as err:
        export_hdf5(session, out, compression="lzf")
    assert "your corrections are unaffected" in str(err.value)
    assert time.monotonic() - t0 < 30
    assert out.read_bytes() == earlier and _leftovers(tmp_path) == []
    assert session.labels(0)[0, 1] == 3  # the in-memory corrections are still there


def test_too_little_free_space_is_refused_before_writing(session, tmp_path, monkeypatch):
    out = export_hdf5(session, tmp_path / "labels.h5")
    earlier = out.read_bytes()
    real = shutil.disk_usage
    monkeypatch.setattr("csknet_studio.core.export.shutil.disk_usage",
                        lambda p: real(p)._replace(free=300_000))
    with pytest.raises(ExportError, match=r"not enough free space .* needs about \d+\.\d MB"):
        export_hdf5(session, out, copy_images=True)
    assert out.read_bytes() == earlier and _leftovers(tmp_path) == []
    export_hdf5(session, out)  # labels alone fit in that space


def test_stale_temp_files_of_a_killed_export_are_removed_on_the_next_run(session, tmp_path):
    out = tmp_path / "labels.h5"
    dead = tmp_path / ".labels.h5.999999999.abcd1234.h5.tmp"  # no such pid
    alive = tmp_path / f".labels.h5.{os.getppid()}.abcd1234.h5.tmp"  # a running export's
    other = tmp_path / ".other.h5.999999999.abcd1234.h5.tmp"  # another target's
    old = tmp_path / ".labels.h5.k2j4h5g6.h5.tmp"  # older name without a pid, a week old
    for p in (dead, alive, other, old):
        p.write_bytes(b"half an HDF5 file")
    os.utime(old, (time.time() - 7 * 86400,) * 2)
    export_hdf5(session, out)
    assert not dead.exists() and not old.exists()
    assert alive.exists() and other.exists()
    assert remove_stale_temps(out) == []


def test_the_writer_process_goes_away_after_a_cancel(session, tmp_path):
    out = export_hdf5(session, tmp_path / "labels.h5")
    earlier = out.read_bytes()
    before = set(_children())
    with pytest.raises(CancelledError):
        export_hdf5(session, out, copy_images=True, progress=lambda d, t: None,
                    cancel=iter([False] * 4 + [True] * 1000).__next__)
    assert out.read_bytes() == earlier and _leftovers(tmp_path) == []
    assert set(_children()) <= before


def _children() -> list[int]:
    """Pids of this process's children (Linux /proc), to check the writer does not linger."""
    try:
        return [int(p) for p in Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()]
    except OSError:
        return []


# --- the CLI: Ctrl+C and SIGTERM ----------------------------------------------------------------------
_SLOW_CLI = """
import sys, textwrap
from csknet_studio.core import export_process
slow = textwrap.dedent('''
    import time
    from csknet_studio.core import export_process
    real = export_process._Writer.frame
    def frame(self, i, *a):
        time.sleep(0.25)
        real(self, i, *a)
    export_process._Writer.frame = frame
    raise SystemExit(export_process.main())
''')
export_process.writer_command = lambda: [sys.executable, "-c", slow]
from csknet_studio.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def _folder_sequence(root: Path, n: int = 24) -> Path:
    rng = np.random.default_rng(1)
    for d in ("eo", "ir"):
        (root / d).mkdir(parents=True)
    for i in range(n):
        cv2.imwrite(str(root / "eo" / f"{i:03d}.png"), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
        cv2.imwrite(str(root / "ir" / f"{i:03d}.png"), rng.integers(0, 255, (48, 64), dtype=np.uint8))
    return root


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cli_export_stops_cleanly_on_a_signal(tmp_path, sig):
    seq = _folder_sequence(tmp_path / "seq")
    out = tmp_path / "labels.h5"
    out.write_bytes(b"the earlier export")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_CLI, "export", str(seq), "--out", str(out),
                             "--copy-images", "--quiet"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _leftovers(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _leftovers(tmp_path), "the export never started writing"
        time.sleep(1.0)  # a few frames in
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "cancelled" in stderr and "unchanged" in stderr and "Traceback" not in stderr
    assert out.read_bytes() == b"the earlier export" and _leftovers(tmp_path) == []
