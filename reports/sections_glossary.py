"""Section "Glossary": the technical terms this report uses, in plain words.

Each term is listed only when the audit it explains uses it (a method, check or documented
decision that ran), so a reader of an image audit is not given LIME's R² and a reader of a
tabular audit is not given Grad-CAM. The definitions are the project's own wording.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..results import AuditResult
from .section_base import ContextualSection


@dataclass(frozen=True)
class Term:
    """One glossary entry and when it applies."""

    term: str
    definition: str
    used: Callable[[AuditResult], bool]


def _methods(result: AuditResult) -> set[str]:
    return {e.method for e in result.explanations.values()}


def _method(*prefixes: str) -> Callable[[AuditResult], bool]:
    return lambda result: any(m.startswith(prefixes) for m in _methods(result))


def _check(*names: str) -> Callable[[AuditResult], bool]:
    return lambda result: any(c.check.startswith(names) for c in result.checks)


def _always(result: AuditResult) -> bool:
    return bool(result.explanations or result.checks)


TERMS: tuple[Term, ...] = (
    Term("Attribution", "A number per input feature (or pixel, or token) saying how much that "
         "input moved the model's output for one case, in the output's own units. Positive "
         "attributions pushed the output up, negative ones pushed it down.", _always),
    Term("Local and global explanation", "A local explanation is about one case (why this "
         "patient got this score); a global one summarises the model over many cases (which "
         "features matter most on average).", _always),
    Term("Base value", "The output the explanation starts from before any feature is "
         "considered, usually the model's average output over the background data; the "
         "attributions of a case add up to its output minus the base value.",
         lambda r: any(e.base_values is not None for e in r.explanations.values())),
    Term("Background data and baseline", "The reference the model is compared against when a "
         "feature is 'removed': a sample of ordinary cases (background) or a fixed input such "
         "as all zeros or a blurred image (baseline). Attributions answer 'compared with "
         "what?', and the answer is this reference.", _always),
    Term("SHAP value", "The attribution given by the Shapley value of cooperative game theory: "
         "each feature's contribution averaged over every order in which features could be "
         "added to the reference. It is the only attribution that is fair in that precise "
         "sense and adds up exactly to the output (Lundberg and Lee 2017).",
         _method("shap.", "gradient.expected", "deep.shap")),
    Term("Surrogate model (LIME)", "A simple linear model fitted to the black-box model's "
         "answers on made-up cases near the one being explained; its weights are read as the "
         "explanation. It is only as good as its fit (see R²).", _method("lime.")),
    Term("R² (coefficient of determination)", "The share of the variation in a quantity that "
         "a fitted model reproduces: 1 is a perfect fit, 0 is no better than always "
         "predicting the average. Used here for the model's accuracy on held-out data and for "
         "how well a local surrogate matches the model.",
         lambda r: _method("lime.")(r) or _check("performance.r2")(r)),
    Term("Gradient-based attribution", "An attribution computed from how steeply the output "
         "changes when an input changes (saliency, integrated gradients, Grad-CAM); it needs a "
         "differentiable model such as a neural network.",
         _method("gradient.", "deeplift", "gradcam", "shap.gradient", "deep.")),
    Term("Attribution map", "An attribution per pixel drawn as colours over the image; the "
         "caption and colour bar of each map say which colours mean what.",
         lambda r: any(len(e.feature_shape) in (2, 3) for e in r.explanations.values())),
    Term("Partial dependence", "The model's average output when one feature is set to each "
         "value on a grid for every case, showing how the output tends to change with that "
         "feature.", _method("pdp")),
    Term("Permutation importance", "How much the model's score drops when one feature's "
         "values are shuffled between cases, breaking its link with the outcome.",
         _method("permutation_importance")),
    Term("Counterfactual", "A nearby, changed version of a case for which the model gives a "
         "different decision: 'had these values been these, the outcome would have been "
         "that'. It describes the model, not what would happen in the world.",
         _method("counterfactual")),
    Term("Faithfulness", "Whether an explanation reflects what the model actually does, tested "
         "by changing the inputs the explanation calls important and watching the output.",
         lambda r: bool(r.checks)),
    Term("Completeness (local accuracy)", "The property that a case's attributions plus the "
         "base value equal the model's output; the check measures the gap.",
         _check("completeness")),
    Term("Deletion and insertion curves", "The model's output as the most important inputs "
         "(by the explanation) are removed one step at a time, or added to an empty input. A "
         "faithful explanation makes the output fall (or rise) faster than doing the same in "
         "random order.", _check("deletion", "insertion")),
    Term("Sanity check (randomization)", "The model's learned parameters or training labels "
         "are scrambled and the explanation computed again; an explanation that barely changes "
         "does not depend on what the model learned (Adebayo et al. 2018).",
         _check("model_randomization")),
    Term("Rank correlation (Spearman)", "How similarly two lists order the same features: 1 "
         "is the same order, 0 unrelated, -1 reversed. Used to compare explainers, repeated "
         "runs, and explanations before and after randomization.",
         _check("agreement", "stability", "model_randomization")),
    Term("Gate and threshold", "A check's pass mark: the measured value is compared with the "
         "threshold in the stated direction, and the run fails (in CI, exits non-zero) when a "
         "gate fails.", lambda r: any(c.threshold is not None for c in r.checks)),
    Term("Confidence interval and bootstrap", "A range that, over repeated sampling, contains "
         "the true value at the stated rate (for example 95%). The bootstrap estimates it by "
         "recomputing a figure on many resamples of the cases.", _always),
)


class GlossarySection(ContextualSection):
    """The terms this report uses, each in a sentence or two."""

    name = "glossary"
    title = "Glossary"
    order = 112
    template = "section_glossary.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """The terms that apply to this audit, in reading order."""
        terms = [t for t in TERMS if t.used(result)]
        if not terms:
            return self.not_applicable("no explainer or check ran")
        decision = self.render.documentation is not None and \
            self.render.documentation.decision is not None
        rows = [(t.term, t.definition) for t in terms]
        if decision:
            rows.append(("Adverse decision and principal reasons", "A decision the documented "
                         "rule counts as unfavourable to the person (here: output on the "
                         "adverse side of the threshold), and the few features that pushed the "
                         "output furthest that way, stated in words from the reason-code "
                         "dictionary."))
        return {"terms": rows}
