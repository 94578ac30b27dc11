"""Package layout: the four top-level folders map onto one import package, ``xaudit``.

``core/`` is ``xaudit``, ``adapters/`` ``xaudit.adapters``, ``plugins/`` ``xaudit.plugins`` and
``reports/`` ``xaudit.reports``. Every subpackage below them (a folder with ``__init__.py``) is
found here, so a new family folder can never silently drop out of the wheel; everything else
lives in ``pyproject.toml``.
"""

from setuptools import find_packages, setup

FOLDERS = {"xaudit": "core", "xaudit.adapters": "adapters", "xaudit.plugins": "plugins",
           "xaudit.reports": "reports"}
RESOURCES = ["xaudit.reports.templates", "xaudit.reports.static"]
"""Folders of data files (no ``__init__.py``), declared as packages so that setuptools ships
them without warning; their files are listed under package-data in ``pyproject.toml``."""


def packages() -> list[str]:
    """Every package under the four folders, as its ``xaudit.*`` import name, and the
    resource folders."""
    found = []
    for package, folder in FOLDERS.items():
        found.append(package)
        found += [f"{package}.{sub}" for sub in find_packages(folder)]
    return found + RESOURCES


setup(
    package_dir=dict(FOLDERS),
    packages=packages(),
)
