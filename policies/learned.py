"""Learned skills: a visuomotor policy trained by behaviour cloning on the scripted skills'
demonstrations, behind the same skill interface.

The policy sees what a camera sees, never the simulator's state: the views (rgb) with two masks
that say which pixels belong to the call's object and to its target (from the segmentation the
env renders: a skill call names its objects by these masks, as language-conditioned policies
name them by words), the tool's pose and finger opening (proprio) (optionally with how they
moved since the last step), and the skill's verb. It writes a tool motion (a target at most
``max_lead`` metres from the tool, a turn of the wrist), whether the fingers close, and whether
it is done; inverse kinematics turns the motion into the env's joint targets, as for the scripted
skills. The motion reaches the world only through ``env.step``.

Design: per view a small conv net ends in a spatial softmax, whose expected feature coordinates
are keypoints (Levine et al., "End-to-End Training of Deep Visuomotor Policies", 2016). Where
each named object is in the world is triangulated from its masks in the calibrated views and
remembered while the hand hides it (``triangulate``, ``remember``): without it the policy lost
the object under the arm and closed the fingers in mid-air.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from envs import keys
from envs.base import ArmEnv
from envs.cameras import Camera
from envs.geometry import yaw_of
from envs.plan import SkillCall
from envs.robot import MAX_GRIPPER_WIDTH
from policies.base import Observation, Skill, SkillOutcome
from policies.learned_config import POLICY_CONFIG, SkillPolicyConfig
from policies.scripted import MAX_SKILL_STEPS, YAW_RANGE, lift_verdict, tool_action

VERBS = ("pick", "place", "open", "close")
"""The skills a policy can be trained for; a verb's index is its input."""
MASKS = 2
"""Mask channels: the call's first argument (the object or fixture), its second (the target)."""
PROPRIO_FEATURES = 10
"""Tool x, y, z (scaled: TOOL_SCALE), sin(yaw), cos(yaw), finger opening / max; the tool's
motion since the last control step / max_lead (x, y, z) and the opening's change / max: one
frame does not show whether the arm is still moving or the fingers still closing."""
ACTION_DIM = 5  # (tool target - tool) / max_lead (x, y, z), turn / max_turn, close the fingers
GRIP = 4
"""The action's column that says whether the fingers close: a logit out of the network, 1 or 0
as a label. A decision, not a regressed width: a regressed width copied the fingers' own width
(an input) back, so a small dip during the descent closed them in mid-air."""
DONE_STEPS = 2
"""The last steps of a demonstration labelled done: a stop one step early leaves the lift or the
retreat a centimetre short, and two positives per demonstration need no re-weighting."""
MIN_SEEN_PIXELS = 3
"""Pixels of a mask that count as its object being seen in a view."""
LOCATE_SCALE = 0.2
"""Metres: a located object's offset from the tool is handed to the head divided by this."""
LOCATED_FEATURES = MASKS * 4
"""Per mask: where its object was last located, relative to the tool (x, y, z), and whether it
has been located yet in this skill call."""
UNOCCLUDED_SHARE = 0.7
"""A view sees the call's target (its second mask) only while it shows at least this share of
the most pixels it has shown of it in the call. The held object hides the target's top as it
comes down, and the centroid of what is left sinks: the located target fell 1.9 cm under the
held cube (``experiments.trace_skill``, seed 100008 tower, step 6), so the target stays where
it was last seen whole. The first mask's object moves with the hand once grasped, so every
sighting of it counts."""
TOOL_CENTRE = (0.45, 0.0, 0.1)
TOOL_SCALE = 0.15
"""The tool's position reaches the head as (position - TOOL_CENTRE) / TOOL_SCALE metres, of
order 1 like the other inputs: in metres a release height 2 cm off changed one input by 0.02,
and learned places pressed the held cube into the table without letting go."""
POLICY_WEIGHTS = "policy.safetensors"
POLICY_FORMAT = 2
"""What a checkpoint's network expects as input, saved in its ``policy.json``: 2 since the tool
position is scaled (TOOL_SCALE) and a target's sightings thresholded (UNOCCLUDED_SHARE); a
checkpoint of another format would be fed inputs it was not trained on, so it is refused."""


