"""Greedy decoding of one answer, reusing the system turn's KV cache from step to step.

The system turn (the tool block, ~1000 tokens) is the same at every step of a run. Its keys
and values depend only on those tokens (attention is causal), so after the first step the
cache is cropped back to the system turn and the next step prefills only the user turn and
the image. Greedy choices are made exactly as ``generate`` makes them (same repetition
penalty processor, same stop tokens); tests compare the two token for token.

Qwen2.5-VL places image tokens by (t, h, w): the positions for the whole prompt are computed
once and the slice after the cached prefix is passed in, so a cached prefix never shifts
where the image sits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Decoded:
    token_ids: list[int]
    # Milliseconds: "prefill" (vision + prompt forward + first token), "decode" (the rest).
    timings: dict[str, float] = field(default_factory=dict)
    reused_tokens: int = 0


class GreedyDecoder:
    def __init__(self, model: Any, stop_ids: list[int], repetition_penalty: float | None,
                 system_end_id: int, reuse_prefix: bool = True) -> None:
        import torch
        from transformers import RepetitionPenaltyLogitsProcessor

        self._torch = torch
        self.model = model
        self.stop_ids = set(stop_ids)
        penalty = repetition_penalty or 1.0
        self._penalty = RepetitionPenaltyLogitsProcessor(penalty) if penalty != 1.0 else None
        self.reuse_prefix = reuse_prefix
        # The system turn ends at its <|im_end|>: the first one in the prompt.
        self.system_end_id = system_end_id
        self._cache: Any = None
        self._prefix_ids: Any = None

    def decode(self, inputs: dict[str, Any], max_new_tokens: int, sync=lambda: None) -> Decoded:
        torch = self._torch
        ids = inputs["input_ids"]
        length = ids.shape[1]
        prefix_length = self._system_turn_length(ids)
        network = self.model.model
        positions, deltas = network.get_rope_index(
            ids, mm_token_type_ids=inputs["mm_token_type_ids"], image_grid_thw=inputs["image_grid_thw"],
            attention_mask=inputs["attention_mask"],
        )
        network.rope_deltas = deltas
        cache, start = self._cache_for(ids, prefix_length)

        started = time.perf_counter()
        output = self.model(
            input_ids=ids[:, start:],
            position_ids=positions[:, :, start:],
            pixel_values=inputs["pixel_values"],
            image_grid_thw=inputs["image_grid_thw"],
            mm_token_type_ids=inputs["mm_token_type_ids"][:, start:],
            past_key_values=cache,
            cache_position=torch.arange(start, length, device=ids.device),
            use_cache=True,
        )
        seen = ids
        token = self._pick(seen, output.logits[:, -1, :])
        sync()
        first_token_at = time.perf_counter()
        generated = [token]
        while token not in self.stop_ids and len(generated) < max_new_tokens:
            step = torch.tensor([[token]], device=ids.device)
            seen = torch.cat([seen, step], dim=1)
            output = self.model(
                input_ids=step,
                past_key_values=cache,
                cache_position=torch.tensor([seen.shape[1] - 1], device=ids.device),
                use_cache=True,
            )
            token = self._pick(seen, output.logits[:, -1, :])
            generated.append(token)
        sync()
        finished = time.perf_counter()
        return Decoded(
            token_ids=generated,
            timings={"prefill": (first_token_at - started) * 1000, "decode": (finished - first_token_at) * 1000},
            reused_tokens=start,
        )

    def _cache_for(self, ids: Any, prefix_length: int) -> tuple[Any, int]:
        """The cache to extend and where the new tokens start: the cropped system-turn cache
        when this prompt begins with the same system turn, else a fresh cache."""
        from transformers import DynamicCache

        torch = self._torch
        prefix = ids[:, :prefix_length]
        if (self.reuse_prefix and self._cache is not None and prefix_length > 0
                and self._prefix_ids is not None and self._prefix_ids.shape == prefix.shape
                and torch.equal(self._prefix_ids, prefix)):
            extra = self._cache.get_seq_length() - prefix_length
            if extra > 0:
                self._cache.crop(-extra)  # transformers 5: a negative count of tokens to drop
            return self._cache, prefix_length
        cache = DynamicCache(config=self.model.config)
        if self.reuse_prefix:
            self._cache, self._prefix_ids = cache, prefix.clone()
        return cache, 0

    def _system_turn_length(self, ids: Any) -> int:
        """Tokens up to and including the first <|im_end|>; 0 when there is none."""
        ends = (ids[0] == self.system_end_id).nonzero()
        return int(ends[0, 0]) + 1 if len(ends) else 0

    def _pick(self, seen: Any, logits: Any) -> int:
        if self._penalty is not None:
            logits = self._penalty(seen, logits)
        return int(logits.argmax(dim=-1)[0])
