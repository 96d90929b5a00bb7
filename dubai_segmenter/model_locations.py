# SPDX-License-Identifier: GPL-2.0-or-later
"""Where the plugin keeps and looks for models, and which catalogue it reads (QGIS settings).

The engine's ``model_store`` and ``model_catalogue`` know the folders and the catalogue
without QGIS; this adds what only QGIS knows: the profile's model folder (downloads go
there, so they survive plugin updates and follow the user's profile) and the catalogue URL
an organisation may set for its own mirror (setting ``dubai_segmenter/catalogue_url``,
which beats ``$DUBAI_SEGMENTER_CATALOGUE``, which beats the catalogue shipped in the plugin).
"""
from __future__ import annotations

from pathlib import Path

from qgis.core import QgsApplication, QgsSettings

from .engine.model_catalogue import catalogue_location
from .engine.model_store import InstalledModel, installed_models, model_folders, resolve_model

SETTING_CATALOGUE = "dubai_segmenter/catalogue_url"


def profile_model_folder() -> Path:
    """The QGIS profile's model folder (may not exist yet)."""
    return Path(QgsApplication.qgisSettingsDirPath()) / "dubai_segmenter" / "models"


def plugin_model_folders() -> list[Path]:
    return model_folders(profile_model_folder())


def installed_plugin_models() -> list[InstalledModel]:
    """Models on disk in the plugin's folders, newest first."""
    return installed_models(plugin_model_folders())


def resolve_plugin_model(text: str) -> Path:
    """A model file path, or the file of an installed model with that name (FileNotFoundError if none)."""
    return resolve_model(text, plugin_model_folders())


def catalogue_url() -> str:
    return catalogue_location(str(QgsSettings().value(SETTING_CATALOGUE, "", type=str) or "") or None)


def newest_model_path() -> str:
    """The newest model installed in the plugin's model folders, "" if none."""
    models = installed_plugin_models()
    return str(models[0].path) if models else ""
