"""The segmentation engine: tiling, model, raster and vector I/O.

Nothing in this package imports QGIS or Qt, so the command line, the training code and
the plugin's child process all run the same code without a QGIS installation.
"""
