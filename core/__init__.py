"""xaudit: explain machine-learning models and show whether the explanations can be trusted.

Public API::

    import xaudit
    model = xaudit.adapt(estimator)                       # -> xaudit.Model
    exp = xaudit.explain(model, X)                        # method="auto" by default
    exp.to_shap(), exp.to_frame(), exp[:, "bmi"]          # shap, pandas, selections
    res = xaudit.check("completeness", model, exp)        # -> xaudit.CheckResult
    audit = xaudit.run_suite("suite.yaml")                # or a mapping with in-memory objects
    xaudit.render(audit, "out/")                          # or one explanation or check result
    exp = xaudit.from_shap(shap_explanation)              # check and report shap's values

Importing xaudit imports no ML framework (torch, onnxruntime, weasyprint, scikit-learn).
"""

from __future__ import annotations

from .api import adapt, check, explain, from_shap, render, run_suite
from .data import Dataset
from .errors import (
    AttributionError,
    CapabilityError,
    InputError,
    ModelLoadError,
    OutputError,
    PluginError,
    SuiteError,
    UnknownNameError,
    WriteError,
    XauditError,
)
from .exitcodes import ExitCode
from .explanation import Attribution, Explanation
from .hookspecs import hookimpl
from .host import Host, create_host
from .model import Capability, InputSpec, Model, ModelBase
from .plugin import (
    Adapter,
    AdapterOptions,
    Check,
    CheckOutcome,
    Explainer,
    PluginParams,
    ReportSection,
)
from .results import AuditResult, CheckResult
from .suite import Suite, load_suite
from .version import __version__

__all__ = [
    "Adapter", "AdapterOptions", "Attribution", "AttributionError", "AuditResult", "Capability",
    "CapabilityError", "Check", "CheckOutcome", "CheckResult", "Dataset", "ExitCode",
    "Explainer", "Explanation", "Host", "InputError", "InputSpec", "Model", "ModelBase",
    "ModelLoadError", "OutputError", "PluginError", "PluginParams", "ReportSection", "Suite",
    "SuiteError", "UnknownNameError", "WriteError", "XauditError", "__version__", "adapt",
    "check", "create_host", "explain", "from_shap", "hookimpl", "load_suite", "render",
    "run_suite",
]
