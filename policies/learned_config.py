"""The learned skill policy's config, without torch: entry-point configs import it."""

from __future__ import annotations

from dataclasses import dataclass, field

from envs.cameras import CAMERA_PLACEMENTS

POLICY_CONFIG = "policy.json"
"""The config file of a policy checkpoint (beside its safetensors weights)."""


@dataclass
class SkillPolicyConfig:
    """The policy's inputs and size (stored with every checkpoint as ``policy.json``)."""

    views: list[str] = field(default_factory=lambda: ["front", "overhead"])
    """Camera views the policy renders for itself (envs.cameras.CAMERA_PLACEMENTS): the
    demonstrations' views."""
    image_size: int = 64
    channels: int = 32
    """Feature maps of the conv net; each becomes one keypoint per view."""
    hidden: int = 256
    max_lead: float = 0.06
    """Metres the commanded tool target may lead the tool by, at a full output (the scripts'
    targets lead the tool by 2 cm at the median, 4.6 cm at the 99th percentile)."""
    lookahead: int = 0
    """The motion label of a demonstration step: 0, the tool target the script commanded there;
    k > 0, where the demonstrated tool is k control steps later. The command is what the arm's
    controller was given, so copying it reproduces the demonstrations' speed; the path k steps on
    is smoother to predict from one frame (R^2 0.89-0.93 against 0.78-0.85, measured from the
    simulator state on the tabletop demonstrations), but commanding it drives the arm faster than
    the script did (two steps on: 2.6 cm ahead at the median against the script's 2.0)."""
    max_turn: float = 1.6
    """Radians the commanded wrist yaw may lead the wrist by, at a full output (the scripted
    skills turn the target at once, by up to a quarter turn)."""
    motion_inputs: bool = False
    """Whether the policy sees how the tool and fingers moved since the last step (zeros if not).
    It makes the script's command more predictable from one frame, but the policy copies its own
    speed: with it, learned picks stalled a few centimetres above the object ("stopped, so stay
    stopped"). Under the oracle's plans, on the benchmark's 60 episodes, calls from a clean
    start (``experiments.benchmark_skills``) succeeded without it 0.96 (picks) and 0.49
    (places) of the time, with it 0.68 and 0.18 (4000 training steps each)."""
    done_threshold: float = 0.3
    """Stop once the done probability passes this. The last DONE_STEPS steps of a demonstration
    are labelled done, and one frame cannot tell them apart from the steps before, so the
    trained probability plateaus near 0.5 at the end: at 0.5, half the finished picks hovered
    until their timeout (``experiments.diagnose_skills``: at 0.3, 0.95 of last steps pass and
    0.6% of the steps more than 5 from the end do)."""
    env: str = ""
    """The env id of the demonstrations it learned from (train_skills sets it from the data)."""

    def __post_init__(self) -> None:
        for name in ("image_size", "channels", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"policy.{name}={getattr(self, name)}: must be >= 1")
        if self.channels % 4:
            raise ValueError(f"policy.channels={self.channels}: must be a multiple of 4")
        for name in ("max_lead", "max_turn"):
            if getattr(self, name) <= 0:
                raise ValueError(f"policy.{name}={getattr(self, name)}: must be > 0")
        if self.image_size % 8:
            raise ValueError(f"policy.image_size={self.image_size}: must be a multiple of 8")
        if not self.views:
            raise ValueError("policy.views=[]: name at least one camera view")
        unknown = [v for v in self.views if v not in CAMERA_PLACEMENTS]
        if unknown:
            raise ValueError(f"policy.views={self.views}: allowed {sorted(CAMERA_PLACEMENTS)}")
        if self.lookahead < 0:
            raise ValueError(f"policy.lookahead={self.lookahead}: must be >= 0")
        if not 0.0 < self.done_threshold < 1.0:
            raise ValueError(f"policy.done_threshold={self.done_threshold}: must be in (0, 1)")
