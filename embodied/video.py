"""Episode videos: the rendered views above a caption band (instruction, current step, outcome)."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from envs.base import ArmEnv

LINE_HEIGHT = 17  # pixels per caption line
MARGIN = 6
BAND_COLOUR = (20, 20, 20)
TEXT_COLOUR = (235, 235, 235)
VERDICT_COLOURS = {"SUCCESS": (90, 220, 90), "FAILURE": (240, 80, 80)}
HOLD_FINAL_FRAMES = 10  # the last frame stays a second at 10 fps


class VideoRecorder:
    """An EpisodeObserver that keeps every ``every``-th control step as a captioned frame."""

    def __init__(self, path: Path, every: int = 2, fps: int = 10) -> None:
        if every < 1:
            raise ValueError(f"every={every}: must be >= 1")
        self.path = path
        self.every = every
        self.fps = fps
        self.frames: list[np.ndarray] = []
        self._instruction = ""
        self._step = ""
        self._status = ""
        self._count = 0
        self._font = ImageFont.load_default()

    def on_episode_start(self, env: ArmEnv, instruction: str) -> None:
        self.frames, self._count = [], 0
        self._instruction, self._step, self._status = instruction, "", ""
        self._capture(env)

    def on_plan_step(self, step_index: int, text: str) -> None:
        self._step = f"step {step_index}: {text}" if step_index else text
        self._status = "running"

    def on_control_step(self, env: ArmEnv) -> None:
        self._count += 1
        if self._count % self.every == 0:
            self._capture(env)

    def on_step_outcome(self, text: str) -> None:
        self._status = text

    def on_episode_end(self, env: ArmEnv, verdict: str) -> None:
        self._status = verdict
        self._capture(env)
        self.frames += [self.frames[-1]] * HOLD_FINAL_FRAMES
        self.path.parent.mkdir(parents=True, exist_ok=True)
        imageio.mimwrite(self.path, list(self.frames), fps=self.fps, macro_block_size=8)

    def _capture(self, env: ArmEnv) -> None:
        view = env.render()
        assert view is not None, "the env needs render_mode='rgb_array' to record video"
        self.frames.append(self._caption(view))

    def _caption(self, view: np.ndarray) -> np.ndarray:
        """(H, W, 3) view -> (H + band, W, 3) frame: the instruction (wrapped to the frame's
        width), the current step and the status under it. The band's height depends only on the
        instruction, so every frame of an episode has the same size."""
        width = view.shape[1]
        instruction = self._wrap(self._instruction, width)
        lines = [*instruction, self._step, self._status]
        height = -(-(LINE_HEIGHT * len(lines) + 4) // 8) * 8  # a multiple of 8, as codecs want
        band = Image.new("RGB", (width, height), BAND_COLOUR)
        draw = ImageDraw.Draw(band)
        for row, text in enumerate(lines):
            colour = VERDICT_COLOURS.get(text, TEXT_COLOUR) if text == self._status else TEXT_COLOUR
            draw.text((MARGIN, 4 + row * LINE_HEIGHT), text, fill=colour, font=self._font)
        return np.concatenate([view, np.asarray(band)], axis=0)

    def _wrap(self, text: str, width: int) -> list[str]:
        """Greedy word wrap to ``width`` pixels in the caption font."""
        lines: list[str] = []
        for word in text.split():
            candidate = f"{lines[-1]} {word}" if lines else word
            if lines and self._font.getlength(candidate) <= width - 2 * MARGIN:
                lines[-1] = candidate
            else:
                lines.append(word)
        return lines or [""]
