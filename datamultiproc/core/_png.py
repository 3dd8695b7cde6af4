"""Thumbnails of numpy arrays as PNG data URIs, encoded with the standard library (zlib)."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

__all__ = ["THUMBNAIL_SIZE", "encode_png", "is_image", "thumbnail", "thumbnail_uri"]

#: Longest side of a thumbnail, in pixels.
THUMBNAIL_SIZE = 128

#: A thumbnail whose PNG is larger than this is redrawn smaller (noise does not compress).
MAX_PNG_BYTES = 32 * 1024

_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (grey, RGB, RGBA)


def is_image(array: np.ndarray) -> bool:
    """Return whether ``array`` can be shown as a picture: 2-D, or 3-D with 3 or 4 channels."""
    if array.dtype.kind not in "biuf" or array.size == 0:
        return False
    return array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))


def thumbnail(array: np.ndarray, size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """Return ``array`` as uint8 pixels, at most ``size`` pixels on its longest side.

    Large arrays are reduced by block means (NaN-aware, over a strided subset of
    each block). Floats and integers other
    than uint8 are scaled between the 1st and 99th percentile of their finite values;
    booleans become black and white; NaN and infinities become black.

    Examples
    --------
    >>> thumbnail(np.arange(512 * 300, dtype=float).reshape(512, 300)).shape
    (128, 75)
    >>> thumbnail(np.zeros((300, 200))).shape
    (128, 85)
    >>> thumbnail(np.eye(3, dtype=bool)).tolist()[0]
    [255, 0, 0]
    """
    if not is_image(array):
        msg = f"array must be 2-D, or 3-D with 3 or 4 channels, not shape {array.shape}"
        raise ValueError(msg)
    # Block means by a whole factor, then nearest-pixel picks down to ``size``.
    factor = max(1, max(array.shape[:2]) // size)
    if array.dtype == np.uint8 and factor == 1:
        return _fit(array, size)
    small = _fit(_block_mean(array, factor), size)
    if array.dtype == np.uint8:
        return _clip(small)
    if array.dtype == np.bool_:
        return _clip(small * 255.0)
    return _scaled(small)


def _fit(array: np.ndarray, size: int) -> np.ndarray:
    height, width = array.shape[:2]
    if max(height, width) <= size:
        return array
    scale = size / max(height, width)
    rows = np.linspace(0, height - 1, max(1, round(height * scale))).round().astype(np.intp)
    columns = np.linspace(0, width - 1, max(1, round(width * scale))).round().astype(np.intp)
    return array[rows[:, None], columns]


def encode_png(pixels: np.ndarray) -> bytes:
    r"""Encode uint8 ``pixels`` (height x width, or height x width x 1, 3 or 4) as a PNG file.

    Examples
    --------
    >>> encode_png(np.zeros((2, 3), dtype=np.uint8))[:8]
    b'\x89PNG\r\n\x1a\n'
    """
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        msg = f"pixels must be a 2-D or 3-D uint8 array, not {pixels.dtype} {pixels.shape}"
        raise ValueError(msg)
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    height, width = pixels.shape[:2]
    rows = np.ascontiguousarray(pixels).reshape(height, width * channels)
    raw = np.hstack([np.zeros((height, 1), dtype=np.uint8), rows]).tobytes()  # filter 0 per row
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPES[channels], 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 6))
        + _chunk(b"IEND", b"")
    )


def thumbnail_uri(array: np.ndarray, size: int = THUMBNAIL_SIZE) -> str:
    """Return a ``data:image/png;base64,...`` URI of the array's thumbnail.

    A thumbnail that does not compress below :data:`MAX_PNG_BYTES` (noise, RGB noise
    above all) is redrawn at three quarters of the size until it does, so a sample's
    HTML stays small; the page still shows it at ``size`` pixels.
    """
    png = encode_png(thumbnail(array, size))
    while len(png) > MAX_PNG_BYTES and size > 32:
        size = size * 3 // 4
        png = encode_png(thumbnail(array, size))
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _block_mean(array: np.ndarray, factor: int) -> np.ndarray:
    """Mean of each ``factor`` x ``factor`` block, ignoring NaN (an all-NaN block stays NaN)."""
    if factor == 1:
        return array.astype(np.float32)
    height, width = (-(-n // factor) * factor for n in array.shape[:2])
    pad = [(0, height - array.shape[0]), (0, width - array.shape[1])] + [(0, 0)] * (array.ndim - 2)
    values = np.pad(array, pad, mode="edge") if any(after for _, after in pad) else array
    blocks = values.reshape(height // factor, factor, width // factor, factor, *array.shape[2:])
    # Average a 4 x 4 (or denser) strided subset of each block: as smooth to the eye as
    # the full mean, and 16 times less to read for a 2048-pixel image.
    step = max(1, factor // 4)
    blocks = blocks[:, ::step, :, ::step]
    if array.dtype.kind != "f" or np.isfinite(blocks).all():
        return np.asarray(blocks.mean(axis=(1, 3)), dtype=np.float32)
    finite = np.isfinite(blocks)
    total = np.where(finite, blocks, 0).sum(axis=(1, 3))
    count = finite.sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        means: np.ndarray = np.asarray(total / count, dtype=np.float32)
    return means


def _scaled(values: np.ndarray) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros(values.shape, dtype=np.uint8)
    low, high = np.percentile(finite, [1, 99])
    if high <= low:
        low, high = float(finite.min()), float(finite.max())
    if high <= low:
        return np.where(np.isfinite(values), 128, 0).astype(np.uint8)
    with np.errstate(invalid="ignore"):
        return _clip((values - low) * (255.0 / (high - low)))


def _clip(values: np.ndarray) -> np.ndarray:
    pixels: np.ndarray = np.nan_to_num(np.clip(np.round(values), 0, 255), nan=0.0)
    return pixels.astype(np.uint8)
