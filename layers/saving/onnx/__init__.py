"""Export a model to ONNX, so a model trained here runs in ONNX Runtime, TensorRT, browsers, phones...

``export(model, path, input_shape)`` (also ``model.export_onnx(path, input_shape)``
and ``camadas.onnx.export``) writes the model's evaluation-mode forward pass as
an ONNX graph (opset :data:`OPSET`, float32, a dynamic batch axis named
``"batch"``, other dynamic axes on request: :mod:`~layers.saving.onnx.axes`).
Every layer is converted by a small function registered for its class
(:mod:`~layers.saving.onnx.registry`; one module per family: activations,
core, convolution, blocks, recurrent, attention; the models' own in
``models.onnx_converters``); a layer with none, or in a configuration its
converter refuses, raises :class:`OnnxExportError` naming it and its path in
the model. NHWC is kept between layers: the convolution and pooling
converters transpose to ONNX's NCHW and back. The optional dependency is the ``onnx`` extra
(``pip install "camadas[onnx]"``: onnx, and onnxruntime to run the file).
"""

from __future__ import annotations

import numpy as np

from backend.checks import check_positive_int

from ...base import takes_integer_input
from ...training import predict
from ..files import check_directory, write_atomically
from .axes import check_dynamic_axes, output_dims
from .registry import CONVERTERS, OnnxExportError, check_exportable, register_converter

__all__ = ["CONVERTERS", "OPSET", "OnnxExportError", "export", "register_converter"]

#: The ONNX operator set the exported graphs use (LayerNormalization needs 17).
OPSET = 17
#: The ONNX file format version written (the one of opset 17, read by ONNX Runtime 1.13 and later).
IR_VERSION = 8


def _require_onnx():
    try:
        import onnx
    except ImportError as err:
        raise ImportError(f"export_onnx: the onnx package is not installed ({err}); install the extra: "
                          "pip install 'camadas[onnx]'") from None
    return onnx


def _check_input_shape(input_shape) -> tuple:
    if not isinstance(input_shape, (tuple, list)):
        input_shape = (input_shape,)
    if len(input_shape) == 0:
        raise ValueError("export_onnx: input_shape: expected the shape of one sample (no batch axis), got ()")
    return tuple(check_positive_int(d, f"input_shape[{i}]", where="export_onnx") for i, d in enumerate(input_shape))


def to_onnx(model, input_shape, dynamic_axes=None):
    """The ``onnx.ModelProto`` of ``model`` for samples of ``input_shape``, checked by ``onnx.checker``.

    Parameters and arguments as in :func:`export`; nothing is written.
    """
    onnx = _require_onnx()
    from onnx import TensorProto, helper

    from .graph import GraphBuilder, Value

    shape = _check_input_shape(input_shape)
    axes = check_dynamic_axes(dynamic_axes, 1 + len(shape))
    check_exportable(model)  # every layer has a converter that takes its configuration, before anything runs
    integer_input = takes_integer_input(model)

    def run(probe_shape):
        return predict(model, np.zeros(probe_shape, dtype=np.int64 if integer_input else np.float32)).shape

    try:  # our own layers' messages for a shape that does not fit, before any ONNX is built
        expected = run((1, *shape))
    except (TypeError, ValueError) as err:
        raise type(err)(f"export_onnx: input_shape {shape} does not fit the model: {err}") from err
    declared = output_dims(run, (1, *shape), tuple(expected), axes)
    graph = GraphBuilder(np.float32)
    result = graph.convert(model, Value("input", (1, *shape)))
    if tuple(result.shape) != tuple(expected):
        raise OnnxExportError(f"export_onnx: the converted graph gives shape {result.shape} for input_shape "
                              f"{shape}, the model {tuple(expected)}; a layer's output_shape disagrees with its "
                              "forward")
    if result.name == "input" or result.name in {i.name for i in graph.initializers}:
        graph.node("Identity", [result.name])
        result = Value(graph.nodes[-1].output[0], result.shape)
    graph.rename(result.name, "output")
    elem = TensorProto.INT64 if integer_input else TensorProto.FLOAT
    input_dims = ["batch", *(axes.get(axis, n) for axis, n in enumerate(shape, start=1))]
    inputs = [helper.make_tensor_value_info("input", elem, input_dims)]
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, declared)]
    proto = helper.make_model(
        helper.make_graph(graph.nodes, type(model).__name__, inputs, outputs, graph.initializers),
        opset_imports=[helper.make_opsetid("", OPSET)], producer_name="camadas", producer_version=_version(),
        doc_string=repr(model),
    )
    proto.ir_version = IR_VERSION
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export(model, path, input_shape, dynamic_axes=None) -> str:
    """Write ``model`` to ``path`` as an ONNX file; return the path.

    Parameters
    ----------
    model : Layer
        A Sequential or any layer or block of the library (in any mode: the
        file computes the evaluation-mode forward pass: Dropout is the
        identity, BatchNormalization uses its running statistics, RReLU its
        mean slope, NoisyReLU no noise). Parameters may live on the GPU.
    path : str or path-like
        The destination, written atomically (a failed export leaves no file).
    input_shape : tuple of int
        The shape of one sample, without the batch axis (``(8, 8, 1)`` for
        NHWC 8x8 grey images, ``(20,)`` for 20 features); the file's input is
        ``("batch", *input_shape)``, float32, or int64 ids when the first layer
        is an Embedding.
    dynamic_axes : sequence of int or dict {int: str}, optional
        Input axes besides the batch that may take any size in the file (axes
        of ``("batch", *input_shape)``: ``(1,)`` for the tokens of a GPT or of
        a recurrent model), named ``"input_axis_<k>"`` or by the dict. The
        output axes that follow them get the same names. The graph reads
        every such size when it runs, within what the model takes (a
        positional table's ``max_len``, a ViT's fixed patch grid).

    Raises
    ------
    OnnxExportError
        A layer has no converter (the message names its class and its path in the model).
    TypeError, ValueError
        ``input_shape`` is not a tuple of positive ints, or does not fit the model; ``dynamic_axes``
        names axes that are not the input's, or that the model takes at one size only.
    FileNotFoundError
        The destination's directory does not exist.
    ImportError
        onnx is not installed (``pip install 'camadas[onnx]'``).

    Examples
    --------
    >>> model.export_onnx("digits.onnx", input_shape=(8, 8, 1))            # doctest: +SKIP
    >>> import onnxruntime as ort                                           # doctest: +SKIP
    >>> ort.InferenceSession("digits.onnx").run(None, {"input": x})[0]      # doctest: +SKIP
    """
    path = check_directory(path, "export_onnx")
    data = to_onnx(model, input_shape, dynamic_axes).SerializeToString()
    return write_atomically(path, lambda f: f.write(data))


def _version() -> str:
    import camadas

    return camadas.__version__


# The converters register themselves when their modules are imported.
from . import activations, attention, blocks, convolution, convolution_variants, core, recurrent  # noqa: E402, F401
