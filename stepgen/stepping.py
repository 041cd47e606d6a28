"""Build a text one chosen token at a time, on token ids, with undo and branches.

The primitive is :func:`step`: from the ids so far and a :class:`DecodingSettings`
(the same object, hence the same transformers processors, as the Next-token
view), pick the next token by a strategy

* ``greedy``: the most likely token after the settings (with temperature 0:
  exactly ``generate(do_sample=False)``'s choice);
* ``sample``: a draw weighted by the final distribution, as
  ``generate(do_sample=True)`` draws it (``torch.multinomial`` on the same
  probabilities), from an explicit ``torch.Generator``, never the global RNG;
* ``uniform``: every token of the vocabulary equally likely, ignoring the
  model, as the classic notebooks do for contrast (``random.choices`` without
  weights);
* ``token``: an explicit token id (a click on a candidate); ``forced``: a
  token of a text the user typed;

record the chosen token's probability, final probability, rank and the
alternatives it had, and return the distribution of the token after it. The
model's logits come from the shared :class:`stepgen.kvcache.KVStore`, so each
step runs one token through the model.

On top, a :class:`Session` is plain data (token ids, choices, the generator's
state as bytes; never a tensor): a tree of :class:`Branch` paths with undo,
forking at any generated token and switching between branches. Each function
returns a new session and leaves the old one untouched. Rendering and
tokenizing prompts belong elsewhere.

Longer than the ~300-line guide: the step primitive and the session (branches,
undo, fork) it records into are one idea; rebuilding a session from a link is
:mod:`stepgen.replay`, the auto-step loop :mod:`stepgen.autostep`.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import torch

from stepgen.distribution import Candidate, Distribution, check_top_n, from_logits
from stepgen.inputs import as_ids, check_ids
from stepgen.kvcache import KVStore, Lookup, get_store
from stepgen.checks import MAX_SEED, check_seed, whole_in_range
from stepgen.numbers import token_numbers
from stepgen.settings import DecodingSettings
from stepgen.tokenize import CONTEXT_FREE, check_unicode, continuation_ids
from stepgen.tokens import token_text

STRATEGIES = ("greedy", "sample", "uniform", "token", "forced")
RECENT = 16
"""How many processed distributions are remembered (a step reuses the one it was shown)."""

# keyed by a weak reference to the model, not its id: a dead reference equals only itself, so a model loaded
# later at a freed model's address can never be answered with the old model's distributions
_recent: OrderedDict[tuple[Any, ...], tuple[Distribution, torch.Tensor]] = OrderedDict()
_recent_lock = threading.Lock()


@dataclass(frozen=True)
class Step:
    """One chosen token and what the model thought of it when it was chosen."""

    token_id: int
    text: str
    strategy: str
    """How it was chosen: one of :data:`STRATEGIES`."""
    prob: float
    """The model's raw probability for it."""
    final_prob: float
    """Its probability after the settings (what sampling drew it with; 0 when the settings cut it)."""
    logprob: float
    rank: int
    """1 for the model's most likely token."""
    alternatives: tuple[Candidate, ...]
    """The candidates it was chosen among (the top of the distribution at that point)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.token_id, "text": self.text, "strategy": self.strategy, "prob": self.prob,
            "final_prob": self.final_prob, "logprob": self.logprob, "rank": self.rank,
            "alternatives": [{"id": c.id, "text": c.text, "prob": c.prob, "final_prob": c.final_prob, "rank": c.rank}
                             for c in self.alternatives],
        }


@dataclass(frozen=True)
class StepResult:
    """A step: the whole sequence after it, the chosen token, and the distribution that follows."""

    ids: tuple[int, ...]
    step: Step
    next: Distribution
    reused: int
    """Tokens whose cached keys and values served to compute :attr:`next`."""
    computed: int
    """Tokens that went through the model for it (1 on an ordinary step)."""


# --- the primitive -------------------------------------------------------------




def check_strategy(strategy: Any) -> str:
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        raise ValueError(f"`strategy` has to be one of {', '.join(STRATEGIES)} (or a token id), but is {strategy!r}")
    return strategy


def new_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A private random generator; seeded like ``torch.manual_seed(seed)`` seeds the global one."""
    return torch.Generator(device=device).manual_seed(check_seed(seed))


