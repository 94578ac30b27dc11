"""Policy checks on attributions: what an approved model's explanation must (not) look like.

- ``concentration``: the largest share of the total mean absolute attribution held by one
  feature (``max_j I_j / sum I``, per output slot, the worst slot gated); lower is better. One
  feature holding most of the attribution is the signature of a target leak or an identifier
  (Kaufman et al. 2012 on leakage).
- ``forbidden_features``: the number of named features (protected attributes, identifiers)
  found in the top ``top_k`` of global importance or among the principal reasons of any adverse
  decision issued under the suite's ``documentation.decision``; lower is better (gate at 0).
- ``reason_codes_complete``: the number of features issued as a principal reason without a
  documented statement in ``documentation.reason_codes``; lower is better (gate at 0).
  Adverse-action notices must state specific reasons (Regulation B, 12 CFR 1002.9(b)(2)).

Reasons are issued as the report issues them (:mod:`xaudit.plugins.governance.reasons`).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from xaudit.data import Dataset
from xaudit.errors import InputError
from xaudit.explanation import Explanation
from xaudit.handoff import CheckHandoff
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Check, CheckOutcome, PluginParams
from xaudit.plugins.governance.attribution import importance, per_output, percent, ranks, shares
from xaudit.plugins.governance.reasons import decisions, issued_reasons
from xaudit.registry import Registry


class Concentration(Check):
    """The largest share of the attribution held by one feature."""

    name = "concentration"
    summary = "Largest share of the total mean |attribution| held by a single feature."
    description = (
        "Each feature's share of the total mean absolute attribution over the explained rows; "
        "the value is the largest share, between 1/d (evenly spread) and 1 (one feature "
        "decides everything). One feature holding most of the attribution often is a target "
        "leak or an identifier. Lower is better.")
    paper = "Kaufman et al. 2012 (leakage in data mining)"
    direction = "lower"

    def run(self, model: Model, explanation: Explanation, data: Dataset,
            rng: np.random.Generator) -> CheckOutcome:
        """The largest share, naming the feature; the five largest shares in the details."""
        share = shares(per_output(explanation, self.name))  # (k, d)
        slot = int(np.argmax(share.max(axis=1)))
        order = np.lexsort((np.arange(share.shape[1]), -share[slot]))
        feature = explanation.feature_names[order[0]]
        where = (f" for output {explanation.output_names[slot]}"
                 if share.shape[0] > 1 else "")
        return CheckOutcome(float(share[slot, order[0]]), details={
            "feature": feature, "output": explanation.output_names[slot],
            "largest_shares": {explanation.feature_names[j]: float(share[slot, j])
                               for j in order[:5]}},
            handoff=CheckHandoff(statements=(
                f"{feature} holds {percent(float(share[slot, order[0]]))} of all "
                f"attribution{where}.",)))


class ForbiddenParams(PluginParams):
    """Parameters of ``forbidden_features``."""

    features: list[str] = Field(min_length=1)
    """Features that must not drive the model: protected attributes, identifiers."""
    top_k: int = Field(5, ge=1)
    """They must not be among this many features of largest mean absolute attribution."""
    reasons: bool = True
    """Nor among the principal reasons of an adverse decision (needs documentation.decision)."""


class ForbiddenFeatures(Check):
    """Named features in the top k of global importance or among adverse-action reasons."""

    name = "forbidden_features"
    summary = "Forbidden features (protected, identifiers) in the top k or in issued reasons."
    description = (
        "The named features must not be among the top features by mean absolute attribution, "
        "nor among the principal reasons given for an adverse decision under the suite's "
        "decision rule. The value is the number of named features found in either; lower is "
        "better, and a gate at 0 forbids them.")
    paper = "Regulation B, 12 CFR 1002.2(z) and 1002.6(b) (prohibited bases)"
    Params = ForbiddenParams
    params: ForbiddenParams
    direction = "lower"

    def run(self, model: Model, explanation: Explanation, data: Dataset,
            rng: np.random.Generator) -> CheckOutcome:
        """How many named features appear; where each appears in the details."""
        p, names = self.params, explanation.feature_names
        unknown = [f for f in p.features if f not in names]
        if unknown:
            raise InputError(f"{self.name}: {', '.join(unknown)} is not a feature of this "
                             f"explanation (features: {', '.join(names)}); fix the name")
        scores = importance(per_output(explanation, self.name)).max(axis=0)  # any output slot
        rank = ranks(scores)
        in_top = {f: int(rank[names.index(f)]) for f in p.features
                  if rank[names.index(f)] <= p.top_k and scores[names.index(f)] > 0}
        statements = [f"{f} is rank {r} of the features by mean absolute attribution (top "
                      f"{p.top_k} forbidden)." for f, r in in_top.items()]
        details: dict[str, object] = {"features": p.features, "top_k": p.top_k,
                                      "in_top_k": in_top}
        found = set(in_top)
        if p.reasons:
            documentation = self.context.documentation if self.context else None
            issued = issued_reasons(model, explanation, documentation, self.name)
            in_reasons = {f: issued.counts[f] for f in p.features if f in issued.counts}
            found |= set(in_reasons)
            details.update(in_reasons=in_reasons, adverse_rows=issued.adverse)
            statements += [f"{f} is given as a principal reason for {n} of "
                           f"{decisions(issued.adverse)}." for f, n in in_reasons.items()]
        if not found:
            where = " or given as a reason" if p.reasons else ""
            statements = [f"None of {', '.join(p.features)} is in the top {p.top_k} features"
                          f"{where}."]
        return CheckOutcome(float(len(found)), details=details,
                            handoff=CheckHandoff(statements=tuple(statements)))


class ReasonCodesComplete(Check):
    """Every principal reason issued has a documented adverse-action statement."""

    name = "reason_codes_complete"
    summary = "Reasons issued for adverse decisions that have no documented statement."
    description = (
        "The principal reasons of every adverse decision under the suite's decision rule are "
        "looked up in the documented reason codes; the value is the number of features given "
        "as a reason without a statement to send (a directional code needs the statement for "
        "the side of the background mean the value is on). Lower is better; a gate at 0 "
        "requires every reason to be documented.")
    paper = "Regulation B, 12 CFR 1002.9(b)(2) (statement of specific reasons)"
    direction = "lower"

    def run(self, model: Model, explanation: Explanation, data: Dataset,
            rng: np.random.Generator) -> CheckOutcome:
        """How many issued reasons lack a statement, naming them."""
        documentation = self.context.documentation if self.context else None
        issued = issued_reasons(model, explanation, documentation, self.name,
                                data.background)
        missing = dict(sorted(issued.undocumented.items()))
        statements = [f"{f} is given as a principal reason for {decisions(n)} without a "
                      "documented statement for its value's direction "
                      "(documentation.reason_codes)." for f, n in missing.items()]
        if not missing:
            statements = [f"Every reason issued ({len(issued.counts)} feature(s) over "
                          f"{decisions(issued.adverse)}) has a documented statement."]
        return CheckOutcome(float(len(missing)), details={
            "undocumented": missing, "issued": issued.counts, "adverse_rows": issued.adverse,
            "rows": issued.rows}, handoff=CheckHandoff(statements=tuple(statements)))


@hookimpl
def xaudit_register_checks(registry: Registry[Check]) -> None:
    """Register ``concentration``, ``forbidden_features`` and ``reason_codes_complete``."""
    registry.add(Concentration)
    registry.add(ForbiddenFeatures)
    registry.add(ReasonCodesComplete)
