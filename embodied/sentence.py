"""Multimodal sentences: prompts with placeholders whose embeddings are sensor tokens.

A prompt is plain text in which placeholder tokens (``embodied.lm.PLACEHOLDERS``) stand for
sensor tokens, so it prints and logs like text::

    obj_1 is <obj_1>. obj_2 is <obj_2>. obj_3 is <obj_3>. Q: How to grasp obj_3?
    Done: pick(obj_1); place(obj_1, table). Next:           -> target " pick(obj_3)</s>"

    Scene: <img><img>...<img>. Q: Is the red object below the blue object? A:  -> " yes</s>"

``<obj_j>`` is filled with the token of obj_j (PaLM-E's entity referral: the text names the
object, the token shows it); the k-th ``<img>`` (``<audio>``, ``<region>``) of a prompt with the
k-th token of that sensor. ``inject`` does the filling on the LM's input embeddings; the loss
covers the target only (``encode``'s labels are -100 elsewhere).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from embodied.lm import AUDIO, IMAGE, OBJECT_PLACEHOLDERS, REGION

IGNORE = -100
"""Label of positions that carry no loss (prompt, padding)."""
OBJECTS = "objects"
"""Placement of per-object tokens: one ``<obj_j>`` per entity, in the entity prefix."""
PLACEMENTS: dict[str, str] = {
    "state": OBJECTS,
    "object_centric": OBJECTS,
    "vit": IMAGE,
    "osrt": IMAGE,
    "audio": AUDIO,
    "region": REGION,
}
"""Where each encoder's tokens go in a sentence."""
FAILED = " [failed]"
"""Marks a step of the history whose skill failed."""


def failure_mark(reason: str = "") -> str:
    """The mark of a failed step: `` [failed]``, or with the skill's reason
    `` [failed: obj_2 is blocked by obj_4]`` (Inner Monologue's success feedback, with why)."""
    return f" [failed: {reason}]" if reason else FAILED


def prompt_text(
    instruction: str,
    kind: str,
    entities: Sequence[str],
    history: Sequence[str] = (),
    history_success: Sequence[bool] = (),
    placement: str = OBJECTS,
    n_tokens: int = 0,
    mention_tokens: bool = False,
    entity_prefix: bool = True,
    spoken_tokens: int = 0,
    history_reasons: Sequence[str] = (),
    rows: Sequence[int] | None = None,
) -> str:
    """The prompt for one decision: sensor placeholders, the instruction, the steps so far (with
    their failures), and the cue for the next step (``Next:``) or the answer (``A:``).

    ``history_reasons[i]`` (optional): why the skill of ``history[i]`` failed, shown in its
    mark ("pick(obj_2) [failed: obj_2 is blocked by obj_4]"); "" or absent: `` [failed]``.

    ``mention_tokens`` (per-object placements): each entity the instruction names is followed by
    its token as well ("How to grasp obj_3 <obj_3>?"), so the model reads the object where the
    question asks about it, not only in the prefix.

    ``entity_prefix=False`` drops PaLM-E's entity referrals ("obj_3 is <obj_3>."): the object
    tokens come as one unnamed sequence ("Scene: <obj_1><obj_2><obj_3>."), and which token is
    obj_3 must be inferred from its place in it.

    ``spoken_tokens`` > 0: the instruction is heard, not read: that many ``<audio>`` tokens (an
    audio ``PalmE.instruction_encoder``'s) take its place after the scene's placeholders
    ("obj_1 is <obj_1>. ... Q: <audio>...<audio> Next:").

    ``rows`` (per-object placements): the object rows the entities' tokens come from, 0-based
    and ascending ("obj_2 is <obj_7>." for row 6); None: rows 0..n-1, as scenes fill them.
    Training spreads scenes over rows (``TrainConfig.spread_rows``)."""
    if kind not in ("plan", "question"):
        raise ValueError(f"kind={kind!r}: allowed 'plan' or 'question'")
    placeholders = object_placeholders(len(entities), rows) if placement == OBJECTS else []
    if placement == OBJECTS:
        if entity_prefix:
            scene = " ".join(f"{n} is {p}." for n, p in zip(entities, placeholders, strict=True))
        else:
            scene = f"Scene: {''.join(placeholders)}."
    elif placement == IMAGE:
        scene = f"Scene: {IMAGE * n_tokens}."
    elif placement in (AUDIO, REGION):
        scene = ""  # these sensors speak or point in the instruction itself
    else:
        raise ValueError(
            f"placement={placement!r}: allowed {OBJECTS!r}, {IMAGE}, {AUDIO}, {REGION}"
        )
    if placement == AUDIO:
        spoken_tokens = n_tokens
    if spoken_tokens:
        instruction = AUDIO * spoken_tokens
    if placement == OBJECTS and mention_tokens:
        for name, token in zip(entities, placeholders, strict=True):
            instruction = re.sub(rf"\b{re.escape(name)}\b", f"{name} {token}", instruction)
    parts = [scene, f"Q: {instruction}"] if scene else [f"Q: {instruction}"]
    if kind == "question":
        return " ".join(parts) + " A:"
    if history:
        if len(history_success) > len(history) or len(history_reasons) > len(history):
            raise ValueError(
                f"{len(history)} history steps, {len(history_success)} outcomes and "
                f"{len(history_reasons)} reasons: at most one outcome and reason per step"
            )
        marks = list(history_success) + [True] * (len(history) - len(history_success))
        reasons = list(history_reasons) + [""] * (len(history) - len(history_reasons))
        done = "; ".join(
            step + ("" if ok else failure_mark(reason))
            for step, ok, reason in zip(history, marks, reasons, strict=True)
        )
        parts.append(f"Done: {done}.")
    return " ".join(parts) + " Next:"


