"""Greedy decoding of one answer: the system turn's KV cache reused from step to step, the
tool call's fixed tokens verified in one pass, optionally a static cache and a compiled step.

* System-turn reuse: the system turn (the tool block, ~1000 tokens) is the same at every
  step of a run. Its keys and values depend only on those tokens (attention is causal), so
  after the first step the cache is cut back to the system turn and the next step prefills
  only the user turn and the image.
* Forcing (``scaffold``, see forcing.py): a draft of the tool call's fixed tokens is fed
  after the last decided token in one forward pass; each position's greedy choice is
  compared with the next draft token and the answer takes the model's own choice from the
  first disagreement on (the rejected positions are cut from the cache). The result is the
  plain greedy answer; the draft only saves passes. (A pass over k tokens computes the same
  logits as k one-token passes, up to the rounding of differently shaped kernels: as with
  any cached prefix, only an exact near-tie could tell them apart.)
* ``cache="static"``: keys and values live in tensors preallocated for the whole answer, so
  their addresses never change; ``compiled=True`` runs each decode pass through
  ``torch.compile`` (CUDA graphs on a GPU, ``mode="reduce-overhead"``).

Greedy choices are made exactly as ``generate`` makes them (float32 logits, the same
repetition penalty processor over every id seen so far, the same stop tokens); tests compare
the two token for token.

Qwen2.5-VL places image tokens by (t, h, w): the positions for the whole prompt are computed
once and the slice after the cached prefix is passed in, so a cached prefix never shifts
where the image sits. Tokens after the prompt sit at their index plus the prompt's rope
offset, on all three axes.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Any, Literal

CacheKind = Literal["dynamic", "static"]
# Static caches are allocated in whole blocks so that a prompt growing by a history line
# does not reallocate them (a new address would mean a new CUDA graph).
STATIC_BLOCK = 1024
# Compiled decoding feeds every draft in a chunk of this many tokens (padded): with the
# one-token pass, two graphs serve every answer instead of one per draft length.
VERIFY_CHUNK = 8


@dataclass
class Decoded:
    token_ids: list[int]
    # Milliseconds: "prefill" (vision + prompt forward + first token), "decode" (the rest).
    timings: dict[str, float] = field(default_factory=dict)
    reused_tokens: int = 0
    # Tokens the prefill pass gave (1, plus an accepted draft), forward passes after it, and
    # answer tokens that came from accepted drafts.
    prefill_tokens: int = 0
    decode_passes: int = 0
    forced_tokens: int = 0


class GreedyDecoder:
    def __init__(self, model: Any, stop_ids: list[int], repetition_penalty: float | None,
                 system_end_id: int, reuse_prefix: bool = True, cache: CacheKind = "dynamic",
                 compiled: bool = False, compile_options: dict[str, Any] | None = None) -> None:
        import torch
        from transformers import RepetitionPenaltyLogitsProcessor

        if compiled and cache != "static":
            raise ValueError("compiled decoding needs cache='static' (fixed tensor addresses)")
        self._torch = torch
        self.model = model
        self.stop_ids = set(stop_ids)
        penalty = repetition_penalty or 1.0
        self._penalty = RepetitionPenaltyLogitsProcessor(penalty) if penalty != 1.0 else None
        self.reuse_prefix = reuse_prefix
        self.cache_kind = cache
        # The system turn ends at its <|im_end|>: the first one in the prompt.
        self.system_end_id = system_end_id
        self._cache: Any = None
        self._prefix_ids: Any = None
        self._cache_argument = cache_argument(model.forward)
        self._forward = self._step
        self.compiled = compiled
        if compiled:
            # fullgraph: a graph break would quietly cost the CUDA graph its gain.
            options = {"fullgraph": True, **(compile_options or {})}
            if model.device.type == "cuda":
                options.setdefault("mode", "reduce-overhead")  # CUDA graphs
            # One graph per chunk length (1 and VERIFY_CHUNK) and static cache size: more than
            # dynamo's default of 8 would be hit by a run whose prompt outgrows its cache.
            config = torch._dynamo.config
            name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
            setattr(config, name, max(getattr(config, name), 64))
            self._forward = torch.compile(self._step, dynamic=False, **options)

    def decode(self, inputs: dict[str, Any], max_new_tokens: int, sync=lambda: None,
               scaffold: Any = None, teacher: list[int] | None = None) -> Decoded:
        """Greedy answer to ``inputs``. ``scaffold`` drafts forced tokens (forcing.Scaffold);
        ``teacher`` (benchmarks) is taken instead of the greedy choice, which is still
        computed, so that a fixed answer costs what decoding it costs whatever the weights."""
        torch = self._torch
        started = time.perf_counter()
        ids = inputs["input_ids"]
        length = ids.shape[1]
        if teacher is not None:
            max_new_tokens = min(max_new_tokens, len(teacher))
        positions, deltas = self.model.model.get_rope_index(
            ids, mm_token_type_ids=inputs["mm_token_type_ids"], image_grid_thw=inputs["image_grid_thw"],
            attention_mask=inputs["attention_mask"],
        )
        capacity = length + max_new_tokens + VERIFY_CHUNK
        prefix = self._system_turn_length(ids, inputs["mm_token_type_ids"])
        cache, start = self._cache_for(ids, prefix, capacity)
        run = _Answer(self, ids, deltas, max_new_tokens, scaffold, teacher)

        # The prefill: the prompt after the cached prefix, then the draft of the tool call's
        # opening (text tokens: type 0).
        draft = run.draft()
        drafted = run.tensor(draft)
        kinds = inputs["mm_token_type_ids"]
        output = self.model(
            input_ids=torch.cat([ids[:, start:], drafted], dim=1),
            position_ids=torch.cat([positions[:, :, start:], run.positions(length, len(draft))], dim=2),
            pixel_values=inputs["pixel_values"],
            image_grid_thw=inputs["image_grid_thw"],
            mm_token_type_ids=torch.cat(
                [kinds[:, start:], torch.zeros_like(drafted, dtype=kinds.dtype)], dim=1),
            **{self._cache_argument: cache},
            use_cache=True,
            logits_to_keep=len(draft) + 1,  # only the rows that choose tokens
        )
        run.accept(output.logits[0], draft, cache)
        prefill_tokens = len(run.generated)
        sync()
        first_token_at = time.perf_counter()
        while not run.finished:
            draft = run.draft()
            chunk = [run.generated[-1], *draft]
            fed = chunk
            if self.compiled and draft:
                # Padding past the draft: causal attention keeps it out of the rows that
                # count, and accept() cuts it from the cache.
                chunk, fed = chunk[:VERIFY_CHUNK], (chunk + [chunk[-1]] * VERIFY_CHUNK)[:VERIFY_CHUNK]
                draft = chunk[1:]
            logits = self._forward(run.tensor(fed), run.positions(run.cached, len(fed)), cache)
            run.passes += 1
            run.accept(logits[0, : len(chunk)], draft, cache)
        sync()
        finished = time.perf_counter()
        return Decoded(
            token_ids=run.generated,
            timings={"prefill": (first_token_at - started) * 1000, "decode": (finished - first_token_at) * 1000},
            reused_tokens=start,
            prefill_tokens=prefill_tokens,
            decode_passes=run.passes,
            forced_tokens=run.forced,
        )

    def _step(self, input_ids: Any, position_ids: Any, cache: Any) -> Any:
        """One decode pass (what ``compiled=True`` compiles): logits for every fed token."""
        return self.model(input_ids=input_ids, position_ids=position_ids,
                          **{self._cache_argument: cache}, use_cache=True).logits

    def _cache_for(self, ids: Any, prefix_length: int, capacity: int) -> tuple[Any, int]:
        """The cache to extend and where the new tokens start: the system-turn cache cut back
        to the system turn when this prompt begins with the same system turn, else an empty
        one (a static cache keeps its tensors while they are large enough)."""
        from transformers import DynamicCache, StaticCache

        torch = self._torch
        prefix = ids[:, :prefix_length]
        cache = self._cache
        if self.cache_kind == "static" and cache is not None and cache.get_max_length() < capacity:
            cache = None  # too small for this prompt: allocate a larger one
        if (self.reuse_prefix and cache is not None and prefix_length > 0
                and self._prefix_ids is not None and self._prefix_ids.shape == prefix.shape
                and torch.equal(self._prefix_ids, prefix)):
            truncate(cache, prefix_length)
            return cache, prefix_length
        if cache is None:
            if self.cache_kind == "static":
                blocks = -(-capacity // STATIC_BLOCK)
                cache = StaticCache(config=self.model.config, max_cache_len=blocks * STATIC_BLOCK)
            else:
                cache = DynamicCache(config=self.model.config)
        truncate(cache, 0)
        if self.reuse_prefix or self.cache_kind == "static":
            self._cache, self._prefix_ids = cache, prefix.clone()
        return cache, 0

    def _system_turn_length(self, ids: Any, kinds: Any) -> int:
        """Tokens up to and including the first <|im_end|> (0 when there is none), stopping
        before the first image token: image tokens are the same ids whatever the screenshot
        shows, so a prompt that opens with the image (no system turn) must not get the last
        screenshot's keys and values from the cache."""
        ends = (ids[0] == self.system_end_id).nonzero()
        length = int(ends[0, 0]) + 1 if len(ends) else 0
        images = kinds[0].nonzero()
        return min(length, int(images[0, 0])) if len(images) else length

    def picks(self, seen: Any, draft: list[int], rows: Any) -> list[int]:
        """The greedy choice after each row: row j follows ``seen`` + ``draft[:j]``."""
        rows = rows.float()  # generate() chooses from float32 scores
        if self._penalty is not None:
            drafted = self._torch.tensor([draft], dtype=seen.dtype, device=seen.device)
            context = self._torch.cat([seen, drafted], dim=1)
            width = seen.shape[1]
            rows = self._torch.cat([self._penalty(context[:, : width + j], rows[j : j + 1])
                                    for j in range(rows.shape[0])])
        return rows.argmax(dim=-1).tolist()


