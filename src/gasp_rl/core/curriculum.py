"""Dynamic goalposts: the goalpost set moves with the model (beyond the paper, whose goalposts are
fixed for the whole run; ``gasp.goalposts_refresh_every``, 0 = off).

Every K iterations the active goalposts are evaluated at pass@k with the current policy.  A solved
goalpost (pass@k > 0) is retired and replaced by a promotion: the next problem of the pool, in
pool order, that the current policy fails at pass@k (the goalpost filter, run on the current
checkpoint).  The number of active goalposts stays constant: when the pool has no failing problem
left, a solved goalpost stays active.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Refresh:
    """One refresh: what left, what came in, and the active set after it (same size as before)."""

    iteration: int
    retired: list[str] = field(default_factory=list)
    promoted: list[str] = field(default_factory=list)
    kept_solved: list[str] = field(default_factory=list)  # solved but no replacement was left
    active: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "iteration": self.iteration,
            "retired": list(self.retired),
            "promoted": list(self.promoted),
            "kept_solved": list(self.kept_solved),
            "active": list(self.active),
        }


def is_refresh_iteration(iteration: int, every: int) -> bool:
    """Refresh after iterations K, 2K, ... (never when ``every`` is 0)."""
    return every > 0 and iteration > 0 and iteration % every == 0


def plan_refresh(
    iteration: int,
    active: Sequence[str],
    solved: Sequence[str],
    failing_candidates: Sequence[str],
) -> Refresh:
    """Replace each solved active goalpost, in active order, with the next failing candidate.

    ``failing_candidates``: pool problems the current policy fails, in pool order (those already
    active are skipped).  Replacements take the retired goalpost's slot, so the order of the
    others is kept."""
    solved_set = set(solved)
    unknown = solved_set - set(active)
    if unknown:
        raise ValueError(f"solved goalposts that are not active: {sorted(unknown)}")
    fresh = [c for c in dict.fromkeys(failing_candidates) if c not in set(active)]
    out = Refresh(iteration)
    for gid in active:
        if gid in solved_set and fresh:
            new = fresh.pop(0)
            out.retired.append(gid)
            out.promoted.append(new)
            out.active.append(new)
        else:
            if gid in solved_set:
                out.kept_solved.append(gid)
            out.active.append(gid)
    return out


def next_candidates(pool: Sequence[str], seen: set[str], n: int) -> list[str]:
    """The next ``n`` pool problems never active nor evaluated before (pool order)."""
    return [p for p in pool if p not in seen][:n]
