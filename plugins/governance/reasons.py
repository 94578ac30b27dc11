"""The adverse-action reasons a suite issues, counted per feature, as the report states them.

A row is adverse when the model's output named by ``documentation.decision`` is on its adverse
side of the threshold; its principal reasons are the (at most four) features whose attributions
pushed that output furthest towards the adverse side (:mod:`xaudit.reports.decisions`, the
same code the report's local section uses). The outputs are the model's own, predicted here on
the explained rows. A reason is documented when a statement can be issued for it: a plain
reason code, or the directional one for the side of the background mean its value is on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from xaudit.data import background_means
from xaudit.errors import InputError
from xaudit.explanation import Explanation
from xaudit.model import Model
from xaudit.reports.analysis import used_features
from xaudit.reports.decisions import decision_slots, is_adverse, principal_reasons
from xaudit.suite import DocumentationSpec


@dataclass(frozen=True)
class Issued:
    """Reasons issued over the explained rows: per feature, the adverse rows it is given for."""

    counts: dict[str, int]
    adverse: int
    rows: int
    undocumented: dict[str, int]
    """Per feature, the adverse rows it is given for without a statement that can be issued."""


def decisions(n: int) -> str:
    """``1 adverse decision``, ``12 adverse decisions``."""
    return f"{n} adverse decision{'' if n == 1 else 's'}"


def issued_reasons(model: Model, explanation: Explanation,
                   documentation: DocumentationSpec | None, name: str,
                   background: np.ndarray | None = None) -> Issued:
    """Every principal reason the suite's decision rule issues on ``explanation``'s rows; a
    clear error when the suite documents no decision rule. ``background`` gives the means
    directional statements are judged against (without it, none can be issued)."""
    decision = None if documentation is None else documentation.decision
    if decision is None:
        raise InputError(f"{name} needs the suite's decision rule to know which reasons are "
                         "issued: add documentation.decision (output, adverse side, "
                         "threshold)")
    slots = decision_slots(explanation, model.output_names, decision)
    if np.all(slots < 0):
        raise InputError(f"{name}: the decision's output {decision.output!r} is not among "
                         f"the explained outputs ({', '.join(explanation.output_names)})")
    outputs = model.predict(explanation.inputs)
    codes = documentation.reason_codes if documentation is not None else {}
    references = background_means(background, explanation.feature_names)
    counts: Counter[str] = Counter()
    undocumented: Counter[str] = Counter()
    adverse = 0
    for row, slot in enumerate(slots.tolist()):
        if slot < 0:
            continue
        value = float(outputs[row, explanation.target_indices[row, slot]])
        if not is_adverse(value, decision):
            continue
        adverse += 1
        used = used_features(explanation, slot)
        reasons = principal_reasons(explanation, row, slot, decision, used, codes, references)
        counts.update(r.feature for r in reasons)
        undocumented.update(r.feature for r in reasons if not r.coded)
    return Issued(dict(counts), adverse, explanation.n_rows, dict(undocumented))
