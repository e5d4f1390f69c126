"""Each frame's state on the timeline strip and in the Frames list: new, predicted, propagated,
corrected or bad, read from the Studio's state (its sequence's bad frames, its session's origins)."""

from __future__ import annotations

from csknet_studio.core.studio import StudioState

_ORIGIN_STATES = {"corrected": "corrected", "predicted": "predicted", "propagated": "propagated"}


class FrameStates:
    """Keeps the timeline and the frame list showing what each frame is."""

    def __init__(self, state: StudioState, timeline, frame_list) -> None:
        self.state = state
        self.timeline = timeline
        self.frame_list = frame_list

    def of(self, i: int) -> str:
        if i in getattr(self.state.sequence, "bad_frames", ()):
            return "bad"
        session = self.state.session
        return _ORIGIN_STATES.get(session.origin(i).value if session is not None else "empty", "new")

    def fill(self) -> None:
        """Every frame of the sequence just opened."""
        seq = self.state.sequence
        states = [self.of(i) for i in range(len(seq))]
        self.timeline.set_count(len(seq))
        self.timeline.set_states(states)
        self.frame_list.set_frames(list(seq.names), states)

    def refresh(self, i: int) -> None:
        st = self.of(i)
        self.timeline.set_state(i, st)
        self.frame_list.set_state(i, st)
