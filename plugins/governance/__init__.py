"""Governance checks: drift against the approved run, model performance, policy on attributions.

``drift`` (:class:`~xaudit.plugin.BaselineCheck` subclasses) compares an explanation with the
approved run's; ``performance`` (:class:`~xaudit.plugin.ModelCheck` subclasses) measures the
model on the held-out rows; ``policy`` states what an approved model's attributions must not
look like. See ``docs/governance.md``.
"""