def object_placeholders(n_entities: int, rows: Sequence[int] | None = None) -> list[str]:
    """The ``<obj_j>`` placeholders of ``n_entities`` objects in ``rows`` (0-based, ascending,
    distinct; None: rows 0..n-1)."""
    if n_entities > len(OBJECT_PLACEHOLDERS):
        raise ValueError(f"{n_entities} entities: at most {len(OBJECT_PLACEHOLDERS)}")
    if rows is None:
        return list(OBJECT_PLACEHOLDERS[:n_entities])
    rows = list(rows)
    if (
        len(rows) != n_entities
        or rows != sorted(set(rows))
        or not all(0 <= row < len(OBJECT_PLACEHOLDERS) for row in rows)
    ):
        raise ValueError(
            f"rows={rows} for {n_entities} entities: allowed {n_entities} distinct ascending "
            f"rows of 0..{len(OBJECT_PLACEHOLDERS) - 1}"
        )
    return [OBJECT_PLACEHOLDERS[row] for row in rows]


@dataclass
class Encoded:
    """A tokenized batch, right-padded: ``(B, T)`` each."""

    input_ids: Tensor
    attention_mask: Tensor
    labels: Tensor

    def to(self, device: torch.device | str) -> Encoded:
        return Encoded(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.labels)))


def encode(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    targets: Sequence[str] | None = None,
    max_length: int | None = None,
) -> Encoded:
    """``<s> prompt`` (+ `` target</s>``, the only labelled tokens) per example, right-padded.

    An example longer than ``max_length`` is an error: cutting it would silently drop part of
    the scene or the target."""
    rows: list[list[int]] = []
    label_rows: list[list[int]] = []  # -100 except on the target
    for i, prompt in enumerate(prompts):
        ids = [tokenizer.bos_token_id, *tokenizer.encode(prompt, add_special_tokens=False)]
        labelled = [IGNORE] * len(ids)
        if targets is not None:
            answer = tokenizer.encode(" " + targets[i], add_special_tokens=False)
            answer.append(tokenizer.eos_token_id)
            ids, labelled = ids + answer, labelled + answer
        if max_length is not None and len(ids) > max_length:
            raise ValueError(
                f"example {i} is {len(ids)} tokens, more than max_length={max_length}: "
                f"raise max_length (the LM's max_positions bounds it) or shorten the prompt"
            )
        rows.append(ids)
        label_rows.append(labelled)
    length = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    input_ids = torch.full((len(rows), length), pad, dtype=torch.long)
    labels = torch.full((len(rows), length), IGNORE, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, (ids, labs) in enumerate(zip(rows, label_rows, strict=True)):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(labs)] = torch.tensor(labs)
        attention_mask[i, : len(ids)] = 1
    return Encoded(input_ids, attention_mask, labels)


def token_id(tokenizer: PreTrainedTokenizerBase, token: str) -> int:
    """The id of one (special) token."""
    found = tokenizer.convert_tokens_to_ids(token)
    assert isinstance(found, int), f"{token!r} is not one token"
    return found


def inject(
    embeddings: Tensor,
    input_ids: Tensor,
    tokenizer: PreTrainedTokenizerBase,
    placement: str,
    sensor_tokens: Tensor,
    keep_placeholder: bool = False,
) -> Tensor:
    """``(B, T, D)`` text embeddings with each placeholder position of ``placement`` replaced
    by its sensor token from ``(B, N, D)`` ``sensor_tokens`` (out of place: gradients reach
    both). ``<obj_j>`` takes token j-1; the k-th ``<img>`` (``<audio>``, ``<region>``) token k.
    ``keep_placeholder`` adds the sensor token to the placeholder's own embedding instead of
    replacing it, so that ``<obj_3>``'s position also says "obj_3"."""
    if placement == OBJECTS:
        index = torch.full_like(input_ids, -1)  # (B, T): which token fills each position
        for j, token in enumerate(OBJECT_PLACEHOLDERS):
            index = torch.where(input_ids.eq(token_id(tokenizer, token)), j, index)
    else:
        mask = input_ids.eq(token_id(tokenizer, placement))  # (B, T)
        index = torch.where(mask, mask.cumsum(1) - 1, -1)  # k-th occurrence -> token k
    rows, positions = (index >= 0).nonzero(as_tuple=True)
    token_index = index[rows, positions]
    if len(token_index) and int(token_index.max()) >= sensor_tokens.shape[1]:
        raise ValueError(
            f"a prompt holds more {placement} placeholders than the sensor's "
            f"{sensor_tokens.shape[1]} tokens"
        )
    values = sensor_tokens[rows, token_index].to(embeddings.dtype)  # (P, D)
    if keep_placeholder:
        values = values + embeddings[rows, positions]
    return embeddings.index_put((rows, positions), values)
