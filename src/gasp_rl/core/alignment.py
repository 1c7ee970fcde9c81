"""Goalpost alignment: how much is a lemma about the goalpost it was proposed for?  (beyond the
paper: GASP conditions the lemma prompt on a goalpost but never checks that the lemma is a
stepping stone toward it.)

Two scores, both logged per proposal:

- **embedding** (:func:`embedding_alignment`), with the embedder seam: the cosine to the lemma's
  own goalpost, normalised against the other goalposts of the same set,

      margin = cos(e(l), e(g)) - mean_{g' != g} cos(e(l), e(g'))
      rank   = |{g' != g : cos(e(l), e(g')) < cos(e(l), e(g))}| / |{g' != g}|

  ``margin`` > 0 when the lemma is closer to its goalpost than to a typical other one; ``rank`` is
  1 when it is closer to its own than to every other.  Normalising removes what all programs
  share (``def f(``, ``return``), which dominates raw cosines of small models and n-gram hashes.
- **judge** (:func:`judge_prompt`, :func:`parse_judge_score`): an LLM, through any Generator (the
  OpenAI-compatible backend), rates 0-10 how much solving the lemma helps with the goalpost; the
  score is divided by 10.  Off by default (``gasp.alignment_judge``).

``gasp.alignment_weight`` (0 = off, as in the paper) adds ``weight * score`` to a lemma's reward,
``score`` being the margin (or the judge's score when the judge is on).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from string import Template

import numpy as np

from gasp_rl.core.novelty import normalize_rows


@dataclass(frozen=True)
class Alignment:
    cosine: float  # to the lemma's own goalpost
    margin: float
    rank: float

    def to_dict(self) -> dict[str, float]:
        return {"cosine": round(self.cosine, 4), "margin": round(self.margin, 4), "rank": round(self.rank, 4)}


def embedding_alignment(lemmas: np.ndarray, goalposts: np.ndarray, own: Sequence[int]) -> list[Alignment]:
    """Alignment of each lemma row ``i`` to goalpost row ``own[i]``, against the other goalposts.

    ``lemmas``: (n, d) embeddings; ``goalposts``: (m, d) embeddings, m >= 2."""
    if len(goalposts) < 2:
        raise ValueError("alignment is normalised against other goalposts: need at least 2")
    if len(lemmas) != len(own):
        raise ValueError(f"{len(lemmas)} lemmas but {len(own)} goalpost indices")
    if len(lemmas) == 0:
        return []
    sims = normalize_rows(lemmas) @ normalize_rows(goalposts).T  # (n, m)
    out = []
    for i, g in enumerate(own):
        row = sims[i]
        others = np.delete(row, g)
        out.append(
            Alignment(
                cosine=float(row[g]),
                margin=float(row[g] - others.mean()),
                rank=float((others < row[g]).mean()),
            )
        )
    return out


def lemma_text(code: str, message: str = "") -> str:
    """What the embedder sees of a lemma: its program and its message."""
    return f"{code}\n# {message}" if message else code


#: The judge's prompt; ``$goalpost`` is the goalpost's statement, ``$lemma`` the lemma's program and
#: message.  The reply must end with ``Score: <0-10>``.
JUDGE_TEMPLATE = Template(
    """You are reviewing a curriculum for learning to program.

Target problem (what the learner must eventually solve):
$goalpost

Practice task (a simpler program proposed as a stepping stone):
$lemma

How much does mastering the practice task help with the target problem? Consider whether it
exercises the same data types, operations and ideas. Reply with one sentence of reasoning, then a
last line of the form
Score: <an integer from 0 (unrelated) to 10 (a direct stepping stone)>"""
)

_SCORE = re.compile(r"score\s*[:=]\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def judge_prompt(goalpost: str, lemma_code: str, message: str = "") -> list[dict[str, str]]:
    """The judge's chat for one (goalpost, lemma) pair."""
    return [
        {
            "role": "user",
            "content": JUDGE_TEMPLATE.substitute(
                goalpost=goalpost.strip(), lemma=lemma_text(lemma_code, message)
            ),
        }
    ]


def parse_judge_score(reply: str) -> float | None:
    """The last ``Score: k`` of a judge reply as k / 10 in [0, 1], or None when there is none or it is
    out of range."""
    found = _SCORE.findall(reply or "")
    if not found:
        return None
    k = float(found[-1])
    return k / 10.0 if 0.0 <= k <= 10.0 else None
