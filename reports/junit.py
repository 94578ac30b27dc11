"""``junit.xml``: one test case per check, so CI systems show each gate as a test.

Every attribute and text passes through :func:`~xaudit.safe_text.printable`, so a control
character in a suite name, an id, a feature name or an exception message is written as a
visible escape and the document stays well-formed XML 1.0.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

from ..results import AuditResult
from ..safe_text import printable
from .analysis import errors

JUNIT_FILE = "junit.xml"


def junit_tree(result: AuditResult) -> ET.ElementTree[ET.Element[str]]:
    """The JUnit document: gates fail or pass, ungated checks are skipped, crashes are errors."""
    counts = result.counts()
    n_errors = counts["checks_error"] + counts["explainers_crashed"]
    suite = ET.Element("testsuite", {
        "name": f"xaudit: {result.suite_name}",
        "tests": str(len(result.checks) + len(result.explainer_errors)),
        "failures": str(counts["checks_fail"]),
        "errors": str(n_errors),
        "skipped": str(counts["checks_not_gated"]),
        "time": f"{result.provenance.get('timings', {}).get('total_s', 0.0):.3f}",
        "timestamp": str(result.provenance.get("started_at", ""))[:19],
    })
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
        if check.error is not None:
            node = ET.SubElement(case, "error", {"message": str(check.error),
                                                 "type": check.error.type})
            node.text = check.error.traceback
        elif check.status == "fail":
            ET.SubElement(case, "failure", {"message": check.verdict(), "type": "GateFailed"})
        elif check.status == "not_gated":
            ET.SubElement(case, "skipped", {"message": f"not gated; {check.verdict()}"})
        elif check.status == "warn":
            out = ET.SubElement(case, "system-out")
            out.text = f"WARNING {check.verdict()}"
    suites = ET.Element("testsuites")
    suites.append(suite)
    for node in suites.iter():
        node.attrib = {key: printable(value) for key, value in node.attrib.items()}
        if node.text is not None:
            node.text = printable(node.text)
    return ET.ElementTree(suites)


def junit_bytes(result: AuditResult) -> bytes:
    """The bytes of ``junit.xml``: the indented document with its XML declaration."""
    tree = junit_tree(result)
    ET.indent(tree)
    buffer = io.BytesIO()
    tree.write(buffer, encoding="utf-8", xml_declaration=True)
    return buffer.getvalue()
