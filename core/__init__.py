"""The Qt-free engine of CSKNet Studio: model, data, training, annotation state, export.

Nothing here imports Qt (checked by import-linter and tests/core/test_qt_free.py).
"""
