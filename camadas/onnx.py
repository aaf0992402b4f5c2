"""``camadas.onnx.export(model, path, input_shape)``: the ONNX exporter of :mod:`layers.saving.onnx`."""

from __future__ import annotations

from camadas.packages import require_own

require_own(__name__, ("backend", "layers"))

from layers.saving.onnx import OnnxExportError, export, register_converter, to_onnx  # noqa: E402

__all__ = ["OnnxExportError", "export", "register_converter", "to_onnx"]