def api_seed(seed: int, n_tokens: int) -> int:
    """The seed of a stateless sampling call: ``seed * 2**32 + n_tokens``.

    Without session state, a call seeds a fresh generator from its own seed and
    the length of its input, so the same request always draws the same token,
    and stepping along a text with one seed draws differently at each length.
    """
    return check_seed(seed) * 2**32 + int(n_tokens)


def distribution(
    loaded: Any, ids: tuple[int, ...] | list[int], settings: DecodingSettings, *, top_n: int = 10,
    store: KVStore | None = None,
) -> tuple[Distribution, Lookup]:
    """The distribution of the token after ``ids`` (logits from the shared KV store) and the store's answer.

    The last few distributions are remembered, so that the step after a shown
    distribution does not process the same logits again.
    """
    top_n = check_top_n(top_n)  # before the forward pass: a bad request costs nothing
    ids = tuple(check_ids(loaded, ids))
    key = (str(loaded.name), weakref.ref(loaded.model), ids, settings, top_n)
    with _recent_lock:
        known = _recent.get(key)
        if known is not None:
            _recent.move_to_end(key)
            return known[0], Lookup(known[1], reused=len(ids), computed=0)
    lookup = (store if store is not None else get_store()).logits(loaded, list(ids))
    dist = from_logits(loaded, list(ids), lookup.logits, settings, top_n=top_n)
    with _recent_lock:
        _recent[key] = (dist, lookup.logits)
        while len(_recent) > RECENT:
            _recent.popitem(last=False)
    return dist, lookup


def choose(
    dist: Distribution, strategy: str, *, generator: torch.Generator | None = None, token_id: int | None = None,
    vocab_size: int | None = None,
) -> int:
    """The token id ``strategy`` picks from ``dist`` (see the module docstring)."""
    check_strategy(strategy)
    size = int(dist.final_probs.numel())
    if strategy == "greedy" or (strategy == "sample" and dist.settings.greedy):
        return dist.greedy_id  # generate(do_sample=False) draws nothing, so neither do we
    if strategy == "sample":
        if generator is None:
            raise ValueError("`generator` is needed to sample (the global random generator is never used)")
        return int(torch.multinomial(dist.final_probs, 1, generator=generator))
    if strategy == "uniform":
        if generator is None:
            raise ValueError("`generator` is needed to sample (the global random generator is never used)")
        high = min(size, vocab_size or size)
        return int(torch.randint(high, (1,), generator=generator, device=generator.device))
    # "token" or "forced": the id given
    return whole_in_range("token_id", token_id, 0, size - 1)


MAX_DRAWS = 100_000
"""The most tokens :func:`draw` takes from one distribution at once."""


@dataclass(frozen=True)
class Draws:
    """Many independent draws from one distribution: how often each token came out."""

    n: int
    seed: int
    counts: tuple[tuple[int, int], ...]
    """(token id, times drawn), the most drawn first."""

    def share(self, token_id: int) -> float:
        return dict(self.counts).get(token_id, 0) / self.n


def draw(dist: Distribution, n: int, seed: int) -> Draws:
    """``n`` tokens drawn from ``dist`` as ``generate(do_sample=True)`` draws one, each independently.

    Each draw is ``torch.multinomial`` on the final distribution (with temperature 0, every draw is the
    greedy token, as ``generate(do_sample=False)`` picks it). The counts approach the probabilities as
    ``n`` grows: that is what a probability means.
    """
    n, seed = check_draws(n), check_seed(seed)
    if dist.settings.greedy:
        return Draws(n=n, seed=seed, counts=((dist.greedy_id, n),))
    generator = new_generator(seed, dist.final_probs.device)
    drawn = torch.multinomial(dist.final_probs, n, replacement=True, generator=generator)
    ids, counts = torch.unique(drawn, return_counts=True)
    order = sorted(zip(ids.tolist(), counts.tolist()), key=lambda pair: (-pair[1], pair[0]))
    return Draws(n=n, seed=seed, counts=tuple(order))


def check_draws(n: Any) -> int:
    return whole_in_range("samples", n, 1, MAX_DRAWS, what="a whole number")


