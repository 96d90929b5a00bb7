# SPDX-License-Identifier: GPL-2.0-or-later
"""`make package` builds a zip that QGIS's "Install from ZIP" and plugins.qgis.org accept.

The upload checks are those plugins.qgis.org applies to an uploaded zip (its validator,
qgis/QGIS-Django ``plugins/validator.py``), written again here so a zip that the site
would refuse fails the test suite first. The addresses are only checked for form: the
site also fetches them, which needs a network the tests do not have.
"""
import configparser
import re
import subprocess
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tools.package_plugin import build_zip, plugin_files

REPO = Path(__file__).resolve().parent.parent
MAX_UPLOAD_BYTES = 25_000_000
#: Required by plugins.qgis.org, plus what QGIS's plugin manager and this plugin use.
REQUIRED_METADATA = (
    "name", "description", "version", "qgisMinimumVersion", "author", "email", "about", "tracker", "repository",
    "homepage", "tags", "category", "icon", "hasProcessingProvider", "experimental", "changelog",
    "qgisMaximumVersion", "supportsQt6",
)
#: The site's placeholder addresses, refused as they are (from the plugin builder's template).
PLACEHOLDER_URLS = {"tracker": "http://bugs", "repository": "http://repo", "homepage": "http://homepage"}


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory):
    return build_zip(tmp_path_factory.mktemp("dist") / "dubai_segmenter.zip")


@pytest.fixture(scope="module")
def metadata(plugin_zip):
    with zipfile.ZipFile(plugin_zip) as archive:
        parser = configparser.ConfigParser(interpolation=None)
        parser.optionxform = str
        parser.read_string(archive.read("dubai_segmenter/metadata.txt").decode("utf-8"))
    assert parser.has_section("general")
    return parser["general"]


def test_zip_passes_the_plugin_site_archive_checks(plugin_zip):
    assert plugin_zip.stat().st_size <= MAX_UPLOAD_BYTES
    with zipfile.ZipFile(plugin_zip) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
    assert len(names) == len(set(names)), "duplicate entries"
    assert {name.split("/")[0] for name in names} == {"dubai_segmenter"}  # one top-level folder
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]+", "dubai_segmenter")
    for name in names:
        parts = name.split("/")
        assert ".." not in name and not name.startswith("/"), name
        assert not name.endswith((".pyc", ".pyo")), name
        assert not {"__MACOSX", ".git", "__pycache__"} & set(parts), name
        assert not any(part.startswith(".") for part in parts), f"hidden file {name}"
        assert parts[1] not in {"tests", "training", ".venv"}, name
    for required in ("__init__.py", "metadata.txt", "LICENSE"):
        assert f"dubai_segmenter/{required}" in names


def test_zip_metadata_passes_the_plugin_site_checks(plugin_zip, metadata):
    missing = [key for key in REQUIRED_METADATA if not metadata.get(key, "").strip()]
    assert not missing
    assert re.fullmatch(r"\d+\.\d+\.\d+", metadata["version"])
    assert metadata["qgisMinimumVersion"] == "3.22" and metadata["qgisMaximumVersion"] == "4.99"
    assert metadata["supportsQt6"] == "True" and metadata["hasProcessingProvider"] == "yes"
    assert "/" not in metadata["author"]
    assert re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", metadata["email"])
    for key, placeholder in PLACEHOLDER_URLS.items():
        url = urlparse(metadata[key])
        assert metadata[key] != placeholder and url.scheme in ("http", "https") and url.netloc, key
    assert "TensorFlow is needed" not in metadata["about"] and "ONNX Runtime" in metadata["about"]
    assert metadata["version"] in metadata["changelog"] and "skeleton" not in metadata["changelog"]
    with zipfile.ZipFile(plugin_zip) as archive:
        assert f"dubai_segmenter/{metadata['icon']}" in archive.namelist()
        assert "def classFactory" in archive.read("dubai_segmenter/__init__.py").decode()


def test_the_licence_is_the_gpl_2_text_at_the_root_and_in_the_zip(plugin_zip):
    text = (REPO / "LICENSE").read_text()
    assert "GNU GENERAL PUBLIC LICENSE" in text and "Version 2, June 1991" in text
    assert "END OF TERMS AND CONDITIONS" in text
    with zipfile.ZipFile(plugin_zip) as archive:
        assert archive.read("dubai_segmenter/LICENSE").decode() == text


def test_only_tracked_files_are_packaged(tmp_path):
    """A GDAL sidecar or an editor's file left in the plugin folder stays out of the zip."""
    plugin = tmp_path / "repo" / "dubai_segmenter"
    (plugin / "sample").mkdir(parents=True)
    for name in ("__init__.py", "sample/scene.tif", "sample/scene.tif.aux.xml", "notes.txt"):
        (plugin / name).write_text(name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], cwd=plugin.parent, check=True)
    subprocess.run([*git, "add", "dubai_segmenter/__init__.py", "dubai_segmenter/sample/scene.tif"], cwd=plugin.parent,
                   check=True)
    assert [p.relative_to(plugin).as_posix() for p in plugin_files(plugin)] == ["__init__.py", "sample/scene.tif"]


def test_the_zip_holds_exactly_the_tracked_plugin_files(plugin_zip):
    tracked = set(subprocess.run(["git", "ls-files"], cwd=REPO / "dubai_segmenter", capture_output=True, text=True,
                                 check=True).stdout.split())
    with zipfile.ZipFile(plugin_zip) as archive:
        zipped = {name.split("/", 1)[1] for name in archive.namelist()}
    assert zipped == tracked | {"LICENSE"}


def test_plugin_folder_itself_has_the_metadata_so_it_can_be_linked_into_a_profile():
    folder = REPO / "dubai_segmenter"
    assert (folder / "metadata.txt").read_text() == (REPO / "metadata.txt").read_text()


def test_zip_ships_the_model_catalogue_but_no_model_and_stays_under_the_25_mb_of_plugins_qgis_org(plugin_zip):
    with zipfile.ZipFile(plugin_zip) as archive:
        names = archive.namelist()
        assert "dubai_segmenter/models.json" in names
        assert not [n for n in names if n.endswith((".safetensors", ".onnx", ".h5", ".keras"))]
    assert plugin_zip.stat().st_size < 25_000_000
