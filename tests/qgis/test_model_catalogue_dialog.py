# SPDX-License-Identifier: GPL-2.0-or-later
"""The "Get model…" dialog with QGIS's real downloader, against a catalogue served on 127.0.0.1.

Success (file checked, renamed, selected in the dock), hash mismatch, 404, a connection
dropped half way and Cancel: a failure leaves nothing in the model folder and one
sentence in the dialog.
"""
from __future__ import annotations

import shutil

import pytest
from qgis.core import QgsSettings

from dubai_segmenter.model_locations import SETTING_CATALOGUE, profile_model_folder
from dubai_segmenter.ui.model_catalogue_dialog import ModelCatalogueDialog
from tests.model_server import ModelServer
from tests.qgis.conftest import wait_until

NAME = "colour-v1"
FILE = f"{NAME}.safetensors"


@pytest.fixture
def server(colour_model):
    with ModelServer(NAME, {FILE: colour_model.read_bytes()}, {FILE: "safetensors"}) as running:
        yield running


@pytest.fixture
def big_server():
    """A 2 MB file in 4 kB steps of 50 ms, slow enough to cancel half way."""
    with ModelServer(NAME, {FILE: bytes(range(256)) * 8192}, {FILE: "safetensors"}) as running:
        running.behaviour[FILE] = "slow"
        yield running


def _open(folder, url) -> ModelCatalogueDialog:
    dialog = ModelCatalogueDialog(folder=folder, url=url)
    assert dialog.loading  # read in the background: QGIS stays responsive
    wait_until(lambda: not dialog.loading, timeout=30)
    return dialog


def _download(dialog: ModelCatalogueDialog) -> None:
    dialog.table.selectRow(dialog.row_of(NAME))
    dialog.download_button.click()
    assert dialog.busy
    wait_until(lambda: not dialog.busy, timeout=60)


def test_lists_the_catalogue_with_metrics_and_size_then_installs_a_checked_file(
    qgis_app, server, tmp_path, colour_model,
):
    dialog = _open(tmp_path, server.url)
    row = dialog.row_of(NAME)
    cells = [dialog.table.item(row, c).text() for c in range(dialog.table.columnCount())]
    assert cells[:3] == [f"{NAME} (v1)", "0.900", "0.800"] and "safetensors" in cells[3] and cells[5] == "not installed"
    # models on this computer come first (the checkout's released model), the catalogue's others after
    assert dialog.table.item(0, 0).text() == "dubai-native-v1" and row == dialog.table.rowCount() - 1
    installed = []
    dialog.installed.connect(installed.append)
    _download(dialog)
    assert installed == [str(tmp_path / FILE)]
    assert dialog.row_of(NAME) == 0 and dialog.table.item(0, 5).text() == str(tmp_path / FILE)  # now the newest
    assert [p.name for p in tmp_path.iterdir()] == [FILE]
    assert (tmp_path / FILE).read_bytes() == colour_model.read_bytes()
    assert "SHA-256 checked" in dialog.status.text()


@pytest.mark.parametrize("behaviour, words", [
    ("corrupt", "SHA-256"),
    ("missing", "could not be downloaded"),
    ("drop", f"{NAME}"),
])
def test_a_failed_download_leaves_nothing_and_says_why(qgis_app, server, tmp_path, behaviour, words):
    server.behaviour[FILE] = behaviour
    dialog = _open(tmp_path, server.url)
    installed = []
    dialog.installed.connect(installed.append)
    _download(dialog)
    wait_until(lambda: dialog.status.text() != "" and "Downloading" not in dialog.status.text(), timeout=10)
    assert list(tmp_path.iterdir()) == [] and installed == []
    text = dialog.status.text()
    assert words in text and ("nothing was kept" in text or "was not kept" in text)
    assert dialog.download_button.isEnabled() and not dialog.cancel_button.isEnabled()


def test_cancel_half_way_leaves_nothing(qgis_app, big_server, tmp_path):
    dialog = _open(tmp_path, big_server.url)
    dialog.table.selectRow(dialog.row_of(NAME))
    dialog.download_button.click()
    wait_until(lambda: dialog.progress_bar.value() >= 5, timeout=60)
    dialog.cancel_button.click()
    wait_until(lambda: not dialog.busy, timeout=30)
    assert "cancelled; nothing was kept" in dialog.status.text()
    wait_until(lambda: list(tmp_path.iterdir()) == [], timeout=10)


