"""Package metadata for aspects-routing."""

import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read(*parts):
    with open(os.path.join(HERE, *parts), encoding="utf-8") as handle:
        return handle.read()


def version():
    return re.search(r'^__version__ = "([^"]+)"', read("aspects_routing", "__init__.py"), re.M).group(1)


def requirements(name):
    """Lines of requirements/<name>.in without comments, constraints or nested -r lines."""
    lines = []
    for line in read("requirements", name).splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            lines.append(line)
    return lines


setup(
    name="aspects-routing",
    version=version(),
    description="Routes, measures and sizes the Open edX Aspects pipeline (LMS/CMS plugin).",
    long_description=read("README.md"),
    long_description_content_type="text/markdown",
    author="aspects-routing maintainers",
    license="AGPL-3.0",
    license_files=["LICENSE"],
    project_urls={
        "Aspects documentation": "https://docs.openedx.org/projects/openedx-aspects/",
    },
    packages=find_packages(include=["aspects_routing", "aspects_routing.*"]),
    include_package_data=True,
    python_requires=">=3.11",
    install_requires=requirements("base.in"),
    extras_require={"chdb": requirements("chdb.in")},
    entry_points={
        "lms.djangoapp": ["aspects_routing = aspects_routing.apps:AspectsRoutingConfig"],
        "cms.djangoapp": ["aspects_routing = aspects_routing.apps:AspectsRoutingConfig"],
    },
    classifiers=[
        "Development Status :: 4 - Beta",
        "Operating System :: OS Independent",
        "Framework :: Celery",
        "Framework :: Django",
        "Framework :: Django :: 4.2",
        "Framework :: Django :: 5.2",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
    ],
)
