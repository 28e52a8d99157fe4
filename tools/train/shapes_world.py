"""The shapes world (issue 14): seeded scenes, their questions and answers, and media files.

Everything a scene needs is drawn from one numpy Generator, so a seed reproduces the scene, its
pixels and its file bytes (given the same ffmpeg / libx264 build). The rules are the issue's:

* canvas 160x120, 224x224, 320x240 or 320x180; background black, white or mid-gray (128), each
  channel jittered uniformly by up to 10;
* 1 to 3 filled objects (circle, square, upward isosceles triangle filling its bounding box), colour
  red / green / blue / yellow jittered by up to 20 per channel, box side 15-30% of the shorter canvas
  side, no two objects with the same shape and colour, boxes never overlap (in videos: at no time);
* videos 3-8 s at 8-30 fps, H.264 in MP4 (CRF 18-30); each object still or moving left / right / up /
  down at constant speed over 30-70% of the canvas width (height for up / down), staying inside.

Robustness (deliverable 5): antialiasing varies per scene (1, 2 or 4 samples per pixel axis),
colours and background are jittered, images are PNG or JPEG (quality 60-95), videos use a random
CRF and x264 preset.
"""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CANVASES = [(160, 120), (224, 224), (320, 240), (320, 180)]
BACKGROUNDS = {"black": (0, 0, 0), "white": (255, 255, 255), "gray": (128, 128, 128)}
SHAPES = ["circle", "square", "triangle"]
COLORS = {"red": (220, 30, 30), "green": (30, 180, 30), "blue": (30, 60, 220), "yellow": (230, 210, 30)}
MOTIONS = ["still", "left", "right", "up", "down"]
COUNT_WORDS = {1: "one", 2: "two", 3: "three"}
MOTION_PHRASE = {"still": "standing still", "left": "moving left", "right": "moving right",
                 "up": "moving up", "down": "moving down"}
X264_PRESETS = ["ultrafast", "veryfast", "fast", "medium"]


@dataclass
class Obj:
    shape: str
    color: str
    rgb: tuple[int, int, int]     # jittered colour
    side: float                   # bounding-box side in pixels
    x0: float                     # top-left corner at the start
    y0: float
    motion: str = "still"
    travel: float = 0.0           # pixels over the whole clip

    def corner_at(self, f: float) -> tuple[float, float]:
        """Top-left corner at fraction f in [0, 1] of the clip."""
        d = self.travel * f
        dx, dy = {"still": (0, 0), "left": (-d, 0), "right": (d, 0), "up": (0, -d), "down": (0, d)}[self.motion]
        return self.x0 + dx, self.y0 + dy

    def start_center_x(self) -> float:
        return self.x0 + self.side / 2


@dataclass
class Scene:
    kind: str                     # "image" or "video"
    width: int
    height: int
    background: str
    bg_rgb: tuple[int, int, int]
    objects: list[Obj]
    aa: int                       # samples per pixel axis (1 = aliased edges)
    fmt: str                      # "png" / "jpeg" / "mp4"
    quality: int = 90             # JPEG quality
    duration: float = 0.0
    fps: int = 0
    crf: int = 0
    preset: str = "veryfast"
    extra: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(round(self.duration * self.fps))


def _jitter(rng: np.random.Generator, rgb, amount: int) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)


def _boxes_overlap(a, b) -> bool:
    """a, b: (x0, y0, x1, y1); touching edges do not count as overlap."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _swept_box(o: Obj) -> tuple[float, float, float, float]:
    """The union of the object's boxes over the clip (the motion is a straight line)."""
    xa, ya = o.corner_at(0.0)
    xb, yb = o.corner_at(1.0)
    return min(xa, xb), min(ya, yb), max(xa, xb) + o.side, max(ya, yb) + o.side


# "zoomed" training scenes (make_data.py --zoom): one object, a third to a half of a small canvas, so it is
# 4-9 merged tokens a video group (images are still upscaled by the processor to its 64-token minimum,
# where the object then covers a large part of them): the object is easy to find, the rest of the
# world's rules (colours, jitter, motion 30-70% of the canvas, anti-aliasing, codecs) unchanged
ZOOM_CANVASES = [(64, 64), (96, 96), (96, 64), (64, 96)]
ZOOM_SIDE = (0.30, 0.45)


