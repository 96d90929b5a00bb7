"""Session-wide test set-up shared by the engine, training and QGIS tiers."""
import os
import tempfile

from dubai_segmenter.engine.system_sqlite import preload_system_sqlite

# Before any test imports TensorFlow: otherwise Qt's SQLite driver (at exitQgis()) and
# GDAL's GeoPackage driver bind to TensorFlow's SQLite and crash the session.
preload_system_sqlite()

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_runtime = os.path.join(tempfile.gettempdir(), f"runtime-{os.getuid()}")
os.makedirs(_runtime, mode=0o700, exist_ok=True)
os.environ.setdefault("XDG_RUNTIME_DIR", _runtime)
# Keep TensorFlow quiet and single-purpose in tests.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
