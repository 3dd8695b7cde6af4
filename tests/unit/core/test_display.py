"""The HTML display of a sample: every kind of field, thumbnails that decode, size and repr."""

from __future__ import annotations

import base64
import re
import struct
import zlib
from html.parser import HTMLParser
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import BaseModel, Field

from datamultiproc import BaseSample
from datamultiproc.core._display import MAX_TEXT, array_summary
from datamultiproc.core._png import THUMBNAIL_SIZE, encode_png, thumbnail


class Meta(BaseModel):
    site: str = "north"
    depth: int = 3


class Everything(BaseSample):
    image: np.ndarray
    rgb: np.ndarray | None = None
    rgba: np.ndarray | None = None
    mask: np.ndarray | None = None
    counts: np.ndarray | None = None
    signal: np.ndarray | None = None
    cube: np.ndarray | None = None
    label: str = "tile"
    note: str = ""
    score: float = 0.5
    size: int = 7
    flag: bool = True
    missing: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    meta: Meta = Field(default_factory=Meta)
    tags: list[str] = Field(default_factory=list)


class _Page(HTMLParser):
    """Collects tags, images and text, and checks that every opened tag is closed."""

    VOID: ClassVar[set[str]] = {"img", "br", "polyline", "meta", "hr"}

    def __init__(self, text: str) -> None:
        super().__init__()
        self.open: list[str] = []
        self.images: list[dict[str, str]] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.images.append({k: v or "" for k, v in attrs})
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.open[-1:] == [tag], f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def decode_png(data: bytes) -> np.ndarray:
    """Decode the PNGs encode_png writes (8-bit, filter 0), checking every chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, dict[bytes, bytes]()
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        position += 12 + length
    width, height, depth, colour, *_ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert depth == 8
    channels = {0: 1, 2: 3, 6: 4}[colour]
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8)
    rows = raw.reshape(height, 1 + width * channels)
    assert not rows[:, 0].any()  # filter type 0 on every row
    pixels = rows[:, 1:].reshape(height, width, channels)
    return pixels[:, :, 0] if channels == 1 else pixels


def _png_of(image: dict[str, str]) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert image["src"].startswith(prefix)
    return decode_png(base64.b64decode(image["src"][len(prefix) :]))


def _everything() -> Everything:
    rng = np.random.default_rng(0)
    sample = Everything(
        id="tile-1",
        image=rng.normal(size=(300, 200)),
        rgb=rng.integers(0, 255, size=(40, 60, 3), dtype=np.uint8),
        rgba=rng.random((16, 16, 4)),
        mask=np.eye(10, dtype=bool),
        counts=np.arange(12, dtype=np.int16).reshape(3, 4),
        signal=np.sin(np.linspace(0, 10, 500)),
        cube=np.zeros((2, 3, 5)),
        note="x" * 500,
        extra={"gain": 2.5, "nested": {"offsets": np.array([1.0, 2.0])}},
        tags=["a", "b"],
    )
    sample.processing_history.extend([("Load", "path='a.tif'"), ("Denoise", "size=3")])
    return sample


def test_html_of_every_kind_of_field_parses_and_shows_each_value() -> None:
    page = _Page(_everything()._repr_html_())
    assert page.open == []
    text = "".join(page.text)
    for name in Everything.model_fields:
        if name != "processing_history":
            assert name in text
    assert "float64 (300, 200)" in text
    assert "int16 (3, 4)" in text
    assert "min 0 max 11 mean 5.5" in text
    assert "float64 (2, 3, 5)" in text  # summarised, not drawn
    assert "x" * (MAX_TEXT - 1) + "… (500 chars)" in text
    assert "x" * MAX_TEXT not in text
    assert "dict, 2 keys" in text
    assert "gain" in text
    assert "offsets" in text
    assert "Meta, 2 fields" in text
    assert "north" in text
    assert "['a', 'b']" in text
    assert "history (2): Load → Denoise" in text
    assert page.tags.count("details") >= 3  # dict, nested dict, model, history fold
    assert "svg" in page.tags
    assert "polyline" in page.tags
    assert "<script" not in _everything()._repr_html_()


def test_thumbnails_decode_to_the_expected_size_and_channels() -> None:
    images = _Page(_everything()._repr_html_()).images
    # image, rgb, rgba, mask, counts: five pictures (the nested 1-D array has none).
    decoded = [_png_of(image) for image in images]
    assert [d.shape for d in decoded] == [
        (THUMBNAIL_SIZE, 85),  # 300 x 200: block means of 2 x 2, then 150 x 100 picked to fit
        (40, 60, 3),
        (16, 16, 4),
        (10, 10),
        (3, 4),
    ]
    # The displayed size keeps the aspect ratio; small arrays are drawn larger.
    assert (images[3]["width"], images[3]["height"]) == ("128", "128")
    assert (images[4]["width"], images[4]["height"]) == ("128", "96")


def test_thumbnail_pixels_are_scaled_and_nan_safe() -> None:
    uint8 = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert np.array_equal(decode_png(encode_png(thumbnail(uint8))), uint8)
    ramp = np.linspace(0, 1, 100 * 100).reshape(100, 100)
    ramp[0, 0] = np.nan
    pixels = thumbnail(ramp)
    assert pixels[0, 0] == 0
    assert pixels[-1, -1] == 255
    assert pixels[50, 50] in range(120, 136)
    assert not thumbnail(np.full((5, 5), np.nan)).any()
    assert set(np.unique(thumbnail(np.full((5, 5), 3.0)))) == {128}
    assert np.array_equal(thumbnail(np.eye(2, dtype=bool)), [[255, 0], [0, 255]])
    big = np.zeros((1000, 10))
    big[:, 5:] = 1
    assert thumbnail(big).shape == (128, 2)
    assert np.array_equal(thumbnail(np.zeros((129, 129), dtype=np.uint8)).shape, (128, 128))


def test_array_summary_counts_nan_and_handles_odd_arrays() -> None:
    assert array_summary(np.array([1.0, np.nan, 3.0])) == "float64 (3,) min 1 max 3 mean 2 NaN 1"
    assert array_summary(np.full(2, np.nan)) == "float64 (2,) all NaN"
    assert array_summary(np.zeros((0, 3))) == "float64 (0, 3)"
    assert array_summary(np.array(["a"])) == "<U1 (1,)"
    assert array_summary(np.array([True, False, True])) == "bool (3,) true 2"


def test_a_2048_square_float_image_stays_under_60_kb() -> None:
    image = np.random.default_rng(1).normal(size=(2048, 2048))  # noise: the worst to compress
    page = Everything(id="big", image=image)._repr_html_()
    assert len(page.encode()) < 60_000
    assert _png_of(_Page(page).images[0]).shape == (128, 128)


def test_a_2048_square_rgb_noise_image_stays_under_60_kb() -> None:
    # RGB noise does not compress: its thumbnail is drawn smaller, shown at full size.
    image = np.random.default_rng(2).random((2048, 2048, 3), dtype=np.float32)
    page = Everything(id="rgb", image=image)._repr_html_()
    assert len(page.encode()) < 60_000
    pixels = _png_of(_Page(page).images[0])
    assert pixels.shape[2] == 3
    assert 32 <= pixels.shape[0] < 128
    assert 'width="128" height="128"' in page


def test_plain_repr_stays_pydantic_with_big_arrays_abbreviated() -> None:
    sample = Everything(id="a", image=np.zeros((2048, 2048)), counts=np.arange(3))
    text = repr(sample)
    assert text.startswith(
        "Everything(processing_history=[], id='a', image=array(shape=(2048, 2048)"
    )
    assert "counts=array([0, 1, 2])" in text
    assert "\n" not in text
    assert len(text) < 600


@pytest.mark.parametrize("value", [np.zeros((3, 3), dtype=complex), np.zeros((4, 4, 2))])
def test_arrays_without_a_picture_show_their_summary(value: np.ndarray) -> None:
    page = _Page(Everything(id="a", image=value)._repr_html_())
    assert not page.images
    assert re.search(rf"{value.dtype} \(", "".join(page.text))
