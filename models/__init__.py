"""Builders of named architectures (book chapters 22.9, 23 and 26), each returning an ordinary Sequential-based model.

Every builder takes the input shape and the number of classes, and returns a
model made of the library's layers (so it trains with ``fit``, saves and
loads like any other).
"""
