"""Session-wide test set-up shared by the engine, training and QGIS tiers."""
import ctypes
import os
import tempfile

# TensorFlow's shared library exports its own SQLite and is loaded RTLD_GLOBAL; Qt's
# SQLite driver and GDAL's GeoPackage driver, opened later, would bind to that copy and
# crash (at exitQgis() or on the first GeoPackage write). Loading the system SQLite
# globally first makes every later library bind to it. See ../shared/ENVIRONMENT.md.
ctypes.CDLL("libsqlite3.so.0", mode=ctypes.RTLD_GLOBAL)

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_runtime = os.path.join(tempfile.gettempdir(), f"runtime-{os.getuid()}")
os.makedirs(_runtime, mode=0o700, exist_ok=True)
os.environ.setdefault("XDG_RUNTIME_DIR", _runtime)
# Keep TensorFlow quiet and single-purpose in tests.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