# --- inputs and labels -------------------------------------------------------------------
def call_masks(segmentation: np.ndarray, call: SkillCall, names: tuple[str, ...]) -> np.ndarray:
    """(..., V, MASKS, H, W) uint8 from segmentation (..., V, H, W): 1 where the call's first
    and second arguments are seen (segmentation code j is ``names[j - 1]``); a target that is no
    row of the objects observation (the table, a region) leaves its mask empty."""
    masks = []
    for slot in range(MASKS):
        arg = call.args[slot] if slot < len(call.args) else None
        code = names.index(arg) + 1 if arg in names else None
        masks.append(segmentation == code if code is not None else np.zeros_like(segmentation))
    return np.stack(masks, axis=-3).astype(np.uint8)


def sighting_thresholds(most_pixels: np.ndarray) -> np.ndarray:
    """(..., V, MASKS) the pixels a mask needs in a view to count as seen there, from the most
    pixels (..., V, MASKS) that view has shown of it so far in the call (UNOCCLUDED_SHARE of
    them for the target, MIN_SEEN_PIXELS for the object)."""
    thresholds = np.full(most_pixels.shape, float(MIN_SEEN_PIXELS))
    thresholds[..., 1] = np.maximum(MIN_SEEN_PIXELS, UNOCCLUDED_SHARE * most_pixels[..., 1])
    return thresholds


def triangulate(
    masks: np.ndarray, cameras: Sequence[Camera], thresholds: np.ndarray | float = MIN_SEEN_PIXELS
) -> tuple[np.ndarray, np.ndarray]:
    """Where each mask's object is in the world, from the calibrated views that see it: masks
    (..., V, MASKS, H, W) -> positions (..., MASKS, 3) and located (..., MASKS) bool.

    Each view that sees a mask (``thresholds`` pixels or more, (..., V, MASKS) or one number;
    ``sighting_thresholds``) casts a ray from its camera through the mask's centroid; the object
    is the point nearest all those rays (least squares), located where two or more views see it.
    The centroid is that of the visible surface, so the point is off the object's centre by up
    to its half size; the head learns that offset."""
    h, w = masks.shape[-2:]
    area = masks.sum(axis=(-2, -1), dtype=np.float64)  # (..., V, MASKS)
    rows = np.arange(h) + 0.5
    cols = np.arange(w) + 0.5
    u = (masks.sum(axis=-2, dtype=np.float64) * cols).sum(-1) / np.maximum(area, 1)
    v = (masks.sum(axis=-1, dtype=np.float64) * rows).sum(-1) / np.maximum(area, 1)
    k = np.stack([c.intrinsics for c in cameras]).astype(np.float64)  # (V, 3, 3)
    pose = np.stack([c.extrinsics for c in cameras]).astype(np.float64)  # (V, 4, 4)
    camera_rays = np.stack(  # (..., V, MASKS, 3) in each camera's frame (x right, y down, z on)
        [
            (u - k[:, None, 0, 2]) / k[:, None, 0, 0],
            (v - k[:, None, 1, 2]) / k[:, None, 1, 1],
            np.ones_like(u),
        ],
        axis=-1,
    )
    rays = np.einsum("vij,...vmj->...vmi", pose[:, :3, :3], camera_rays)
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    seen = area >= thresholds  # (..., V, MASKS)
    # Least squares: sum over seeing views of (I - d d^T) p = sum of (I - d d^T) o.
    projection = np.eye(3) - rays[..., :, None] * rays[..., None, :]  # (..., V, MASKS, 3, 3)
    projection *= seen[..., None, None]
    origins = pose[:, :3, 3]  # (V, 3): the cameras' eyes
    lhs = projection.sum(axis=-4)  # (..., MASKS, 3, 3)
    rhs = np.einsum("...vmij,vj->...mi", projection, origins)  # (..., MASKS, 3)
    located = seen.sum(axis=-2) >= 2  # (..., MASKS)
    lhs = np.where(located[..., None, None], lhs, np.eye(3))  # unlocated: solve I p = 0
    rhs = np.where(located[..., None], rhs, 0.0)
    positions = np.linalg.solve(lhs, rhs[..., None])[..., 0]
    return positions.astype(np.float32), located


