# SPDX-License-Identifier: GPL-2.0-or-later
"""Runs inside a real QGIS window (``qgis.bin --code``): drives the plugin as an analyst would.

Started by tools/real_window.py, which installs the packaged plugin into a fresh profile
and passes a JSON config (model, scenes, output folder) in DUBAI_SEGMENTER_WINDOW_CONFIG.
Steps: open the dock at the width QGIS gives it, measure it, run on a scene, cancel a run
on a larger scene, open the Processing dialogs; every observation goes to result.json
and the screenshots next to it. QGIS runs this file before its event loop starts, so the
work is scheduled on a timer and ends by quitting QGIS.
"""
import json
import os
import time
import traceback

from qgis.core import Qgis, QgsApplication, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QCoreApplication, QRect, QTimer
from qgis.PyQt.QtGui import QImage, QPainter
from qgis.PyQt.QtWidgets import QScrollArea
from qgis.utils import iface, loadPlugin, plugins, startPlugin

with open(os.environ["DUBAI_SEGMENTER_WINDOW_CONFIG"], encoding="utf-8") as _config:
    CONFIG = json.load(_config)
OUT = CONFIG["out_dir"]
RESULT = {"log": []}
PLUGIN = "dubai_segmenter"


def note(step):
    """Where the driver got to, written at once: a hung window still leaves its trace."""
    RESULT["log"].append(step)
    with open(os.path.join(OUT, "driver.log"), "a", encoding="utf-8") as handle:
        handle.write(f"{time.strftime('%H:%M:%S')} {step}\n")


def wait_until(condition, timeout):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s")
        QCoreApplication.processEvents()
        time.sleep(0.02)


def pause(seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        QCoreApplication.processEvents()
        time.sleep(0.02)


def save_png(widget, name):
    """A palette PNG: screenshots of a GUI have few colours, and stay small that way."""
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_Indexed8)
    image.save(os.path.join(OUT, name), "PNG")


def save_whole_panel(dock, name):
    """The panel's whole form (as if the dock were tall enough) above its pinned Run bar."""
    view = dock.view
    form = view.body.grab()
    bar = view.grab(QRect(0, view.scroll.height(), view.width(), view.height() - view.scroll.height()))
    image = QImage(view.width(), form.height() + bar.height(), QImage.Format.Format_RGB32)
    image.fill(view.palette().window().color())
    painter = QPainter(image)
    painter.drawPixmap(0, 0, form)
    painter.drawPixmap(0, form.height(), bar)
    painter.end()
    image.convertToFormat(QImage.Format.Format_Indexed8).save(os.path.join(OUT, name), "PNG")


def layout_of(dock):
    view = dock.view
    run = view.run_button
    corner = run.mapTo(dock, run.rect().bottomRight())
    return {
        "dock_width": dock.width(),
        "dock_height": dock.height(),
        "body_min_width": view.body.minimumSizeHint().width(),
        "viewport_width": view.scroll.viewport().width(),
        "horizontal_scrollbar": view.scroll.horizontalScrollBar().isVisible(),
        "run_visible": run.isVisible() and not run.visibleRegion().isEmpty()
        and corner.y() <= dock.height() and corner.x() <= dock.width(),
        "cancel_visible": view.cancel_button.isVisible() and not view.cancel_button.visibleRegion().isEmpty(),
    }


def bar_messages():
    return [f"{item.title()}: {item.text()}" for item in iface.messageBar().items()]


def segment(dock, scene, name, outputs, cancel_after=None):
    view = dock.view
    layer = QgsRasterLayer(scene, name)
    QgsProject.instance().addMapLayer(layer)
    view.layer_combo.setLayer(layer)
    view.raster_output.setFilePath(os.path.join(outputs, "classes.tif"))
    view.vector_output.setFilePath(os.path.join(outputs, "polygons.gpkg"))
    before = set(QgsProject.instance().mapLayers())
    note(f"run {name}")
    view.run_button.click()
    if dock.task is None:
        raise RuntimeError("Run did not start: " + view.messages.toPlainText())
    if cancel_after is not None:
        started = time.monotonic()
        wait_until(lambda: dock.task is None or time.monotonic() - started > cancel_after, 120)
        if dock.task is None:
            raise RuntimeError("the run finished before it could be cancelled")
        note(f"cancel {name} at progress {view.progress_bar.value()}")
        view.cancel_button.click()
    wait_until(lambda: dock.task is None, CONFIG["run_timeout"])
    note(f"finished {name}")
    pause(2.0)  # let QGIS's own task notices arrive
    note("paused")
    added = [QgsProject.instance().mapLayer(i).name() for i in set(QgsProject.instance().mapLayers()) - before]
    return {"messages": view.messages.toPlainText(), "added_layers": sorted(added),
            "progress": view.progress_bar.value(), "outputs": sorted(os.listdir(outputs))}