def make_scene(rng: np.random.Generator, kind: str, zoom: bool = False) -> Scene:
    if zoom:
        w, h = ZOOM_CANVASES[rng.integers(len(ZOOM_CANVASES))]
    else:
        w, h = CANVASES[rng.integers(len(CANVASES))]
    bg = list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
    bg_rgb = _jitter(rng, BACKGROUNDS[bg], 10)
    while True:
        objs = _place_objects(rng, kind, w, h, n=1, side_frac=ZOOM_SIDE) if zoom else _place_objects(rng, kind, w, h)
        if objs:
            break
    aa = int(rng.choice([1, 2, 4]))
    if kind == "image":
        fmt = "png" if rng.random() < 0.5 else "jpeg"
        return Scene(kind, w, h, bg, bg_rgb, objs, aa, fmt, quality=int(rng.integers(60, 96)))
    duration = float(rng.uniform(3.0, 8.0))
    fps = int(rng.integers(8, 31))
    return Scene(kind, w, h, bg, bg_rgb, objs, aa, "mp4", duration=duration, fps=fps,
                 crf=int(rng.integers(18, 31)), preset=X264_PRESETS[rng.integers(len(X264_PRESETS))])


def _place_objects(rng: np.random.Generator, kind: str, w: int, h: int, n: int = 0,
                   side_frac: tuple[float, float] = (0.15, 0.30)) -> list[Obj] | None:
    n = n or int(rng.integers(1, 4))
    pairs = [(s, c) for s in SHAPES for c in COLORS]
    chosen = [pairs[i] for i in rng.choice(len(pairs), size=n, replace=False)]
    objs: list[Obj] = []
    short = min(w, h)
    for shape, color in chosen:
        for _ in range(200):
            side = float(rng.uniform(*side_frac) * short)
            motion = MOTIONS[rng.integers(len(MOTIONS))] if kind == "video" else "still"
            travel = 0.0
            if motion in ("left", "right"):
                travel = float(rng.uniform(0.3, 0.7) * w)
            elif motion in ("up", "down"):
                travel = float(rng.uniform(0.3, 0.7) * h)
            span_x = w - side - (travel if motion in ("left", "right") else 0.0)
            span_y = h - side - (travel if motion in ("up", "down") else 0.0)
            if span_x < 0 or span_y < 0:
                continue
            x0, y0 = float(rng.uniform(0, span_x)), float(rng.uniform(0, span_y))
            if motion == "left":
                x0 += travel
            if motion == "up":
                y0 += travel
            o = Obj(shape, color, _jitter(rng, COLORS[color], 20), side, x0, y0, motion, travel)
            if all(not _boxes_overlap(_swept_box(o), _swept_box(p)) for p in objs):
                objs.append(o)
                break
        else:
            return None
    # "left to right by the x of their centres at the start" must be unambiguous
    xs = sorted(o.start_center_x() for o in objs)
    if any(b - a < 1.0 for a, b in zip(xs, xs[1:])):
        return None
    return objs


# ------------------------------------------------------------------------------------------------
# questions

def item_phrase(color: str, shape: str, motion: str | None = None) -> str:
    """One object as a description lists it: "a red circle", or in a video "a red circle moving right"."""
    return f"a {color} {shape}" + (" " + MOTION_PHRASE[motion] if motion is not None else "")


def describe(scene: Scene) -> str:
    items = [item_phrase(o.color, o.shape, o.motion if scene.kind == "video" else None)
             for o in sorted(scene.objects, key=Obj.start_center_x)]
    if len(items) == 1:
        text = items[0]
    else:
        text = ", ".join(items[:-1]) + " and " + items[-1]
    return text[0].upper() + text[1:] + "."


def questions(scene: Scene) -> list[tuple[str, str, str]]:
    """Every question the world allows for the scene: (template, question, answer)."""
    out = []
    for shape in SHAPES:
        having = [o for o in scene.objects if o.shape == shape]
        if len(having) == 1:
            out.append(("color", f"What color is the {shape}?", having[0].color))
    for color in COLORS:
        having = [o for o in scene.objects if o.color == color]
        if len(having) == 1:
            out.append(("shape", f"What shape is the {color} object?", having[0].shape))
    out.append(("count", "How many objects are there?", COUNT_WORDS[len(scene.objects)]))
    if scene.kind == "video":
        for o in scene.objects:
            out.append(("motion", f"Which way does the {o.color} {o.shape} move?", o.motion))
        out.append(("describe", "Describe the video.", describe(scene)))
    else:
        out.append(("describe", "Describe the image.", describe(scene)))
    return out


