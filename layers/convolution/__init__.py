"""Convolution and pooling layers, NHWC (book chapter 22)."""

from .conv2d import Convolution2D
from .pooling import AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D

__all__ = ["AveragePooling2D", "Convolution2D", "GlobalAveragePooling2D", "MaxPooling2D"]
