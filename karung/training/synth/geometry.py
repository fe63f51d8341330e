"""A tiny perspective renderer for boxes: bales, folded stacks, cartons and furniture.

World axes: x right, y up, z towards the viewer; the camera sits on the z axis, raised by
``pitch`` and turned by ``yaw``. Faces are textured by a callback and drawn far to near
(painter's algorithm), which is exact for the non-intersecting boxes used here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from karung.training.synth.draw import new_sprite, warp_quad

# Corner signs (x, y, z) per face, ordered top-left, top-right, bottom-right, bottom-left as
# seen from outside with "up" = +y (for the top face, "up" is the far edge, -z).
FACE_CORNERS: Final[dict[str, tuple[tuple[int, int, int], ...]]] = {
    "front": ((-1, 1, 1), (1, 1, 1), (1, -1, 1), (-1, -1, 1)),
    "back": ((1, 1, -1), (-1, 1, -1), (-1, -1, -1), (1, -1, -1)),
    "right": ((1, 1, 1), (1, 1, -1), (1, -1, -1), (1, -1, 1)),
    "left": ((-1, 1, -1), (-1, 1, 1), (-1, -1, 1), (-1, -1, -1)),
    "top": ((-1, 1, -1), (1, 1, -1), (1, 1, 1), (-1, 1, 1)),
}
FACE_NORMALS: Final[dict[str, tuple[int, int, int]]] = {
    "front": (0, 0, 1),
    "back": (0, 0, -1),
    "right": (1, 0, 0),
    "left": (-1, 0, 0),
    "top": (0, 1, 0),
}
# Physical (width, height) of each face as indices into the box size (sx, sy, sz).
FACE_DIMS: Final[dict[str, tuple[int, int]]] = {
    "front": (0, 1),
    "back": (0, 1),
    "right": (2, 1),
    "left": (2, 1),
    "top": (0, 2),
}

# texture(box_index, face, width_px, height_px) -> float RGB or RGBA image
TextureFn = Callable[[int, str, int, int], np.ndarray]


@dataclass(frozen=True)
class Camera:
    """Viewpoint: ``yaw`` and ``pitch`` in degrees; ``distance`` in multiples of the scene size."""

    yaw: float
    pitch: float
    distance: float = 3.0


@dataclass(frozen=True)
class Box:
    """An axis-aligned box; ``center`` and ``size`` in metres."""

    center: tuple[float, float, float]
    size: tuple[float, float, float]


def _rotation(cam: Camera) -> np.ndarray:
    y, p = math.radians(cam.yaw), math.radians(cam.pitch)
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    return rx @ ry


@dataclass(frozen=True)
class _Face:
    box: int
    name: str
    quad: np.ndarray  # 4 x 2 projected, before fitting
    depth: float
    dims: tuple[float, float]
    facing: float  # cosine between normal and view direction (for shading)


def _faces(boxes: Sequence[Box], cam: Camera) -> list[_Face]:
    rot = _rotation(cam)
    extent = max(max(abs(c) + s / 2 for c, s in zip(b.center, b.size, strict=True)) for b in boxes)
    dist = cam.distance * extent * 2
    out: list[_Face] = []
    for i, box in enumerate(boxes):
        c, half = np.asarray(box.center), np.asarray(box.size) / 2
        for name, corners in FACE_CORNERS.items():
            pts = (c + np.asarray(corners) * half) @ rot.T
            normal = rot @ np.asarray(FACE_NORMALS[name], float)
            to_cam = np.array([0.0, 0.0, dist]) - pts.mean(axis=0)
            facing = float(normal @ to_cam) / float(np.linalg.norm(to_cam))
            if facing <= 0.02:
                continue
            z = dist - pts[:, 2]
            quad = np.stack([pts[:, 0] / z, -pts[:, 1] / z], axis=1)
            depth = float(dist - (c @ rot.T)[2])
            dims = (box.size[FACE_DIMS[name][0]], box.size[FACE_DIMS[name][1]])
            out.append(_Face(i, name, quad, depth, dims, facing))
    return out


def render_boxes(
    boxes: Sequence[Box], cam: Camera, long_side: int, texture: TextureFn, edge_dark: float = 0.25
) -> np.ndarray:
    """Render ``boxes`` into a sprite whose longer side is about ``long_side`` pixels."""
    faces = _faces(boxes, cam)
    allq = np.concatenate([f.quad for f in faces])
    lo, hi = allq.min(axis=0), allq.max(axis=0)
    scale = (long_side - 4) / max(float((hi - lo).max()), 1e-9)
    w, h = (np.ceil((hi - lo) * scale) + 4).astype(int)
    sprite = new_sprite(int(h), int(w))
    light = {"front": 1.0, "back": 0.8, "top": 1.12, "right": 0.8, "left": 0.8}
    for face in sorted(faces, key=lambda f: (-f.depth, f.facing)):
        quad = ((face.quad - lo) * scale + 2).astype(np.float32)
        edges = np.linalg.norm(np.roll(quad, -1, axis=0) - quad, axis=1)
        ratio = face.dims[1] / max(face.dims[0], 1e-9)
        tw = int(np.clip(max(edges[0], edges[2]), 4, 512))
        th = int(np.clip(tw * ratio, 4, 768))
        tex = texture(face.box, face.name, tw, th)
        shade = light[face.name] * (0.8 + 0.2 * face.facing)
        tex = tex.copy()
        tex[..., :3] *= shade
        warp_quad(tex, quad, sprite, edge_dark)
    return sprite
