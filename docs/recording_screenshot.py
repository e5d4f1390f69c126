"""Pictures of a ROS 2 recording in the Studio: °C under the cursor, and the registration dialog.

Writes a ROS 2 bag (MCAP) from the bundled demo, EO as rgb8 at 30 Hz and IR as mono16 (counts in
centikelvin) at 10 Hz on its own clock, opens it the way a user does (topics picked, IR scale
0.01,-273.15), hovers a warm pixel, and saves the window and the registration dialog:

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python docs/recording_screenshot.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtWidgets

from csknet_studio.core.data import open_sequence
from csknet_studio.core.demo import ensure_default_demo

T0_NS = 1_700_000_000_000_000_000
EO_HZ, IR_HZ, SECONDS = 30, 10, 4.0
IR_CLOCK_OFFSET_NS = 12_000_000  # the IR camera's clock runs 12 ms ahead


def write_demo_recording(path: Path) -> Path:
    """The demo's first frames as a ROS 2 MCAP bag with an EO and an IR image topic."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    image_t = ts.types["sensor_msgs/msg/Image"]
    header_t, time_t = ts.types["std_msgs/msg/Header"], ts.types["builtin_interfaces/msg/Time"]
    demo = open_sequence(ensure_default_demo())
    events = []
    for topic, hz, offset in (("/camera/eo/image_raw", EO_HZ, 0), ("/camera/thermal/image_raw", IR_HZ,
                                                                     IR_CLOCK_OFFSET_NS)):
        for k in range(int(SECONDS * hz)):
            events.append((T0_NS + k * 10**9 // hz, topic, offset))
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {t: writer.add_connection(t, "sensor_msgs/msg/Image", typestore=ts)
                 for t in ("/camera/eo/image_raw", "/camera/thermal/image_raw")}
        for t, topic, offset in sorted(events):
            frame = demo[int((t - T0_NS) * 10 // 10**9)]  # the demo runs at 10 frames a second
            eo = topic.endswith("eo/image_raw")
            img = frame.eo if eo else frame.ir.astype(np.uint16)
            h, w = img.shape[:2]
            stamp = t + offset
            msg = image_t(header=header_t(stamp=time_t(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id=topic),
                          height=h, width=w, encoding="rgb8" if eo else "mono16", is_bigendian=0,
                          step=w * (3 if eo else 2), data=np.frombuffer(img.tobytes(), np.uint8))
            writer.write(conns[topic], t, bytes(ts.serialize_cdr(msg, "sensor_msgs/msg/Image")))
    demo.close()
    return path


def _wait(app, until, seconds: float) -> None:
    timer = QtCore.QElapsedTimer()
    timer.start()
    while not until() and timer.elapsed() < seconds * 1000:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/images", help="folder for the PNGs")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="recording_shot_"))
    bag = write_demo_recording(tmp / "drive")

    from csknet_studio.ui.app import make_app
    from csknet_studio.ui.main_window import MainWindow
    from csknet_studio.ui.model_loading import load_model_into

    app = make_app("dark")
    settings = QtCore.QSettings(str(tmp / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, device="cpu")
    win.confirm_close = lambda: True
    win.resize(1366, 728)
    win.files.restore_state()  # the first-launch dock sizes, as the app does
    win.show()
    load_model_into(win)
    win.ir_scale = "0.01,-273.15"
    got: list[object] = []
    win.prediction_ready.connect(got.append)
    if not win.open_sequence(bag, {"eo_topic": "/camera/eo/image_raw", "ir_topic": "/camera/thermal/image_raw"}):
        print("could not open the recording", file=sys.stderr)
        return 1
    win.set_frame(12)
    _wait(app, lambda: any(getattr(p, "labels", None) is not None for p in got) and win.current_prediction, 180)
    ir = win.current_frame.ir
    y, x = np.unravel_index(int(np.argmax(ir)), ir.shape)  # the warmest pixel: someone's face or an engine
    vb = win.views.overlay_view
    win.views.overlay_widget.scene().sigMouseMoved.emit(vb.mapViewToScene(QtCore.QPointF(x + 0.5, y + 0.5)))
    _wait(app, lambda: False, 0.5)
    readout = win.status.cursor_label.text()
    win.grab().save(str(out / "recording_celsius.png"))
    print(f"{out / 'recording_celsius.png'}: {len(win.sequence)} pairs, cursor read-out: {readout}")
    win.open_registration()
    _wait(app, lambda: False, 1.0)
    dialogs = [w for w in QtWidgets.QApplication.topLevelWidgets() if isinstance(w, QtWidgets.QDialog) and w.isVisible()]
    if dialogs:
        dialogs[0].grab().save(str(out / "recording_registration.png"))
        print(f"{out / 'recording_registration.png'}: {dialogs[0].windowTitle()}")
        dialogs[0].close()
    win.close()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb" if os.environ.get("DISPLAY") else "offscreen")
    sys.exit(main())
