"""The planner's language model and its tokenizer.

Any Hugging Face causal LM works (``load_lm`` reads a local directory: ``config.json``,
``model.safetensors``, ``tokenizer.json``). Nothing is downloaded: the default is a small
Llama-architecture model built here (``small_llama``) with a byte-level BPE tokenizer trained
offline on the task corpus (``train_tokenizer``, the ``tokenizers`` library), then pretrained on
text alone (``embodied.train``'s first stage) to play the part of PaLM-E's pretrained LLM.

Either way the tokenizer gets this project's placeholder tokens (``PLACEHOLDERS``): their
positions in a prompt are filled with projected sensor tokens (``embodied.sentence``), so their
own embeddings are never read.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import cast

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from embodied.config import LMConfig
from envs.base import OBJECT_CAPACITY

BOS, EOS, PAD = "<s>", "</s>", "<pad>"
IMAGE, AUDIO, REGION = "<img>", "<audio>", "<region>"
OBJECT_PLACEHOLDERS = tuple(f"<obj_{j}>" for j in range(1, OBJECT_CAPACITY + 1))
"""``<obj_j>`` stands for the token of obj_j (row j-1 of the objects observation)."""
PLACEHOLDERS = (IMAGE, AUDIO, REGION, *OBJECT_PLACEHOLDERS)
ENTITY_TOKENS = tuple(f"obj_{j}" for j in range(1, OBJECT_CAPACITY + 1))
"""Entity names kept whole (one token each, not obj + _ + 3), so that the question's ``obj_3``
and the prefix's ``obj_3 is <obj_3>`` meet in one token."""


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on ``texts`` (lossless: any string round-trips)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS, *PLACEHOLDERS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD
    )
    wrapped.add_special_tokens({"additional_special_tokens": list(PLACEHOLDERS)})
    wrapped.add_tokens(list(ENTITY_TOKENS))
    return wrapped


def small_llama(config: LMConfig, tokenizer: PreTrainedTokenizerBase) -> LlamaForCausalLM:
    """A freshly initialised Llama-architecture causal LM sized by ``config``."""
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=config.hidden,
            intermediate_size=config.intermediate,
            num_hidden_layers=config.layers,
            num_attention_heads=config.heads,
            num_key_value_heads=config.heads,
            max_position_embeddings=config.max_positions,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=True,
        )
    )


def load_lm(path: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A causal LM and its tokenizer from a local Hugging Face directory, with this project's
    placeholder tokens added (the embedding matrix grows if they are new to it)."""
    path = Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(
            f"{path} holds no Hugging Face model (config.json missing): give a directory written "
            f"by save_pretrained, e.g. an embodied.train checkpoint"
        )
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    return model, with_placeholders(model, tokenizer)


def embedding_table(model: PreTrainedModel) -> nn.Embedding:
    """The LM's input token-embedding table."""
    return cast(nn.Embedding, model.get_input_embeddings())


def with_placeholders(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase
) -> PreTrainedTokenizerBase:
    """Add the placeholder and entity tokens (and a pad, eos and bos token if missing) to
    ``tokenizer``, growing ``model``'s embeddings to match."""
    vocabulary = tokenizer.get_vocab()  # built anew by every call: once here
    missing = [p for p in PLACEHOLDERS if p not in vocabulary]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing})
    tokenizer.add_tokens([e for e in ENTITY_TOKENS if e not in vocabulary])
    for role, token in (("eos_token", EOS), ("bos_token", BOS), ("pad_token", PAD)):
        if getattr(tokenizer, role) is None:
            tokenizer.add_special_tokens({role: token})
    if len(tokenizer) > embedding_table(model).num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    return tokenizer