def cache_argument(forward: Any) -> str:
    """The name ``forward`` takes the KV cache under: ``cache`` from transformers 5.24 on
    (``past_key_values`` still works there but warns on every call and goes in 5.40),
    ``past_key_values`` before."""
    return "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"


def truncate(cache: Any, length: int) -> None:
    """Keep the first ``length`` tokens of ``cache``. A static cache only moves its fill
    mark: the causal mask hides the stale entries after it until they are overwritten."""
    from transformers import StaticCache

    if isinstance(cache, StaticCache):
        for layer in cache.layers:
            layer.cumulative_length.fill_(length)
        return
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)  # transformers 5: a negative count of tokens to drop


class _Answer:
    """One answer being decoded: the tokens so far and what the cache holds."""

    def __init__(self, decoder: GreedyDecoder, ids: Any, deltas: Any, max_new_tokens: int,
                 scaffold: Any, teacher: list[int] | None) -> None:
        self.decoder, self.ids, self.deltas = decoder, ids, deltas
        self.max_new_tokens, self.scaffold, self.teacher = max_new_tokens, scaffold, teacher
        self.generated: list[int] = []
        self.seen = ids  # the prompt and every chosen token (the repetition penalty's view)
        self.passes = self.forced = 0
        self.finished = False

    @property
    def cached(self) -> int:
        """Tokens whose keys and values are in the cache: all but the last chosen one."""
        return self.ids.shape[1] + len(self.generated) - 1

    def draft(self) -> list[int]:
        if self.scaffold is None:
            return []
        # No draft token past the answer's budget (nor the cache's capacity).
        return self.scaffold.draft(self.generated)[: self.max_new_tokens - len(self.generated)]

    def tensor(self, tokens: list[int]) -> Any:
        return self.decoder._torch.tensor([tokens], dtype=self.ids.dtype, device=self.ids.device)

    def positions(self, first: int, count: int) -> Any:
        """Rope positions of text tokens ``first..first+count`` after the prompt."""
        torch = self.decoder._torch
        index = torch.arange(first, first + count, device=self.ids.device) + self.deltas[0, 0]
        return index.view(1, 1, -1).expand(3, 1, -1)

    def accept(self, rows: Any, draft: list[int], cache: Any) -> None:
        """Take the greedy choices after the fed tokens while the draft agrees with them;
        cut the cache back to the tokens that stand."""
        chosen = self.decoder.picks(self.seen, draft, rows)
        if self.teacher is not None:
            chosen = self.teacher[len(self.generated) : len(self.generated) + len(chosen)]
        taken = 0
        for index, token in enumerate(chosen):
            self.generated.append(token)
            taken += 1
            agreed = index < len(draft) and token == draft[index]
            self.forced += agreed
            if token in self.decoder.stop_ids or len(self.generated) >= self.max_new_tokens:
                self.finished = True
                break
            if not agreed:
                break
        if self.teacher is not None and len(self.generated) >= len(self.teacher):
            self.finished = True
        self.seen = self.decoder._torch.cat([self.seen, self.tensor(self.generated[-taken:])], dim=1)
        truncate(cache, self.cached)
