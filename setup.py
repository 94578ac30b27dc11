"""Package layout: the four top-level folders map onto one import package, ``xaudit``.

``core/`` is ``xaudit``, ``adapters/`` ``xaudit.adapters``, ``plugins/`` ``xaudit.plugins`` and
``reports/`` ``xaudit.reports``. Every subpackage below them (a folder with ``__init__.py``) is
found here, so a new family folder can never silently drop out of the wheel; everything else
lives in ``pyproject.toml``.
"""

from pathlib import Path

from setuptools import find_packages, setup

FOLDERS = {"xaudit": "core", "xaudit.adapters": "adapters", "xaudit.plugins": "plugins",
           "xaudit.reports": "reports"}
RESOURCE_ROOTS = {"xaudit.reports": ("templates", "static"), "xaudit": ("scaffold/template",)}
"""Folders of data files (no ``__init__.py``) below a package. They and their subfolders are
declared as packages so that setuptools ships them without warning; which of their files
ship is listed under package-data in ``pyproject.toml``."""


def packages() -> list[str]:
    """Every package under the four folders, as its ``xaudit.*`` import name, and every
    resource folder."""
    found = []
    for package, folder in FOLDERS.items():
        found.append(package)
        found += [f"{package}.{sub}" for sub in find_packages(folder)]
    for package, roots in RESOURCE_ROOTS.items():
        base = Path(FOLDERS[package])
        for root in roots:
            for path in [base / root, *sorted((base / root).rglob("*"))]:
                if path.is_dir() and path.name != "__pycache__":
                    found.append(".".join([package, *path.relative_to(base).parts]))
    return found


setup(
    package_dir=dict(FOLDERS),
    packages=packages(),
)
