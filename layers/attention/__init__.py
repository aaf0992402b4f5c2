"""Attention and Transformers (book chapter 26).

==============================  ===============================================  =======
layer                           what                                             section
==============================  ===============================================  =======
ScaledDotProductAttention       softmax(Q K^T / sqrt(d) + M) V                   26.2
MultiHeadAttention              H heads, self- and cross-attention               26.3
TransformerEncoderBlock         attention + MLP residual branches, pre/post-norm 26.4
TransformerDecoderBlock         masked self-, cross-attention, MLP               26.4, 26.6.3
SinusoidalPositionalEncoding    fixed sinusoids added to the tokens              26.5
LearnedPositionalEmbedding      a learned table added to the tokens              26.5
PatchEmbedding, ClassToken,     images as token sequences (Vision Transformers)  26.7
TokenPooling
==============================  ===============================================  =======

Multi-input layers take a tuple as ``input_data`` and return a tuple of
gradients (one per input) as ``grad_input``; masks are keyword arguments of
``forward`` (boolean True = attend, or additive) or the ``causal`` flag.
"""

from .blocks import TransformerDecoderBlock, TransformerEncoderBlock, reset_rng_inside
from .multi_head import MultiHeadAttention
from .patches import ClassToken, PatchEmbedding, TokenPooling
from .positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding, sinusoidal_table
from .scaled_dot_product import ScaledDotProductAttention

__all__ = [
    "ClassToken",
    "LearnedPositionalEmbedding",
    "MultiHeadAttention",
    "PatchEmbedding",
    "ScaledDotProductAttention",
    "SinusoidalPositionalEncoding",
    "TokenPooling",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
    "reset_rng_inside",
    "sinusoidal_table",
]
