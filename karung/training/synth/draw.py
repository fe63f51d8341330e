"""Pixel plumbing shared by all renderers: RGBA sprites, compositing, warps and shading.

Convention: a *sprite* is a float32 ``H x W x 4`` array with PREMULTIPLIED colour (RGB in
``[0, 255 * alpha]``, alpha in ``[0, 1]``): compositing then needs no division, and resizing,
rotating and warping a sprite blend edges correctly. An opaque texture warped with a zero
border comes out premultiplied by itself. An *image* is float32 ``H x W x 3`` in ``[0, 255]``.
"""

from __future__ import annotations

import cv2
import numpy as np

from karung.training.synth.noise import value_noise


def new_sprite(h: int, w: int) -> np.ndarray:
    """An empty (transparent) sprite."""
    return np.zeros((h, w, 4), np.float32)


def solid(h: int, w: int, rgb: tuple[float, float, float] | np.ndarray) -> np.ndarray:
    """An image of one colour."""
    return np.broadcast_to(np.asarray(rgb, np.float32), (h, w, 3)).copy()


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Clip and round a float image to uint8."""
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def chan(m: np.ndarray, n: int = 3) -> np.ndarray:
    """Repeat a one-channel float map over ``n`` channels.

    Multiplying by ``m[..., None]`` makes numpy broadcast over a last axis of 3 or 4, which is
    several times slower than a same-shape product; this copy costs less than the difference.
    """
    m = np.ascontiguousarray(m, dtype=np.float32)
    if n == 3:
        return cv2.cvtColor(m, cv2.COLOR_GRAY2RGB)
    return cv2.merge([m] * n)


def over(dst: np.ndarray, src: np.ndarray, x: int, y: int) -> None:
    """Composite premultiplied sprite ``src`` onto image or sprite ``dst`` at ``(x, y)``, in place.

    Parts of ``src`` outside ``dst`` are clipped.
    """
    h, w = src.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, dst.shape[1]), min(y + h, dst.shape[0])
    if x0 >= x1 or y0 >= y1:
        return
    s = src[y0 - y : y1 - y, x0 - x : x1 - x]
    d = dst[y0:y1, x0:x1]
    keep = 1.0 - s[..., 3]
    if dst.shape[2] == 3:
        d *= chan(keep, 3)
        d += s[..., :3]
    else:
        d *= chan(keep, 4)
        d += s


def premultiply(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A sprite from straight colour ``rgb`` (``H x W x 3``) and ``alpha`` (``H x W``)."""
    a = alpha.astype(np.float32)
    out = cv2.cvtColor(rgb.astype(np.float32) * chan(a), cv2.COLOR_RGB2RGBA)
    out[..., 3] = a
    return out


def opaque(rgb: np.ndarray) -> np.ndarray:
    """A fully opaque sprite from an image."""
    return cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2RGBA)  # float alpha = 1.0


def crop_to_content(sprite: np.ndarray, pad: int = 1) -> np.ndarray:
    """Trim fully transparent margins (keeps ``pad`` pixels)."""
    ys, xs = np.nonzero(sprite[..., 3] > 0.01)
    if len(xs) == 0:
        return sprite
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, sprite.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, sprite.shape[1])
    return sprite[y0:y1, x0:x1]


def resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Resize with area averaging when shrinking and bilinear when enlarging."""
    w, h = max(1, int(w)), max(1, int(h))
    shrink = w * h < img.shape[0] * img.shape[1]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(img, (w, h), interpolation=interp)


def fit_long_side(sprite: np.ndarray, long_side: int) -> np.ndarray:
    """Scale a sprite so that its longer side is ``long_side`` pixels."""
    h, w = sprite.shape[:2]
    s = long_side / max(h, w)
    return resize(sprite, round(w * s), round(h * s))


def warp_quad(
    tex: np.ndarray, quad: np.ndarray, canvas: np.ndarray, edge_dark: float = 0.0
) -> None:
    """Warp texture ``tex`` (RGB or RGBA) onto the quadrilateral ``quad`` of sprite ``canvas``.

    ``quad`` is ``4 x 2`` (top-left, top-right, bottom-right, bottom-left). Only the quad's
    bounding box is warped, which keeps many small faces cheap.
    """
    th, tw = tex.shape[:2]
    x0, y0 = np.floor(quad.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + 2
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, canvas.shape[1]), min(y1, canvas.shape[0])
    if x1 - x0 < 1 or y1 - y0 < 1:
        return
    if tex.shape[2] == 3:
        tex = opaque(tex)
    if edge_dark > 0:
        tex = tex.copy()
        tex[..., :3] *= chan(edge_falloff(th, tw, edge_dark))
    src = np.array([[0, 0], [tw, 0], [tw, th], [0, th]], np.float32)
    dst = (quad - np.array([x0, y0], np.float32)).astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(
        tex, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    over(canvas, warped, x0, y0)


def edge_falloff(h: int, w: int, strength: float) -> np.ndarray:
    """A multiplier that darkens towards the borders (rounded, pillowy edges)."""
    ys = np.minimum(np.arange(h), np.arange(h)[::-1]).astype(np.float32) / max(h * 0.18, 1.0)
    xs = np.minimum(np.arange(w), np.arange(w)[::-1]).astype(np.float32) / max(w * 0.18, 1.0)
    d = np.minimum(np.minimum(ys[:, None], 1.0), np.minimum(xs[None, :], 1.0))
    return (1.0 - strength) + strength * np.sqrt(d)


def wobble(sprite: np.ndarray, rng: np.random.Generator, amp: float, cell: float) -> np.ndarray:
    """Displace pixels by smooth noise (``amp`` px) so straight edges look hand-made."""
    h, w = sprite.shape[:2]
    if amp <= 0:
        return sprite
    dx = (value_noise(rng, h, w, cell) - 0.5) * 2 * amp
    dy = (value_noise(rng, h, w, cell) - 0.5) * 2 * amp
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(sprite, gx + dx, gy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def height_shading(
    mask: np.ndarray,
    light: tuple[float, float],
    bump: np.ndarray | None,
    strength: float,
    rim: float = 0.0,
) -> np.ndarray:
    """Lambert-like shading of a pillow whose height grows with the distance to the edge.

    ``mask`` is float ``[0, 1]``; ``bump`` (optional) adds lumps; ``rim`` darkens towards the
    outline (the sides turning away from the camera). Returns a multiplier map.

    The shading is smooth, so it is computed on a copy at most 72 px long and enlarged; that
    is cheap, and enlarging the shade (not the height) leaves no interpolation bands.
    """
    h, w = mask.shape
    f = min(1.0, 72.0 / max(h, w))
    sw, sh = max(4, round(w * f)), max(4, round(h * f))
    small = cv2.resize(mask, (sw, sh), interpolation=cv2.INTER_AREA)
    # A zero border: a mask filling its whole frame still has an outline to measure from.
    m8 = cv2.copyMakeBorder(
        (small > 0.5).astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0
    )
    dist = cv2.distanceTransform(m8, cv2.DIST_L2, 3)[1:-1, 1:-1]
    peak = max(float(dist.max()), 1.0)
    # The distance transform has creases along the medial axis; blurring rounds them off.
    k = 2 * int(peak * 0.35 * 2) + 1
    height = cv2.GaussianBlur(np.sqrt(dist / peak), (k, k), max(0.8, peak * 0.35))
    if bump is not None:
        height = height + cv2.resize(bump, (sw, sh), interpolation=cv2.INTER_AREA)
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3)
    nx, ny = -gx * peak * 0.35, -gy * peak * 0.35
    lam = (nx * light[0] + ny * light[1] + 1.0) / np.sqrt(nx * nx + ny * ny + 1.0)
    shade = 1.0 - strength + strength * lam
    if rim > 0:
        shade = shade * (1.0 - rim + rim * np.sqrt(np.clip(height, 0.0, 1.0)))
    shade = cv2.resize(
        np.clip(shade, 0.15, 1.4).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR
    )
    return shade


def smooth(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; wide ones are done on a shrunken copy (same look, a fraction of the cost)."""
    h, w = img.shape[:2]
    if sigma <= 3.0:
        k = 2 * int(3 * sigma) + 1
        return cv2.GaussianBlur(img, (k, k), sigma)
    f = sigma / 2.0
    sw, sh = max(2, round(w / f)), max(2, round(h / f))
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (9, 9), 2.0)
    # Cubic keeps the slope continuous: shading derived from it shows no bands.
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def soft_ellipse(h: int, w: int, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    """A soft elliptical blob in ``[0, 1]`` (contact shadows, highlights)."""
    ys, xs = np.ogrid[:h, :w]
    d = ((xs - cx) / max(rx, 1e-3)) ** 2 + ((ys - cy) / max(ry, 1e-3)) ** 2
    return np.clip(1.0 - d, 0.0, 1.0).astype(np.float32) ** 1.5


def rotate_sprite(sprite: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate a sprite about its centre, growing the canvas so nothing is cut."""
    h, w = sprite.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos) + 2, int(h * cos + w * sin) + 2
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(sprite, m, (nw, nh), flags=cv2.INTER_LINEAR)


def view_warp(sprite: np.ndarray, yaw: float, pitch: float, depth: float = 0.3) -> np.ndarray:
    """Foreshorten a flat-ish sprite as if seen from ``yaw``/``pitch`` (degrees).

    ``depth`` says how deep the object is relative to its width (0 = a flat sheet): deep,
    round things keep their width when turned; flat ones narrow.
    """
    h, w = sprite.shape[:2]
    yr, pr = np.radians(yaw), np.radians(pitch)
    top = 1.0 - 0.35 * np.sin(pr) * (1.0 - depth)  # the far (top) edge shrinks when looking down
    sx = 1.0 - (1.0 - np.cos(yr)) * (1.0 - depth)
    sy = 1.0 - (1.0 - np.cos(pr)) * (1.0 - depth) * 0.8
    skew = np.sin(yr) * 0.12 * h
    nw, nh = w * sx, h * sy
    dst = np.array(
        [[(nw - nw * top) / 2 + skew, 0], [(nw + nw * top) / 2 + skew, 0], [nw, nh], [0, nh]],
        np.float32,
    )
    dst[:, 0] -= min(0.0, float(dst[:, 0].min()))
    out_w = int(np.ceil(dst[:, 0].max())) + 1
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(sprite, m, (out_w, int(np.ceil(nh)) + 1), flags=cv2.INTER_LINEAR)


def cutout_sprite(rgba: np.ndarray, long_side: int | None = None) -> np.ndarray:
    """A float sprite from a uint8 premultiplied cut-out, resized first (cheaper) if asked."""
    if long_side is not None:
        h, w = rgba.shape[:2]
        s = long_side / max(h, w)
        rgba = resize(rgba, round(w * s), round(h * s))
    sprite = rgba.astype(np.float32)
    sprite[..., 3] *= np.float32(1.0 / 255.0)
    return sprite
