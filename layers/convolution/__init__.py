"""Convolution, pooling and resizing layers, NHWC (book chapter 22; sections 22.7 and 22.9 for the variants)."""

from .conv1d import Convolution1D
from .conv2d import Convolution2D
from .depthwise import DepthwiseConvolution2D, SeparableConvolution2D
from .pooling import AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D
from .resizing import UpSampling2D, ZeroPadding2D
from .squeeze_excitation import SqueezeExcitation
from .transpose import Convolution2DTranspose

__all__ = ["AveragePooling2D", "Convolution1D", "Convolution2D", "Convolution2DTranspose", "DepthwiseConvolution2D",
           "GlobalAveragePooling2D", "GlobalMaxPooling2D", "MaxPooling2D", "SeparableConvolution2D",
           "SqueezeExcitation", "UpSampling2D", "ZeroPadding2D"]