def processing_dialogs():
    import processing

    found = {}
    for algorithm in ("segment_raster", "segment_and_vectorize", "vectorize_classes"):
        note(f"dialog {algorithm}")
        dialog = processing.createAlgorithmDialog(f"{PLUGIN}:{algorithm}")
        dialog.show()
        pause(0.5)
        bars = [area.horizontalScrollBar().isVisible() for area in dialog.findChildren(QScrollArea)]
        found[algorithm] = {"width": dialog.width(), "horizontal_scrollbar": any(bars)}
        if algorithm == "segment_and_vectorize":
            save_png(dialog, "processing_dialog.png")
        dialog.close()
    return found


def run():
    window = iface.mainWindow()
    window.setGeometry(0, 0, *CONFIG["window_size"])
    if not (loadPlugin(PLUGIN) and startPlugin(PLUGIN)):
        raise RuntimeError("the plugin did not load")
    plugin = plugins[PLUGIN]
    plugin.action.setChecked(True)
    pause(1.5)
    dock = plugin.dock
    RESULT["opened"] = layout_of(dock)
    dock.view.advanced_group.setCollapsed(False)
    pause(0.5)
    RESULT["advanced_open"] = layout_of(dock)
    dock.view.advanced_group.setCollapsed(True)
    dock.view.model_widget.setFilePath(CONFIG["model"])
    wait_until(lambda: dock.model_info is not None, 120)
    pause(0.5)
    RESULT["model_read"] = layout_of(dock)
    run_dir = os.path.join(OUT, "run")
    os.makedirs(run_dir)
    RESULT["run"] = segment(dock, CONFIG["scene"], "Sample scene", run_dir)
    RESULT["after_run"] = layout_of(dock)
    iface.mapCanvas().setExtent(QgsProject.instance().mapLayersByName("Sample scene")[0].extent())
    iface.mapCanvas().refreshAllLayers()
    pause(3.0)
    save_png(dock, "dock.png")
    save_whole_panel(dock, "dock_panel.png")
    save_png(window, "window.png")
    if CONFIG.get("cancel_scene"):
        critical = []

        def record(message, tag, level):
            if level == Qgis.MessageLevel.Critical:
                critical.append(f"{tag}: {message}")

        QgsApplication.messageLog().messageReceived.connect(record)
        notices = []  # every message-bar notice while cancelling, even one withdrawn at once

        def seen(*_):  # the signal's argument arrives as a plain QWidget: read the bar's items
            notices.extend(m for m in bar_messages() if m not in notices)

        iface.messageBar().widgetAdded.connect(seen)
        cancel_dir = os.path.join(OUT, "cancel")
        os.makedirs(cancel_dir)
        RESULT["cancel"] = segment(dock, CONFIG["cancel_scene"], "Large scene", cancel_dir,
                                   cancel_after=CONFIG["cancel_after"])
        RESULT["cancel"]["critical_log"] = critical
        RESULT["cancel"]["message_bar"] = bar_messages()
        RESULT["cancel"]["notices_seen"] = notices
        save_png(window, "window_after_cancel.png")
    RESULT["processing_dialogs"] = processing_dialogs()


def main():
    try:
        run()
    except Exception:  # everything is reported to the test through result.json
        RESULT["error"] = traceback.format_exc()
    try:
        with open(os.path.join(OUT, "result.json"), "w", encoding="utf-8") as handle:
            json.dump(RESULT, handle, indent=1)
    finally:  # whatever happened, QGIS must quit rather than wait for a user
        QgsProject.instance().setDirty(False)
        QgsApplication.exit(0)


QTimer.singleShot(500, main)
