"""Tiny random-weight models with real tokenizers, built offline in a second.

Two shapes, because tokenizers differ in what they make visible:

* ``gpt2``: a GPT-2 model with a byte-level BPE tokenizer (``Ġ`` for spaces,
  every byte reachable, no BOS added), like distilgpt2 and gpt2;
* ``llama``: a Llama model with a SentencePiece-style BPE tokenizer (``▁`` for
  spaces, ``<0xE2>`` byte-fallback pieces, a BOS added in front, a chat
  template), like Llama and Mistral checkpoints.

Both are saved with ``save_pretrained`` to a folder, so the tests load them
through the same folder path as a user's local checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CORPUS = [
    "It was a dark and stormy night; the rain fell in torrents.",
    "Studying AI is fun, and studying AI is hard.",
    "Preposterous, I'm flabbergasted!",
    "The capital of France is Paris. The capital of Italy is Rome.",
    "Once upon a time there was a little language model that wrote one token at a time.",
    "def add(a, b):\n    return a + b\n",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000.",
] * 20

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def gpt2_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer, trained on :data:`CORPUS`."""
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        model_max_length=128,
    )


def llama_tokenizer() -> PreTrainedTokenizerFast:
    """A SentencePiece-style BPE with byte fallback, a BOS in front and a ChatML template.

    As in Llama's vocabulary, the 256 ``<0x..>`` byte pieces are ordinary vocabulary entries (ids 3 to 258),
    not added tokens; only ``<unk>``, ``<s>``, ``</s>`` and the chat markers are special.
    """
    specials = ["<unk>", "<s>", "</s>"]
    byte_pieces = [f"<0x{value:02X}>" for value in range(256)]
    normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    trained = Tokenizer(models.BPE())
    trained.normalizer, trained.pre_tokenizer = normalizer, pre_tokenizer
    letters = [chr(code) for code in range(32, 127)] + ["▁", "\n", "\t"]
    trainer = trainers.BpeTrainer(
        vocab_size=340, initial_alphabet=letters, limit_alphabet=len(letters), show_progress=False
    )
    trained.train_from_iterator(CORPUS, trainer=trainer)
    learned = json.loads(trained.to_str())["model"]
    vocab = {token: index for index, token in enumerate(specials + byte_pieces)}
    for token, _ in sorted(learned["vocab"].items(), key=lambda item: item[1]):
        vocab.setdefault(token, len(vocab))
    merges = [tuple(merge) if isinstance(merge, list) else tuple(merge.split(" ")) for merge in learned["merges"]]
    core = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True))
    core.normalizer, core.pre_tokenizer = normalizer, pre_tokenizer
    core.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    core.add_special_tokens(specials + ["<|im_start|>", "<|im_end|>"])
    core.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", vocab["<s>"])]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        model_max_length=256,
    )
    tokenizer.chat_template = CHATML
    return tokenizer


def build(kind: str, folder: Path, *, seed: int = 0) -> Path:
    """Write a tiny ``kind`` (``gpt2`` or ``llama``) model and tokenizer to ``folder``."""
    torch.manual_seed(seed)
    if kind == "gpt2":
        tokenizer = gpt2_tokenizer()
        config = GPT2Config(
            vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=2, n_head=2,
            initializer_range=0.2, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        )
        model = GPT2LMHeadModel(config)
    elif kind == "llama":
        tokenizer = llama_tokenizer()
        config = LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, initializer_range=0.2,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.eos_token_id,
        )
        model = LlamaForCausalLM(config)
    else:
        raise ValueError(f"`kind` has to be 'gpt2' or 'llama', but is {kind!r}")
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
