"""xaudit-shap-partition: shap's PartitionExplainer (Owen values) as an xaudit explainer.

The module is the plugin: ``pyproject.toml`` points the ``xaudit`` entry-point group at it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xaudit import hookimpl

from .owen import OwenParams, OwenValues

if TYPE_CHECKING:
    from xaudit import Explainer
    from xaudit.registry import Registry

__version__ = "0.1.0"
__all__ = ["OwenParams", "OwenValues"]


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``shap_partition.owen``."""
    registry.add(OwenValues)
