"""The status bar's read-out of the pixel under the cursor: position, class, EO / IR values, °C.

It follows the mouse and the overlay alike, so an edit under a still cursor updates it at once."""

from __future__ import annotations

from csknet_studio.core.studio import StudioState


class CursorReadout:
    def __init__(self, state: StudioState, views, status) -> None:
        self.state = state
        self.views = views
        self.status = status
        self.pixel: tuple[int, int] = (-1, -1)  # under the cursor; (-1, -1) when outside the frame

    def hover(self, x: int, y: int) -> None:
        self.pixel = (x, y)
        self.update()

    def update(self) -> None:
        """The read-out for the frame and labels shown now."""
        x, y = self.pixel
        f = self.state.frame
        if x < 0 or f is None or not (0 <= y < f.shape[0] and 0 <= x < f.shape[1]):
            self.status.clear_cursor()
            return
        self.status.set_cursor(x, y, self.state.class_at(x, y), None if f.eo is None else f.eo[y, x],
                               None if f.ir is None else f.ir[y, x], self.views.celsius_at(x, y))
