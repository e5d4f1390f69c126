"""Screenshots of every panel and dialog of the Studio, in the dark and the light theme.

    .venv/bin/python docs/make_screenshots.py [--out docs/images/panels] [--size 1366x768]
        [--themes dark light] [--readme docs/screenshot.png]

Starts the real MainWindow on the bundled demo with the bundled model (as `csknet-studio` does),
waits for the first prediction, then saves `<panel>-<theme>.png` for the window as it opens, each
dock panel shown and raised (each tab of Model internals; the first frame accepted, so Frames and
Fine-tuning list a corrected frame), and each dialog (Export, Register EO/IR, Propagate, the F1
shortcuts sheet, About). The PNGs keep a 256-colour palette (a quarter the size); `--readme` writes
the dark main window in full colour. The window is sized to a screen of `--size` less a taskbar;
settings and the demo's project live in a temporary folder, so the user's own are untouched. Run
it under a virtual screen of that size (`make screenshots`): `QWidget.grab()` renders widgets
even off screen, but dialogs size themselves against the screen they would open on.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TASKBAR_PX = 40  # what a desktop's panel takes off the screen's height
PREDICTION_TIMEOUT_S = 180
PALETTE_COLOURS = 256
DOCKS = ("Classes", "Frames", "Model internals", "Compare modes", "Fine-tuning")


def _slug(name: str) -> str:
    return name.lower().replace(" ", "-").replace("/", "-")


def wait_until(done: Callable[[], bool], timeout_s: float) -> bool:
    """Run the event loop until `done()` holds (True) or `timeout_s` passes (False)."""
    from PySide6 import QtWidgets

    end = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > end:
            return False
        QtWidgets.QApplication.processEvents()
        time.sleep(0.02)
    return True


def settle(seconds: float = 0.4) -> None:
    """Let layouts, deferred fits and repaints run."""
    wait_until(lambda: False, seconds)


def save(widget, path: Path, colours: int = PALETTE_COLOURS) -> Path:
    """The widget as drawn now, as an optimised PNG: `colours` > 0 keeps a palette of that many
    (a quarter the size of full colour for a window with pictures; octree keeps the small class
    swatches within a few levels, where median cut moved them by up to 69), 0 full colour."""
    from PIL import Image

    img = widget.grab().toImage()
    tmp = path.with_suffix(".tmp.png")
    if not img.save(str(tmp), "PNG"):
        raise OSError(f"could not write {tmp}")
    with Image.open(tmp) as im:
        rgb = im.convert("RGB")
        out = rgb.quantize(colors=colours, method=Image.Quantize.FASTOCTREE) if colours else rgb
        out.save(path, "PNG", optimize=True)
    tmp.unlink()
    print(f"  {path} ({widget.width()}x{widget.height()}, {path.stat().st_size // 1024} KiB)")
    return path


def open_window(settings, size: tuple[int, int]):
    """A MainWindow on the bundled demo with the bundled model, its first frame segmented."""
    from csknet_studio.core.demo import ensure_default_demo
    from csknet_studio.ui.main_window import MainWindow
    from csknet_studio.ui.model_loading import load_model_into

    win = MainWindow(settings=settings)
    win.confirm_close = lambda: True
    win.error_shown.connect(lambda msg: print(f"error shown: {msg}", file=sys.stderr))
    ready: list[object] = []
    win.prediction_ready.connect(ready.append)
    win.files.restore_state()
    win.resize(size[0], size[1] - TASKBAR_PX)
    win.move(0, 0)
    win.show()
    load_model_into(win)
    if not win.open_sequence(ensure_default_demo()):
        raise SystemExit("could not open the bundled demo")
    if not wait_until(lambda: bool(ready), PREDICTION_TIMEOUT_S):
        raise SystemExit(f"no prediction within {PREDICTION_TIMEOUT_S} s")
    settle(0.8)
    wait_until(lambda: not win.worker.busy, 60)  # the look-ahead too: no "computing…" in the picture
    settle(0.3)
    if (win.width(), win.height()) != (size[0], size[1] - TASKBAR_PX):
        print(f"  note: the window is {win.width()}x{win.height()}, asked {size[0]}x{size[1] - TASKBAR_PX} "
              f"(minimum size hint {win.minimumSizeHint().width()}x{win.minimumSizeHint().height()})")
    return win


def shoot_docks(win, out: Path, theme: str) -> list[Path]:
    """Each dock shown and raised in turn, the whole window saved; the layout put back after."""
    paths = []
    for name in DOCKS:
        dock = win.docks.get(name)
        if dock is None:
            print(f"  no dock named {name!r}")
            continue
        was_visible = dock.isVisible()
        dock.show()
        dock.raise_()
        if name == "Compare modes":
            compare = win.panels.compare
            compare.modes_changed.emit(compare.left_mode.value, compare.right_mode.value)  # fetch both
            wait_until(lambda: win.panels.compare.result is not None, 60)
        settle(0.8)
        paths.append(save(win, out / f"dock-{_slug(name)}-{theme}.png"))
        if name == "Model internals":
            tabs = win.panels.internals.tabs
            for i in range(1, tabs.count()):
                tabs.setCurrentIndex(i)
                settle(0.6)
                paths.append(save(win, out / f"dock-{_slug(name)}-{_slug(tabs.tabText(i))}-{theme}.png"))
            tabs.setCurrentIndex(0)
        if not was_visible:
            dock.hide()
    win.docks["Model internals"].raise_()
    return paths


def shoot_dialogs(win, out: Path, theme: str) -> list[Path]:
    from PySide6 import QtWidgets

    from csknet_studio.ui.menus import show_about
    from csknet_studio.ui.shortcuts import ShortcutsDialog

    paths = []

    def shot(name: str, dlg) -> None:
        if dlg is None:
            print(f"  {name}: no dialog opened")
            return
        settle(0.8)
        screen = dlg.screen().availableGeometry()
        if dlg.width() > screen.width() or dlg.height() > screen.height():
            print(f"  note: {name} is {dlg.width()}x{dlg.height()}, larger than the screen "
                  f"{screen.width()}x{screen.height()}")
        paths.append(save(dlg, out / f"dialog-{name}-{theme}.png"))
        dlg.close()
        settle(0.2)

    win.panels.open_export()
    shot("export", win.panels.export_dialog)
    win.open_registration()
    reg = win.registration_state["dialog"]
    shot("registration", reg)
    win.panels.open_propagate()
    shot("propagate", win.panels.propagate_dialog)
    win.panels.shortcuts_action.trigger()
    sheets = [w for w in QtWidgets.QApplication.topLevelWidgets() if isinstance(w, ShortcutsDialog)]
    shot("shortcuts", sheets[0] if sheets else None)
    shot("about", show_about(win))
    return paths


def run(out: Path, size: tuple[int, int], themes: list[str], readme: Path | None) -> int:
    from PySide6 import QtCore

    from csknet_studio.ui.app import make_app
    from csknet_studio.ui.theme import apply_theme

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="csknet-shots-") as tmp:
        os.environ["XDG_DATA_HOME"] = str(Path(tmp) / "data")  # the demo's project and exports
        app = make_app(themes[0])
        screen = app.primaryScreen().availableGeometry()
        print(f"screen {screen.width()}x{screen.height()}, window {size[0]}x{size[1] - TASKBAR_PX}")
        for theme in themes:
            print(f"{theme} theme")
            apply_theme(app, theme)
            settings = QtCore.QSettings(str(Path(tmp) / f"settings-{theme}.ini"), QtCore.QSettings.Format.IniFormat)
            win = open_window(settings, size)
            save(win, out / f"main-{theme}.png")
            if readme is not None and theme == "dark":
                save(win, readme, colours=0)  # the README's picture, in full colour
            win.tools.accept_prediction()  # one corrected frame: Frames and Fine-tuning list it
            settle(0.3)
            shoot_docks(win, out, theme)
            shoot_dialogs(win, out, theme)
            win.close()
            win.deleteLater()
            settle(0.5)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "panels")
    p.add_argument("--size", default="1366x768", help="screen size WxH (the window is that less a taskbar)")
    p.add_argument("--themes", nargs="+", default=["dark", "light"], choices=["dark", "light"])
    p.add_argument("--readme", type=Path, default=None,
                   help="also write the dark main window here (the README's picture)")
    args = p.parse_args(argv)
    w, _, h = args.size.lower().partition("x")
    return run(args.out, (int(w), int(h)), args.themes, args.readme)


if __name__ == "__main__":
    sys.exit(main())
