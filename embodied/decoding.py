"""Greedy decoding with a KV cache, free (as PaLM-E) or constrained to a set of valid texts.

The prompt's embeddings (sensor tokens injected) go through the LM once; every new token then
costs one step over the cache. Constrained decoding walks a token trie of the allowed texts
(e.g. every valid skill call over the entities present): at each step only tokens that continue
some allowed text can win, so the output is always one of them.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor
from transformers import PreTrainedModel, PreTrainedTokenizerBase


class TokenTrie:
    """The allowed token sequences (each ends with EOS), as a prefix tree."""

    def __init__(self, sequences: Iterable[list[int]]) -> None:
        self.root: dict[int, dict] = {}
        for sequence in sequences:
            node = self.root
            for token in sequence:
                node = node.setdefault(token, {})

    @classmethod
    def of_texts(cls, tokenizer: PreTrainedTokenizerBase, texts: Iterable[str]) -> TokenTrie:
        """Texts as a target is tokenized in training: `` text</s>``."""
        return cls(
            [*tokenizer.encode(" " + text, add_special_tokens=False), tokenizer.eos_token_id]
            for text in texts
        )

    def allowed(self, prefix: list[int]) -> list[int]:
        """Tokens that may follow ``prefix`` (empty once it leaves the trie)."""
        node = self.root
        for token in prefix:
            if token not in node:
                return []
            node = node[token]
        return list(node)


MAX_REPLY_TOKENS = 32
"""The longest reply the planner writes: a plan step, or an answer after its checks (q4 with
``TrainConfig.question_rationales``: up to 23 tokens, 30 with a cube in the hand)."""


@torch.no_grad()
def greedy_decode(
    lm: PreTrainedModel,
    inputs_embeds: Tensor,
    eos_token_id: int,
    max_new_tokens: int,
    trie: TokenTrie | None = None,
) -> list[int]:
    """``(1, T, D)`` prompt embeddings -> the greedy continuation's token ids (without EOS).

    With ``trie``, only its continuations are considered; decoding stops at EOS, at
    ``max_new_tokens``, or (free mode only) never early otherwise."""
    if inputs_embeds.shape[0] != 1:
        raise ValueError(f"greedy_decode takes one prompt, got a batch of {inputs_embeds.shape[0]}")
    output = lm(inputs_embeds=inputs_embeds, use_cache=True, logits_to_keep=1)
    cache, logits = output.cache, output.logits[0, -1]  # (V,)
    tokens: list[int] = []
    for _ in range(max_new_tokens):
        if trie is not None:
            allowed = trie.allowed(tokens)
            if not allowed:
                break
            mask = torch.full_like(logits, float("-inf"))
            mask[allowed] = 0.0
            logits = logits + mask
        token = int(logits.argmax())
        if token == eos_token_id:
            break
        tokens.append(token)
        step = torch.tensor([[token]], device=inputs_embeds.device)
        output = lm(input_ids=step, cache=cache, use_cache=True)
        cache, logits = output.cache, output.logits[0, -1]
    return tokens
