"""The documentation items the regulatory mapping assesses, each paraphrased in our words.

Sources: Regulation (EU) 2024/1689 (the AI Act), Annex IV (technical documentation, points 1 to
9 with the sub-points of 1 and 2) and Art. 13(3)(b)(iv); Federal Reserve / OCC SR 11-7
(supervisory guidance on model risk management, 2011); Regulation (EU) 2016/679 (GDPR) Art.
15(1)(h) and 22; Regulation B, 12 CFR 1002.9(b)(2) (ECOA adverse-action notices); NIST AI
100-1 (AI Risk Management Framework 1.0, 2023), MEASURE 2.9.
"""

from __future__ import annotations

from .regulatory import RegulatoryItem

AI_ACT = "Regulation (EU) 2024/1689"
SR_11_7 = "Federal Reserve / OCC supervisory guidance (2011)"


def _annex(point: str, requirement: str, needs: tuple[str, ...] = (),
           sections: tuple[str, ...] = (), outside: str = "") -> RegulatoryItem:
    return RegulatoryItem("EU AI Act", f"EU AI Act, Annex IV {point}", AI_ACT, requirement,
                          needs, sections, outside)


ANNEX_IV: tuple[RegulatoryItem, ...] = (
    _annex("1(a)", "Intended purpose, the provider, and the version of the system.",
           ("intended_use", "provider", "model_identified"), ("cover", "model")),
    _annex("1(b)", "How the system interacts with hardware or software outside it.",
           outside="how the system is integrated is the provider's design; the audit sees one "
                   "model through its predict function"),
    _annex("1(c)", "Versions of the relevant software and requirements for updates.",
           ("software_versions",), ("reproducibility",)),
    _annex("1(d)", "The forms in which the system is placed on the market or put into service.",
           outside="distribution (package, API, embedded) is the provider's decision"),
    _annex("1(e)", "The hardware the system is intended to run on.",
           outside="target hardware is the provider's; the audit records only the machine it "
                   "ran on"),
    _annex("1(f)", "For a product component: photographs or illustrations of the product.",
           outside="product documentation, not model evidence"),
    _annex("1(g)", "The user interface provided to the deployer.",
           outside="the deployer's interface is not part of the audited model"),
    _annex("1(h)", "Instructions for use for the deployer.",
           outside="instructions for use are the provider's document; the intended use and "
                   "out-of-scope uses shown here can feed them"),
    _annex("2(a)", "Methods and steps of development, including third-party or pre-trained "
                   "components.",
           outside="the development process is the provider's record; the audit starts from "
                   "the finished model"),
    _annex("2(b)", "Design: general logic of the system and its algorithms, key choices and "
                   "the relevance of the parameters.",
           ("global_explanations", "explanation_checks"), ("methods", "global", "faithfulness")),
    _annex("2(c)", "System architecture and the computational resources used to develop, "
                   "train, test and validate it.",
           outside="the architecture of the whole system and the compute spent on it are the "
                   "provider's records"),
    _annex("2(d)", "Data: datasheets, provenance, scope, main characteristics, selection, "
                   "labelling and cleaning.",
           ("data_described", "data_split"), ("data",)),
    _annex("2(e)", "Human oversight measures, including technical measures that help deployers "
                   "interpret the outputs.",
           ("local_explanations", "global_explanations", "explanation_checks"),
           ("global", "local", "faithfulness")),
    _annex("2(f)", "Pre-determined changes to the system and how continued compliance is "
                   "ensured.",
           ("baseline_comparison",), ("summary",)),
    _annex("2(g)", "Validation and testing: data, metrics (accuracy, robustness, "
                   "discriminatory impact), test logs and dated, signed test reports.",
           ("gated_results", "performance", "signoff"), ("summary", "faithfulness", "signoff")),
    _annex("2(h)", "Cybersecurity measures.",
           outside="the system's cybersecurity is the provider's; the audit only makes its own "
                   "results tamper-evident (manifest.json)"),
    _annex("3", "Capabilities and limitations in performance, including accuracy for groups "
                "of persons, foreseeable unintended outcomes and interpretation aids.",
           ("performance", "performance_per_group", "out_of_scope", "local_explanations"),
           ("summary", "limitations", "local")),
    _annex("4", "Why the performance metrics are appropriate for this system.",
           ("performance", "performance_gated"), ("summary",)),
    _annex("5", "The risk-management system under Article 9.",
           outside="risk management is the provider's process; this report is one input to it"),
    _annex("6", "Relevant changes made to the system through its lifecycle.",
           ("baseline_comparison",), ("summary",)),
    _annex("7", "Harmonised standards applied, or the solutions adopted instead.",
           outside="the choice of standards is the provider's conformity strategy"),
    _annex("8", "A copy of the EU declaration of conformity (Article 47).",
           outside="the declaration is signed by the provider, after the conformity assessment"),
    _annex("9", "The post-market monitoring system and plan (Article 72).",
           outside="post-market monitoring is the provider's and deployer's process; rerunning "
                   "this suite against a baseline can be one of its measures"),
)

ITEMS: tuple[RegulatoryItem, ...] = (
    *ANNEX_IV,
    RegulatoryItem("EU AI Act", "EU AI Act, Art. 13(3)(b)(iv)", AI_ACT,
                   "Technical capabilities that provide information to explain the output.",
                   ("local_explanations", "global_explanations"), ("methods", "global", "local")),
    RegulatoryItem("SR 11-7", "SR 11-7: conceptual soundness", SR_11_7,
                   "Design and theory of the method, evidence it fits its purpose, and its "
                   "limits.", ("global_explanations", "explanation_checks", "out_of_scope"),
                   ("methods", "faithfulness", "limitations")),
    RegulatoryItem("SR 11-7", "SR 11-7: ongoing monitoring", SR_11_7,
                   "Checks rerun over time to show the model still performs as intended.",
                   ("gated_results", "baseline_comparison"), ("summary", "reproducibility")),
    RegulatoryItem("SR 11-7", "SR 11-7: outcomes analysis", SR_11_7,
                   "Model outputs compared with actual outcomes (performance, back-testing).",
                   ("performance", "performance_gated"), ("summary",)),
    RegulatoryItem("SR 11-7", "SR 11-7: effective challenge", SR_11_7,
                   "Validation by a competent party independent of development.",
                   ("independent_review",), ("signoff",)),
    RegulatoryItem("GDPR", "GDPR Art. 15(1)(h) and Art. 22", "Regulation (EU) 2016/679",
                   "Meaningful information about the logic involved in automated decisions, "
                   "and their significance and envisaged consequences.",
                   ("local_explanations", "global_explanations", "intended_use"),
                   ("local", "global", "cover")),
    RegulatoryItem("Regulation B", "Regulation B, 12 CFR 1002.9(b)(2)",
                   "Equal Credit Opportunity Act, CFPB",
                   "A statement of the specific principal reasons for each adverse action.",
                   ("decision_rule", "local_explanations", "reason_statements"), ("local",)),
    RegulatoryItem("NIST AI RMF", "NIST AI RMF, MEASURE 2.9", "NIST AI 100-1 (2023)",
                   "The model is explained, validated and documented, and its output "
                   "interpreted in its context.",
                   ("global_explanations", "local_explanations", "explanation_checks",
                    "intended_use"), ("methods", "global", "local", "faithfulness")),
)
"""Every item the mapping shows, in the order the report lists them."""