def _record(loaded: Any, dist: Distribution, logits: torch.Tensor, token_id: int, strategy: str) -> Step:
    shown = {c.id: c for c in dist.candidates}
    if token_id in shown:
        c = shown[token_id]
        prob, logprob, rank = c.prob, c.logprob, c.rank
    else:  # a token outside the top: the same numbers, for it alone
        numbers = token_numbers(logits.reshape(1, -1), torch.tensor([token_id], device=logits.device))
        prob, logprob, rank = float(numbers.prob), float(numbers.logprob), int(numbers.rank)
    return Step(
        token_id=token_id, text=token_text(loaded.tokenizer, token_id), strategy=strategy, prob=prob,
        final_prob=float(dist.final_probs[token_id]), logprob=logprob, rank=rank, alternatives=dist.candidates,
    )


def step(
    loaded: Any,
    ids: tuple[int, ...] | list[int],
    settings: DecodingSettings,
    strategy: str,
    *,
    generator: torch.Generator | None = None,
    token_id: int | None = None,
    top_n: int = 10,
    store: KVStore | None = None,
) -> StepResult:
    """Append one token to ``ids`` chosen by ``strategy``; return it with the distribution after it."""
    check_strategy(strategy)
    ids = tuple(check_ids(loaded, ids, room=1, advice="undo or start over"))
    dist, lookup = distribution(loaded, ids, settings, top_n=top_n, store=store)
    chosen = choose(dist, strategy, generator=generator, token_id=token_id, vocab_size=len(loaded.tokenizer))
    record = _record(loaded, dist, lookup.logits, chosen, strategy)
    new_ids = ids + (chosen,)
    following, after = distribution(loaded, new_ids, settings, top_n=top_n, store=store)
    return StepResult(ids=new_ids, step=record, next=following, reused=after.reused, computed=after.computed)


# --- a session: branches of steps, as plain data ------------------------------------


@dataclass(frozen=True)
class Branch:
    """One path: the whole sequence (prompt included) and a step record per generated token."""

    ids: tuple[int, ...]
    steps: tuple[Step, ...]
    parent: int | None = None
    """The branch this one was forked from."""
    fork_at: int | None = None
    """The position in ``ids`` where it first differed from its parent."""


@dataclass(frozen=True)
class Session:
    """A learner's stepping session: token ids and choices only (the generator's state is bytes)."""

    model: str
    prompt_ids: tuple[int, ...]
    branches: tuple[Branch, ...]
    current: int = 0
    seed: int = 0
    rng_state: bytes = b""

    @property
    def branch(self) -> Branch:
        return self.branches[self.current]

    @property
    def ids(self) -> tuple[int, ...]:
        return self.branch.ids

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.branch.steps

    def generator(self, device: torch.device | str = "cpu") -> torch.Generator:
        """The session's generator, in the state the last draw left it."""
        generator = new_generator(self.seed, device)
        if self.rng_state:
            generator.set_state(torch.frombuffer(bytearray(self.rng_state), dtype=torch.uint8))
        return generator


def _state_bytes(generator: torch.Generator) -> bytes:
    return bytes(generator.get_state().cpu().numpy().tobytes())


def start(model: str, prompt_ids: list[int] | tuple[int, ...], seed: int = 0) -> Session:
    """A new session on ``prompt_ids``, its generator seeded with ``seed``."""
    prompt = tuple(as_ids(prompt_ids, "prompt_ids"))
    if not prompt:
        raise ValueError("There is no token to continue from: type a prompt.")
    return Session(model=model, prompt_ids=prompt, branches=(Branch(ids=prompt, steps=()),), seed=check_seed(seed))


def reseed(session: Session, seed: int) -> Session:
    """Restart the session's generator from ``seed`` (the text stays)."""
    return replace(session, seed=check_seed(seed), rng_state=b"")


def _with_branch(session: Session, branch: Branch) -> Session:
    branches = list(session.branches)
    branches[session.current] = branch
    return replace(session, branches=tuple(branches))