def remember(memory: np.ndarray, positions: np.ndarray, located: np.ndarray) -> np.ndarray:
    """(MASKS, 4) where each object was last located (x, y, z, 1; zeros before it ever was),
    after one step that located ``positions`` (MASKS, 3) where ``located`` (MASKS,): a view of
    the object hidden under the hand does not make the policy forget where it is."""
    fresh = np.concatenate([positions, np.ones((len(positions), 1), np.float32)], axis=1)
    return np.where(located[:, None], fresh, memory).astype(np.float32)


def demonstration_memory(masks: np.ndarray, cameras: Sequence[Camera]) -> np.ndarray:
    """(S, MASKS, 4) what the skill knew at each step of one demonstration, from its masks
    (S, V, MASKS, H, W): triangulated as the running skill does (``LearnedSkill.act``), with the
    thresholds of the most pixels seen up to each step, then remembered."""
    most_pixels = np.maximum.accumulate(masks.sum(axis=(-2, -1)), axis=0)  # (S, V, MASKS)
    return remembered_positions(*triangulate(masks, cameras, sighting_thresholds(most_pixels)))


def remembered_positions(positions: np.ndarray, located: np.ndarray) -> np.ndarray:
    """(S, MASKS, 4): ``remember`` along one demonstration's steps, positions (S, MASKS, 3) and
    located (S, MASKS): what the skill knew at each step."""
    memory = np.zeros((positions.shape[1], 4), np.float32)
    steps = []
    for step_positions, step_located in zip(positions, located, strict=True):
        memory = remember(memory, step_positions, step_located)
        steps.append(memory)
    return np.stack(steps)


def located_features(memory: np.ndarray, proprio: np.ndarray) -> np.ndarray:
    """(..., LOCATED_FEATURES) float32 from the remembered positions (..., MASKS, 4) and the
    proprio (..., PROPRIO_DIM): each object's offset from the tool / LOCATE_SCALE (zero if not
    located yet), and whether it is located."""
    tool = proprio[..., None, keys.PROPRIO_TOOL_POSITION]  # (..., 1, 3)
    known = memory[..., 3:]
    offset = (memory[..., :3] - tool) / LOCATE_SCALE * known
    features = np.concatenate([offset, known], axis=-1)  # (..., MASKS, 4)
    return features.reshape(*features.shape[:-2], LOCATED_FEATURES).astype(np.float32)


def proprio_features(
    proprio: np.ndarray, previous: np.ndarray, config: SkillPolicyConfig
) -> np.ndarray:
    """(..., PROPRIO_FEATURES) float32 from the env's proprio (..., PROPRIO_DIM) now and at the
    previous control step of the skill (the same, at its first step)."""
    yaw = tool_yaw(proprio)
    width = proprio[..., keys.PROPRIO_GRIPPER_WIDTH]
    tool = proprio[..., keys.PROPRIO_TOOL_POSITION]
    if not config.motion_inputs:
        previous = proprio  # no motion seen
    return np.concatenate(
        [
            (tool - np.array(TOOL_CENTRE, np.float32)) / TOOL_SCALE,
            np.sin(yaw)[..., None],
            np.cos(yaw)[..., None],
            width / MAX_GRIPPER_WIDTH,
            (tool - previous[..., keys.PROPRIO_TOOL_POSITION]) / config.max_lead,
            (width - previous[..., keys.PROPRIO_GRIPPER_WIDTH]) / MAX_GRIPPER_WIDTH,
        ],
        axis=-1,
    ).astype(np.float32)


def previous_proprio(proprio: np.ndarray) -> np.ndarray:
    """(S, PROPRIO_DIM): each step's previous proprio within one demonstration (S, PROPRIO_DIM);
    the first step's is its own, as a skill starting to act has no earlier step."""
    return np.concatenate([proprio[:1], proprio[:-1]])


def done_labels(steps: int) -> np.ndarray:
    """(steps,) float32: 1 on the last DONE_STEPS steps of a demonstration."""
    done = np.zeros(steps, np.float32)
    done[-DONE_STEPS:] = 1.0
    return done


