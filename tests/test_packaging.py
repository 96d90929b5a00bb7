"""`make package` builds a zip that QGIS's "Install from ZIP" accepts."""
import configparser
import zipfile
from pathlib import Path

import pytest

from tools.package_plugin import build_zip

REQUIRED_METADATA = (
    "name", "qgisMinimumVersion", "description", "about", "version", "author",
    "email", "repository", "tracker", "homepage", "tags", "category", "icon",
    "hasProcessingProvider", "experimental",
)


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory):
    return build_zip(tmp_path_factory.mktemp("dist") / "dubai_segmenter.zip")


def test_zip_has_one_plugin_folder_with_metadata_and_class_factory(plugin_zip):
    with zipfile.ZipFile(plugin_zip) as archive:
        names = archive.namelist()
        assert {name.split("/")[0] for name in names} == {"dubai_segmenter"}
        assert len(names) == len(set(names)), "duplicate entries"
        assert "dubai_segmenter/metadata.txt" in names
        assert "def classFactory" in archive.read("dubai_segmenter/__init__.py").decode()


def test_zip_metadata_is_complete_and_points_at_a_packaged_icon(plugin_zip):
    with zipfile.ZipFile(plugin_zip) as archive:
        parser = configparser.ConfigParser()
        parser.read_string(archive.read("dubai_segmenter/metadata.txt").decode())
        general = parser["general"]
        missing = [key for key in REQUIRED_METADATA if not general.get(key, "").strip()]
        assert not missing
        assert general["qgisMinimumVersion"] == "3.22"
        assert general["hasProcessingProvider"] == "yes"
        assert f"dubai_segmenter/{general['icon']}" in archive.namelist()


def test_zip_holds_no_tests_training_code_or_caches(plugin_zip):
    with zipfile.ZipFile(plugin_zip) as archive:
        for name in archive.namelist():
            parts = name.split("/")
            assert "__pycache__" not in parts and not name.endswith(".pyc"), name
            assert parts[1] not in {"tests", "training", ".venv"}, name


def test_plugin_folder_itself_has_the_metadata_so_it_can_be_linked_into_a_profile():
    folder = Path(__file__).resolve().parent.parent / "dubai_segmenter"
    top_level = folder.parent / "metadata.txt"
    assert (folder / "metadata.txt").read_text() == top_level.read_text()


def test_zip_ships_the_model_catalogue_but_no_model_and_stays_under_the_25_mb_of_plugins_qgis_org(plugin_zip):
    with zipfile.ZipFile(plugin_zip) as archive:
        names = archive.namelist()
        assert "dubai_segmenter/models.json" in names
        assert not [n for n in names if n.endswith((".safetensors", ".onnx", ".h5", ".keras"))]
    assert plugin_zip.stat().st_size < 25_000_000