def advance(
    loaded: Any, session: Session, settings: DecodingSettings, strategy: str, *, token_id: int | None = None,
    top_n: int = 10, store: KVStore | None = None,
) -> tuple[Session, StepResult]:
    """One step on the current branch; sampling draws from (and advances) the session's generator."""
    generator = session.generator(loaded.device)
    result = step(loaded, session.ids, settings, strategy, generator=generator, token_id=token_id, top_n=top_n,
                  store=store)
    branch = replace(session.branch, ids=result.ids, steps=session.steps + (result.step,))
    moved = replace(_with_branch(session, branch), rng_state=_state_bytes(generator))
    return moved, result


def force_text(
    loaded: Any, session: Session, text: str, settings: DecodingSettings, *, top_n: int = 10,
    store: KVStore | None = None,
) -> tuple[Session, StepResult]:
    """Append the tokens of ``text``, each recorded as forced.

    The tokens are those the tokenizer gives ``text`` after the text so far
    (``' fell'`` after ``'the rain'`` is ``'▁fell'``, not ``'▁', '▁fell'`` as
    alone on a SentencePiece tokenizer). When ``text`` would merge into the
    last token, it is split as it would be after a line break.
    """
    check_unicode("text", text)
    forced = _forced_ids(loaded.tokenizer, session.ids, text) if text else []
    if not forced:
        raise ValueError("`text` has to hold at least one token, but is empty: type the text to append.")
    if len(session.ids) + len(forced) > loaded.context_length:
        raise ValueError(
            f"`text` is {len(forced)} tokens; with the {len(session.ids)} already there that exceeds "
            f"{loaded.name}'s context window of {loaded.context_length} tokens."
        )
    result = None
    for token_id in forced:
        session, result = advance(loaded, session, settings, "forced", token_id=int(token_id), top_n=top_n,
                                  store=store)
    assert result is not None
    return session, result


def _forced_ids(tokenizer: Any, ids: tuple[int, ...], text: str) -> list[int]:
    """The ids ``text`` adds after ``ids`` (see :func:`force_text`)."""
    context = tokenizer.decode(list(ids))
    for before in (context, CONTEXT_FREE):
        forced = continuation_ids(tokenizer, before, text)
        if forced:
            return forced
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def undo(session: Session) -> Session:
    """Drop the last token of the current branch (the prompt stays)."""
    branch = session.branch
    if not branch.steps:
        raise ValueError("There is nothing to undo: the text is back at the prompt.")
    return _with_branch(session, replace(branch, ids=branch.ids[:-1], steps=branch.steps[:-1]))


def fork(
    loaded: Any, session: Session, position: int, token_id: int, settings: DecodingSettings, *, top_n: int = 10,
    store: KVStore | None = None,
) -> tuple[Session, StepResult]:
    """A new branch: the current path up to ``position`` (an index into the ids), then ``token_id``.

    The old path is kept as it was; the new branch becomes current. Forking to
    a path that already exists switches to that branch instead.
    """
    prompt_len, ids = len(session.prompt_ids), session.ids
    if isinstance(position, bool) or not isinstance(position, int) or not prompt_len <= position < len(ids):
        raise ValueError(
            f"`position` has to be the index of a generated token, from {prompt_len} to {len(ids) - 1}, "
            f"but is {position!r}"
        )
    if ids[position] == token_id:
        raise ValueError(f"Token {token_id} is already the one at position {position}: pick a different one to fork.")
    base = replace(session.branch, ids=ids[:position], steps=session.steps[: position - prompt_len])
    result = step(loaded, base.ids, settings, "token", token_id=token_id, top_n=top_n, store=store)
    for index, other in enumerate(session.branches):
        if other.ids == result.ids:
            return replace(session, current=index), result
    branch = Branch(ids=result.ids, steps=base.steps + (result.step,), parent=session.current, fork_at=position)
    forked = replace(session, branches=session.branches + (branch,), current=len(session.branches))
    return forked, result


def switch(session: Session, index: int) -> Session:
    """Make branch ``index`` the current one."""
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(session.branches):
        raise ValueError(f"`branch` has to be from 0 to {len(session.branches) - 1}, but is {index!r}")
    return replace(session, current=index)


def divergence(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """How many leading tokens two paths share (the position where they first differ)."""
    shared = 0
    for x, y in zip(a, b):
        if x != y:
            break
        shared += 1
    return shared