def tool_yaw(proprio: np.ndarray) -> np.ndarray:
    """(...) the tool's yaw, as the scripted skills measure it, from proprio (..., PROPRIO_DIM)."""
    quaternions = proprio[..., keys.PROPRIO_TOOL_QUATERNION].reshape(-1, 4)
    return np.array([yaw_of(q) for q in quaternions]).reshape(proprio.shape[:-1])


def action_labels(
    commands: np.ndarray, proprio: np.ndarray, config: SkillPolicyConfig
) -> np.ndarray:
    """(S, ACTION_DIM) what the policy should output at each step of a demonstration, from the
    tool targets the script commanded (S, 5) and the proprio it acted on (S, PROPRIO_DIM): the
    tool target the script commanded, or with ``config.lookahead`` the tool's position that many
    steps on (the last step's near the end); the wrist yaw the script commanded, and whether it
    commanded the fingers closed (under half open: they close on the object or keep squeezing
    it)."""
    tool = proprio[:, keys.PROPRIO_TOOL_POSITION]
    if config.lookahead:
        step = tool[np.minimum(np.arange(len(tool)) + config.lookahead, len(tool) - 1)] - tool
    else:
        step = commands[:, :3] - tool
    turn = _wrap(commands[:, 3] - tool_yaw(proprio))
    return np.concatenate(
        [
            np.clip(step / config.max_lead, -1.0, 1.0),
            np.clip(turn / config.max_turn, -1.0, 1.0)[:, None],
            (commands[:, 4:5] < MAX_GRIPPER_WIDTH / 2),
        ],
        axis=1,
    ).astype(np.float32)


def decode_action(
    action: np.ndarray, proprio: np.ndarray, config: SkillPolicyConfig
) -> tuple[np.ndarray, float, float]:
    """The tool target (3,), wrist yaw and finger opening (metres) an action (ACTION_DIM,)
    commands from the proprio it was computed on: the inverse of ``action_labels``. The yaw
    is taken, among its equivalents a half turn apart (a parallel gripper is the same), as the
    one within the wrist's range nearest the wrist, as the scripted skills do. The fingers
    close where the grip column is above 0 (a logit, or a label of 1) and open wide elsewhere
    (the scripts' handle opening, 5 cm, is not learned: the tabletop demonstrations have none)."""
    position = proprio[keys.PROPRIO_TOOL_POSITION] + np.clip(action[:3], -1, 1) * config.max_lead
    current = float(tool_yaw(proprio))
    yaw = current + float(np.clip(action[3], -1, 1)) * config.max_turn
    options = [
        y for y in (yaw + k * np.pi for k in range(-3, 4)) if YAW_RANGE[0] <= y <= YAW_RANGE[1]
    ]
    yaw = min(options, key=lambda y: abs(y - current)) if options else yaw
    width = 0.0 if action[GRIP] > 0 else MAX_GRIPPER_WIDTH
    return position, yaw, width


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


# --- the network -----------------------------------------------------------------------------
class SpatialSoftmax(nn.Module):
    """(B, C, H, W) feature maps -> (B, 2C) expected x, y image coordinates of each map."""

    def forward(self, features: Tensor) -> Tensor:
        b, c, h, w = features.shape
        attention = features.flatten(2).softmax(dim=-1).view(b, c, h, w)
        ys = torch.linspace(-1.0, 1.0, h, device=features.device)
        xs = torch.linspace(-1.0, 1.0, w, device=features.device)
        x = (attention.sum(dim=2) * xs).sum(dim=-1)  # (B, C)
        y = (attention.sum(dim=3) * ys).sum(dim=-1)  # (B, C)
        return torch.cat([x, y], dim=1)