def test_an_unreadable_catalogue_is_one_sentence_and_no_download(qgis_app, server, tmp_path):
    dialog = _open(tmp_path, server.url.replace("models.json", "nothing.json"))
    assert "cannot read the model catalogue" in dialog.status.text()
    assert dialog.row_of(NAME) == -1 and not dialog.download_button.isEnabled()
    # the models already on this computer are still offered
    dialog.table.selectRow(dialog.row_of("dubai-native-v1"))
    used = []
    dialog.installed.connect(used.append)
    dialog.use_button.click()
    assert used and used[0].endswith("dubai-native-v1.safetensors")


def test_a_typed_catalogue_url_is_read_and_remembered(qgis_app, server, tmp_path):
    dialog = _open(tmp_path, server.url.replace("models.json", "nothing.json"))
    try:
        dialog.url_edit.setText(server.url)
        dialog.read_button.click()
        wait_until(lambda: not dialog.loading, timeout=30)
        assert dialog.row_of(NAME) >= 0
        assert QgsSettings().value(SETTING_CATALOGUE) == server.url
        dialog.url_edit.setText("")  # back to the default: the catalogue shipped with the plugin
        dialog.read_button.click()
        wait_until(lambda: not dialog.loading, timeout=30)
        assert QgsSettings().value(SETTING_CATALOGUE) is None
        assert dialog.table.item(dialog.row_of("dubai-native-v1"), 0).text() == "dubai-native-v1 (v1)"
        assert "No public server" in dialog.source_label.text()
    finally:
        QgsSettings().remove(SETTING_CATALOGUE)


def test_the_dock_gets_a_model_from_the_catalogue_set_in_the_settings_and_selects_it(qgis_iface, server):
    from dubai_segmenter.ui.dock import SegmenterDock
    from dubai_segmenter.ui.dock_settings import SETTINGS_GROUP

    folder = profile_model_folder()
    assert not (folder / FILE).exists()
    QgsSettings().setValue(SETTING_CATALOGUE, server.url)
    QgsSettings().remove(SETTINGS_GROUP.rstrip("/"))
    try:
        dock = SegmenterDock(qgis_iface)
        dock.get_model_button.click()
        dialog = dock.catalogue_dialog
        wait_until(lambda: not dialog.loading, timeout=30)
        assert dialog.catalogue.location == server.url
        _download(dialog)
        assert dock.view.model_widget.filePath() == str(folder / FILE)
        wait_until(lambda: dock.model_info is not None, timeout=60)  # the engine read the downloaded model
        assert [c.name for c in dock.model_info.classes][0] == "Building"
        # a new panel (next QGIS start, nothing saved) picks the newest installed model by itself
        QgsSettings().remove(SETTINGS_GROUP.rstrip("/"))
        assert SegmenterDock(qgis_iface).view.model_widget.filePath() == str(folder / FILE)
    finally:
        QgsSettings().remove(SETTING_CATALOGUE)
        shutil.rmtree(folder, ignore_errors=True)


def test_processing_runs_an_installed_model_by_name_and_names_a_missing_one(provider, colour_model, tmp_path,
                                                                             monkeypatch):
    import processing
    from qgis.core import QgsProcessingException

    from dubai_segmenter.engine.model_store import MODELS_ENV
    from tests.qgis.conftest import read_band, scene_ids, write_painted_raster

    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(colour_model, folder / FILE)
    monkeypatch.setenv(MODELS_ENV, str(folder))
    ids = scene_ids()
    scene = write_painted_raster(tmp_path / "scene.tif", ids)
    result = processing.run("dubai_segmenter:segment_raster",
                            {"INPUT": str(scene), "MODEL": NAME, "OUTPUT": str(tmp_path / "classes.tif")})
    assert (read_band(result["OUTPUT"]) == ids).all()
    with pytest.raises(QgsProcessingException, match="models get colour-v9"):
        processing.run("dubai_segmenter:segment_raster",
                       {"INPUT": str(scene), "MODEL": "colour-v9", "OUTPUT": str(tmp_path / "other.tif")})
