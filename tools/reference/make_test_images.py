#!/usr/bin/env python3
"""Write the small deterministic test images in tests/fixtures/images/.

Content: smooth 2-D colour gradients + a few hard-edged shapes + seeded noise (so resize and
colour-conversion errors show), different per image (seeded by name). Pillow only (plus a
hand-written 16-bit RGB PNG, which Pillow cannot write).

    python tools/reference/make_test_images.py

The files are committed; tests/fixtures/vision/images.json describes what transformers makes of
each (make_vision_fixtures.py). Re-running with other Pillow/libjpeg/libwebp versions may change
the bytes of the lossy files (JPEG); the committed files are the reference, not this script.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = ROOT / "tests/fixtures/images"


def content(w: int, h: int, seed: int, noise: float = 12.0) -> np.ndarray:
    """float64 [h, w, 3] in [0, 255]: gradients + shapes + noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = x / max(w - 1, 1), y / max(h - 1, 1)
    a, b, c = rng.uniform(0.5, 2.0, 3)
    img = np.stack([
        255 * u,
        255 * (0.5 + 0.5 * np.sin(2 * np.pi * (a * v + 0.3 * u))),
        255 * (1 - 0.6 * v) * (0.5 + 0.5 * np.cos(2 * np.pi * b * (u * v + c))),
    ], axis=-1)
    # shapes: a filled rectangle, a disc, a diagonal stripe (asymmetric, so flips/rotations show)
    x0, y0 = int(w * 0.1), int(h * 0.15)
    img[y0:y0 + max(2, h // 4), x0:x0 + max(2, w // 3)] = rng.uniform(0, 255, 3)
    cx, cy, r = w * 0.7, h * 0.65, min(w, h) * 0.2
    img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
    img[np.abs((x / w) - (y / h) * 0.5 - 0.2) < 0.03] = [250, 250, 20]
    img += rng.normal(0, noise, img.shape)
    return np.clip(img, 0, 255)


def u8(a: np.ndarray) -> np.ndarray:
    return np.round(a).astype(np.uint8)


def png_rgb16(path: Path, rgb16: np.ndarray) -> None:
    """Minimal 16-bit RGB PNG (colour type 2, bit depth 16, no interlace, filter 0)."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[i].astype(">u2").tobytes() for i in range(h))

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    path.write_bytes(data)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()

    # plain RGB PNGs
    Image.fromarray(u8(content(97, 61, 1))).save(OUT / "rgb-97x61.png", optimize=True)
    Image.fromarray(u8(content(32, 32, 2))).save(OUT / "rgb-32x32.png", optimize=True)
    Image.fromarray(u8(content(40, 33, 3))).save(OUT / "rgb-40x33.png", optimize=True)

    # RGBA: alpha ramps 0..255 left->right with a fully transparent hole (colour kept under it)
    rgb = content(80, 56, 4)
    yy, xx = np.mgrid[0:56, 0:80]
    alpha = np.round(255 * xx / 79.0)
    alpha[(xx - 20) ** 2 + (yy - 28) ** 2 < 100] = 0
    Image.fromarray(np.dstack([u8(rgb), alpha.astype(np.uint8)])).save(OUT / "rgba-80x56.png", optimize=True)

    # 8-bit grayscale (mode L)
    g = content(72, 50, 5) @ np.array([0.299, 0.587, 0.114])
    Image.fromarray(u8(g)).save(OUT / "gray-72x50.png", optimize=True)

    # 16-bit grayscale (Pillow mode I;16): values span the full 0..65535 range
    g16 = np.round(content(64, 48, 6) @ np.array([0.299, 0.587, 0.114]) * 257.0).astype(np.uint16)
    Image.fromarray(g16).save(OUT / "gray16-64x48.png")

    # 16-bit RGB PNG (hand written): low byte = noise, so 16->8 conversions that round differ
    # from ones that truncate
    rng = np.random.default_rng(7)
    c16 = np.round(content(60, 44, 7) * 257.0).astype(np.int64) + rng.integers(-200, 200, (44, 60, 3))
    png_rgb16(OUT / "rgb16-60x44.png", np.clip(c16, 0, 65535).astype(np.uint16))

    # JPEG with EXIF orientation 6: stored 96 wide x 64 high; displayed (rotated 90 CW) 64 x 96
    ex = Image.Exif()
    ex[0x0112] = 6
    Image.fromarray(u8(content(96, 64, 8, noise=6.0))).save(OUT / "exif6-stored96x64.jpg", quality=92,
                                                            exif=ex.tobytes(), subsampling=0)

    # WebP (lossless, so the decoded pixels are exact), BMP (24-bit), GIF (2 frames; frame 0 used)
    Image.fromarray(u8(content(70, 45, 9))).save(OUT / "rgb-70x45.webp", lossless=True, quality=100, method=6)
    Image.fromarray(u8(content(50, 37, 10))).save(OUT / "rgb-50x37.bmp")
    f0 = Image.fromarray(u8(content(48, 40, 11, noise=4.0))).quantize(64, dither=Image.Dither.NONE)
    f1 = Image.fromarray(u8(content(48, 40, 12, noise=4.0))).quantize(64, dither=Image.Dither.NONE)
    f0.save(OUT / "anim-48x40.gif", save_all=True, append_images=[f1], duration=100, loop=0)

    # "large": triggers the max-pixels rule under the test budget (max_pixels 32768)
    Image.fromarray(u8(content(320, 200, 13, noise=3.0))).save(OUT / "large-320x200.png", optimize=True)

    for p in sorted(OUT.iterdir()):
        print(f"{p.name:28s} {p.stat().st_size:7d} B")


if __name__ == "__main__":
    main()