def mask_centroids(masks: Tensor) -> Tensor:
    """(B, V, MASKS, H, W) masks in [0, 1] -> (B, V * MASKS * 3): each mask's centre (x, y in
    [-1, 1] image coordinates) and the share of the image it covers (0 where it is unseen).

    Where the named object is seen, handed to the policy directly: trained from the masks as
    image channels alone, the keypoints did not learn it (zeroing the images changed the
    held-out motion's R^2 by 0.01-0.05: the policy replayed an average path from proprio)."""
    b, v, m, h, w = masks.shape
    area = masks.sum(dim=(3, 4))  # (B, V, MASKS)
    ys = torch.linspace(-1.0, 1.0, h, device=masks.device)
    xs = torch.linspace(-1.0, 1.0, w, device=masks.device)
    weight = area.clamp(min=1.0)
    x = (masks.sum(dim=3) * xs).sum(dim=-1) / weight  # (B, V, MASKS)
    y = (masks.sum(dim=4) * ys).sum(dim=-1) / weight  # (B, V, MASKS)
    return torch.stack([x, y, area / (h * w)], dim=-1).view(b, v * m * 3)


class SkillPolicy(nn.Module):
    """Views + call masks, proprio and verb -> tool action (ACTION_DIM) and a done logit."""

    def __init__(self, config: SkillPolicyConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.vision = nn.Sequential(  # one conv net shared by the views
            nn.Conv2d(3 + MASKS, c, 5, stride=2, padding=2),  # (c, H/2, W/2)
            nn.GroupNorm(4, c),
            nn.ReLU(),
            nn.Conv2d(c, c, 3, stride=2, padding=1),  # (c, H/4, W/4): keypoints on this grid
            nn.GroupNorm(4, c),
            nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1),
            SpatialSoftmax(),
        )
        self.verb = nn.Embedding(len(VERBS), 32)
        views = len(config.views)
        inputs = views * 2 * c + views * MASKS * 3 + LOCATED_FEATURES + PROPRIO_FEATURES + 32
        self.head = nn.Sequential(
            nn.Linear(inputs, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, ACTION_DIM + 1),
        )

    def forward(self, images: Tensor, located: Tensor, proprio: Tensor, verb: Tensor) -> Tensor:
        """images (B, V, 3 + MASKS, H, W) float in [0, 1], located (B, LOCATED_FEATURES),
        proprio (B, PROPRIO_FEATURES), verb (B,) long -> (B, ACTION_DIM + 1): the action, then
        the done logit."""
        b, v = images.shape[:2]
        keypoints = self.vision(images.flatten(0, 1)).view(b, v * 2 * self.config.channels)
        centroids = mask_centroids(images[:, :, 3:])  # (B, V * MASKS * 3)
        features = [keypoints, centroids, located, proprio, self.verb(verb)]
        return self.head(torch.cat(features, dim=1))

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        saved = {"format": POLICY_FORMAT, **asdict(self.config)}
        (directory / POLICY_CONFIG).write_text(json.dumps(saved, indent=2))
        save_file(
            {k: v.contiguous() for k, v in self.state_dict().items()}, directory / POLICY_WEIGHTS
        )

    @classmethod
    def load(cls, directory: str | Path) -> SkillPolicy:
        directory = Path(directory)
        if not (directory / POLICY_CONFIG).exists():
            raise ValueError(
                f"skills_checkpoint={directory}: no {POLICY_CONFIG} there; train one with "
                "python -m embodied.train_skills"
            )
        saved = json.loads((directory / POLICY_CONFIG).read_text())
        found = saved.pop("format", 1)
        if found != POLICY_FORMAT:
            raise ValueError(
                f"skills_checkpoint={directory}: a policy of input format {found}, and this code "
                f"feeds format {POLICY_FORMAT} (policies.learned.POLICY_FORMAT); retrain it with "
                "python -m embodied.train_skills"
            )
        config = SkillPolicyConfig(**saved)
        policy = cls(config)
        policy.load_state_dict(load_file(directory / POLICY_WEIGHTS))
        return policy.eval()


