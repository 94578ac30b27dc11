"""``junit.xml``: one test case per check, so CI systems show each gate as a test.

The verdict is the run's (:mod:`xaudit.verdict`): a gate that warned under
``gate_policy.fail_on_warn`` is a ``<failure>`` here, as it failed the run. The test suite's
``<properties>`` identify what was audited (model, data and suite SHA-256, suite name, xaudit
version) and state the verdict, so a CI system's test view shows them beside the gates.

Every attribute and text passes through :func:`~xaudit.safe_text.printable`, so a control
character in a suite name, an id, a feature name or an exception message is written as a
visible escape and the document stays well-formed XML 1.0.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

from ..results import AuditResult, CheckResult
from ..safe_text import printable
from ..verdict import VERDICTS, fails_run, policy_note
from .analysis import errors

JUNIT_FILE = "junit.xml"


def properties(result: AuditResult) -> dict[str, str]:
    """The ``<properties>`` of the test suite, in order: what was audited and the verdict."""
    hashes = result.provenance.get("hashes", {})
    code = result.exit_code()
    return {
        "xaudit.suite": result.suite_name,
        "xaudit.suite_sha256": str(hashes.get("suite", "")),
        "xaudit.model_sha256": str(hashes.get("model", "")),
        "xaudit.data_sha256": str(hashes.get("data", "")),
        "xaudit.version": str(result.provenance.get("xaudit_version", "")),
        "xaudit.verdict": VERDICTS[code],
        "xaudit.exit_code": str(int(code)),
        "xaudit.fail_on_warn": str(result.gate_policy.fail_on_warn).lower(),
    }


def junit_tree(result: AuditResult) -> ET.ElementTree[ET.Element[str]]:
    """The JUnit document: gates fail or pass, ungated checks are skipped, crashes are errors."""
    counts = result.counts()
    n_errors = counts["checks_error"] + counts["explainers_crashed"]
    policy = result.gate_policy
    suite = ET.Element("testsuite", {
        "name": f"xaudit: {result.suite_name}",
        "tests": str(len(result.checks) + len(result.explainer_errors)),
        "failures": str(sum(fails_run(c.status, policy) for c in result.checks
                            if c.error is None)),
        "errors": str(n_errors),
        "skipped": str(counts["checks_not_gated"]),
        "time": f"{result.provenance.get('timings', {}).get('total_s', 0.0):.3f}",
        "timestamp": str(result.provenance.get("started_at", ""))[:19],
    })
    listed = ET.SubElement(suite, "properties")
    for name, value in properties(result).items():
        ET.SubElement(listed, "property", {"name": name, "value": value})
    for explainer_id, error in errors(result):
        case = ET.SubElement(suite, "testcase", {"classname": "xaudit.explainers",
                                                 "name": explainer_id, "time": "0"})
        node = ET.SubElement(case, "error", {"message": str(error), "type": error.type})
        node.text = error.traceback
    for check in result.checks:
        case = ET.SubElement(suite, "testcase", {
            "classname": f"xaudit.checks.{check.explainer}",
            "name": check.name,
            "time": f"{check.wall_time_s:.3f}",
        })
        note = policy_note(check.status, policy)
        if check.error is not None:
            node = ET.SubElement(case, "error", {"message": str(check.error),
                                                 "type": check.error.type})
            node.text = check.error.traceback
        elif fails_run(check.status, policy):
            node = ET.SubElement(case, "failure", {
                "message": f"{check.verdict()}; {note}" if note else check.verdict(),
                "type": "GateWarnedFailOnWarn" if note else "GateFailed"})
            node.text = _statements(check)
        elif check.status == "not_gated":
            ET.SubElement(case, "skipped", {"message": f"not gated; {check.verdict()}"})
        elif check.status == "warn":
            out = ET.SubElement(case, "system-out")
            out.text = f"WARNING {check.verdict()}\n{_statements(check)}".rstrip()
    suites = ET.Element("testsuites")
    suites.append(suite)
    for node in suites.iter():
        node.attrib = {key: printable(value) for key, value in node.attrib.items()}
        if node.text is not None:
            node.text = printable(node.text)
    return ET.ElementTree(suites)


def _statements(check: CheckResult) -> str:
    return "\n".join(check.handoff.statements)


def junit_bytes(result: AuditResult) -> bytes:
    """The bytes of ``junit.xml``: the indented document with its XML declaration."""
    tree = junit_tree(result)
    ET.indent(tree)
    buffer = io.BytesIO()
    tree.write(buffer, encoding="utf-8", xml_declaration=True)
    return buffer.getvalue()
