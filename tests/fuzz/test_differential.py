"""Every layer and loss agrees with PyTorch, forward and backward, on random shapes, dtypes, constructor
arguments, strides, paddings and memory layouts (issue 13, section 7).

A small, deterministic Hypothesis budget per property (``derandomize=True``, no
deadline, no example database): CAMADAS_FUZZ_EXAMPLES sets the number of
examples (default 12). ``python tests/fuzz_report.py`` runs the same
generators with a bigger budget and counts mismatches.
"""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch", reason="the differential suite compares with PyTorch, which is not installed")

from hypothesis import HealthCheck, given, settings  # noqa: E402 (after the skip)
from hypothesis import strategies as st  # noqa: E402

from tests.fuzz.differential import cases  # noqa: E402
from tests.fuzz.draws import HypothesisDraw  # noqa: E402

EXAMPLES = int(os.environ.get("CAMADAS_FUZZ_EXAMPLES", "12"))
CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_agrees_with_pytorch(case, data):
    case.run(HypothesisDraw(data))


def test_every_public_layer_and_loss_is_covered():
    """A new layer or loss must get a differential case (or be named here with the reason it has none)."""
    import layers
    from layers import losses

    covered = {case.name for case in CASES}
    by_class = {
        "Dense": "dense", "Flatten": "flatten", "Dropout": "dropout_eval", "Softmax": "softmax",
        "Convolution2D": "convolution2d", "MaxPooling2D": "max_pooling2d", "AveragePooling2D": "average_pooling2d",
        "GlobalAveragePooling2D": "global_average_pooling2d", "DepthwiseConvolution2D": "depthwise_convolution2d",
        "SeparableConvolution2D": "separable_convolution2d", "Convolution2DTranspose": "convolution2d_transpose",
        "Convolution1D": "convolution1d", "GlobalMaxPooling2D": "global_max_pooling2d",
        "ZeroPadding2D": "zero_padding2d", "UpSampling2D": "upsampling2d", "SqueezeExcitation": "squeeze_excitation",
        "BatchNormalization": "batch_normalization_train",
        "LayerNormalization": "layer_normalization", "MeanSquaredError": "mse", "MeanAbsoluteError": "mae",
        "Huber": "huber", "BinaryCrossEntropy": "bce_logits", "Hinge": "hinge", "CategoricalCrossEntropy": "cce_logits",
        "SparseCategoricalCrossEntropy": "sparse_cce_logits", "KLDivergence": "kl_divergence",
        "MulticlassHinge": "multiclass_hinge",
    }
    not_differential = {"Sequential": "a container: its parts are covered", "Layer": "the protocol",
                        "Loss": "the protocol", "Container": "the protocol of blocks",
                        "Add": "a block: gradient-checked in tests/layers/test_containers.py",
                        "Concatenate": "a block: gradient-checked in tests/layers/test_containers.py",
                        "Multiply": "a block: gradient-checked in tests/layers/test_containers.py",
                        "Residual": "a block: gradient-checked in tests/layers/test_containers.py",
                        "Identity": "y = x",
                        **{name: "random augmentation (identity in evaluation): its transform and adjoint are "
                                 "checked in tests/layers/test_augmentation.py"
                           for name in ("RandomFlip", "RandomTranslation", "RandomRotation", "GaussianNoise")},

                        "Embedding": "integer ids: against torch.nn.Embedding in tests/layers/test_embedding.py",
                        **{name: "against PyTorch in tests/layers/test_attention_layers.py" for name in (
                            "ScaledDotProductAttention", "MultiHeadAttention", "TransformerEncoderBlock",
                            "TransformerDecoderBlock")},
                        **{name: "against torch.nn.RNN/LSTM/GRU in tests/layers/test_recurrent_torch.py" for name in (
                            "SimpleRNN", "LSTM", "GRU", "Bidirectional")},
                        "TimeDistributed": "a wrapper: gradient-checked in tests/layers/test_recurrent_wrappers.py",
                        **{name: "gradient-checked in tests/layers/test_attention_layers.py" for name in (
                            "ClassToken", "TokenPooling", "PatchEmbedding", "SinusoidalPositionalEncoding",
                            "LearnedPositionalEmbedding")}}
    from layers.activations import ACTIVATION_NAMES

    for name in ACTIVATION_NAMES:
        if name not in ("swish", "softmax"):
            assert name in covered, name
    public = [n for n in dir(layers) if isinstance(getattr(layers, n), type)
              and issubclass(getattr(layers, n), (layers.Layer, losses.Loss))]
    for name in public:
        cls = getattr(layers, name)
        activation = getattr(cls, "kernel", "")
        assert (by_class.get(name) in covered or activation in covered or name in not_differential
                or name == "Swish"), f"{name} has no differential case"