def policy_batch(
    rgb: np.ndarray,
    masks: np.ndarray,
    memory: np.ndarray,
    proprio: np.ndarray,
    previous: np.ndarray,
    verbs: np.ndarray,
    config: SkillPolicyConfig,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The network's inputs from numpy: rgb (B, V, H, W, 3) uint8, masks (B, V, MASKS, H, W)
    uint8, the remembered positions (B, MASKS, 4) (``remember``), proprio and its previous
    step's (B, PROPRIO_DIM), verbs (B,) int."""
    images = np.concatenate([rgb.transpose(0, 1, 4, 2, 3), masks * 255], axis=2)
    return (
        torch.from_numpy(images).float().div_(255.0),  # (B, V, 3 + MASKS, H, W)
        torch.from_numpy(located_features(memory, proprio)),
        torch.from_numpy(proprio_features(proprio, previous, config)),
        torch.from_numpy(verbs.astype(np.int64)),
    )


# --- the skill -------------------------------------------------------------------------------
class LearnedSkill(Skill):
    """One skill call executed by the policy, step by step through ``env.step``; judged at the
    end from the simulator state by the same verdicts the scripted skills use, within the same
    step budget (MAX_SKILL_STEPS)."""

    MIN_STEPS = 3  # steps before a done is believed

    def __init__(
        self, env: ArmEnv, call: SkillCall, policy: SkillPolicy, max_steps: int = MAX_SKILL_STEPS
    ) -> None:
        super().__init__(call)
        self.env, self.policy, self.max_steps = env, policy, max_steps
        self.cameras = [Camera(v, policy.config.image_size) for v in policy.config.views]
        self.steps = 0
        self._previous: np.ndarray | None = None  # proprio at the last step
        self.remembered = np.zeros((MASKS, 4), np.float32)
        """Where the call's object and target were last located (``remember``)."""
        self.most_pixels = np.zeros((len(self.cameras), MASKS))
        """The most pixels each view has shown of each mask in this call."""
        # Where the object to pick rests now: a pick must lift it (as the scripted one must).
        picked = call.args[0] if call.verb == "pick" and call.args else None
        self._start_height = float(env.object_pose(picked)[0][2]) if picked in env.bodies else None

    def act(self, observation: Observation) -> np.ndarray | None:
        if self.outcome is not None:
            return None
        if self.call.verb not in VERBS:
            self.outcome = SkillOutcome(False, f"no learned skill for {self.call.verb!r}")
            return None
        if self.steps >= self.max_steps:
            self.outcome = SkillOutcome(False, f"timeout after {self.steps} steps", self.steps)
            return None
        rgb, _, segmentation = self.env.render_views(self.cameras)
        masks = call_masks(segmentation, self.call, self.env.observed_names)
        self.most_pixels = np.maximum(self.most_pixels, masks.sum(axis=(-2, -1)))
        thresholds = sighting_thresholds(self.most_pixels)
        self.remembered = remember(self.remembered, *triangulate(masks, self.cameras, thresholds))
        proprio = observation[keys.PROPRIO]
        previous = proprio if self._previous is None else self._previous
        self._previous = proprio
        inputs = policy_batch(
            rgb[None],
            masks[None],
            self.remembered[None],
            proprio[None],
            previous[None],
            np.array([VERBS.index(self.call.verb)]),
            self.policy.config,
        )
        with torch.no_grad():
            output = self.policy(*inputs)[0].numpy()  # (ACTION_DIM + 1,)
        done = 1.0 / (1.0 + np.exp(-output[ACTION_DIM]))
        if done > self.policy.config.done_threshold and self.steps >= self.MIN_STEPS:
            problem = self._verdict()
            self.outcome = SkillOutcome(not problem, problem, self.steps)
            return None
        position, yaw, width = decode_action(output[:ACTION_DIM], proprio, self.policy.config)
        self.steps += 1
        return tool_action(self.env, position, yaw, width)

    def _verdict(self) -> str:
        """ "" if the call did what it names, judged from the simulator state; else what not."""
        verb, args = self.call.verb, self.call.args
        if verb == "pick":
            if self._start_height is None:
                return f"no object {args[0]!r} in the scene"
            return lift_verdict(self.env, args[0], self._start_height)
        if verb == "place":
            return self.env.place_verdict(args[0], args[1])
        return self.env.fixture_verdict(args[0], verb == "open")


class LearnedSkills:
    """A skill factory (``run_episode(skills=...)``): every call by the one policy."""

    def __init__(self, policy: SkillPolicy) -> None:
        self.policy = policy

    @classmethod
    def load(cls, directory: str | Path) -> LearnedSkills:
        return cls(SkillPolicy.load(directory))

    def __call__(self, env: ArmEnv, call: SkillCall) -> Skill:
        return LearnedSkill(env, call, self.policy)