# ------------------------------------------------------------------------------------------------
# rendering

def _coverage(shape: str, x0: float, y0: float, side: float, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Inside test at sample points (pixel-space coordinates, pixel centres at +0.5)."""
    u = (xs - x0) / side          # 0..1 across the box
    v = (ys - y0) / side
    inbox = (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)
    if shape == "square":
        return inbox
    if shape == "circle":
        return (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25
    # upward isosceles triangle: apex at the top centre, base along the bottom edge
    return inbox & (np.abs(u - 0.5) <= v / 2)


def render_frame(scene: Scene, f: float) -> np.ndarray:
    """uint8 [H, W, 3] at fraction f of the clip (0 for images)."""
    img = np.empty((scene.height, scene.width, 3), np.float32)
    img[:] = scene.bg_rgb
    ss = scene.aa
    offs = (np.arange(ss) + 0.5) / ss
    for o in scene.objects:
        x0, y0 = o.corner_at(f)
        c0, c1 = max(0, int(np.floor(x0))), min(scene.width, int(np.ceil(x0 + o.side)) + 1)
        r0, r1 = max(0, int(np.floor(y0))), min(scene.height, int(np.ceil(y0 + o.side)) + 1)
        if c1 <= c0 or r1 <= r0:
            continue
        xs = (np.arange(c0, c1)[:, None] + offs[None, :]).ravel()           # [cols*ss]
        ys = (np.arange(r0, r1)[:, None] + offs[None, :]).ravel()           # [rows*ss]
        inside = _coverage(o.shape, x0, y0, o.side, xs[None, :], ys[:, None]).astype(np.float32)
        cov = inside.reshape(r1 - r0, ss, c1 - c0, ss).mean(axis=(1, 3))[..., None]
        region = img[r0:r1, c0:c1]
        img[r0:r1, c0:c1] = region * (1 - cov) + np.asarray(o.rgb, np.float32) * cov
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_media(scene: Scene, path_stem: Path) -> Path:
    """Writes the scene's file (path_stem + extension) and returns its path."""
    import PIL.Image
    if scene.kind == "image":
        img = PIL.Image.fromarray(render_frame(scene, 0.0))
        if scene.fmt == "png":
            path = path_stem.with_suffix(".png")
            img.save(path, format="PNG")
        else:
            path = path_stem.with_suffix(".jpg")
            img.save(path, format="JPEG", quality=scene.quality)
        return path
    path = path_stem.with_suffix(".mp4")
    n = scene.n_frames
    frames = b"".join(render_frame(scene, i / max(1, n - 1)).tobytes() for i in range(n))
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{scene.width}x{scene.height}", "-r", str(scene.fps), "-i", "-",
           "-c:v", "libx264", "-preset", scene.preset, "-crf", str(scene.crf), "-pix_fmt", "yuv420p",
           "-threads", "1", "-x264-params", "threads=1", "-bitexact", "-map_metadata", "-1",
           "-movflags", "+faststart", str(path)]
    subprocess.run(cmd, input=frames, check=True)
    return path


def decode_video(path: Path) -> tuple[np.ndarray, float]:
    """All frames as uint8 [N, H, W, 3] (ffmpeg CLI, rgb24) and the stream's frame rate."""
    import json
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height,avg_frame_rate", "-of", "json", str(path)],
                           check=True, capture_output=True, text=True)
    st = json.loads(probe.stdout)["streams"][0]
    w, h = int(st["width"]), int(st["height"])
    num, den = st["avg_frame_rate"].split("/")
    fps = float(num) / float(den)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-threads", "1", "-i", str(path), "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)
    return frames, fps


def load_image(path: Path) -> np.ndarray:
    import PIL.Image
    with PIL.Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def scene_to_dict(scene: Scene) -> dict:
    d = {k: v for k, v in scene.__dict__.items() if k != "objects"}
    d["objects"] = [dict(o.__dict__) for o in scene.objects]
    return d
