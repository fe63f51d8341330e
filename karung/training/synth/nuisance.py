"""Photo nuisances applied identically to every class: light, shadows, tilt, overlays,
screenshot frames, blur, noise, resampling and JPEG.

All parameters come from the label-independent :class:`~karung.training.synth.scene.Scene`;
only the fine detail (where a shadow falls, which words) uses this module's own RNG stream.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from karung.training.synth import text
from karung.training.synth.decor import stamp, text_mask
from karung.training.synth.draw import chan, smooth, to_uint8
from karung.training.synth.noise import value_noise
from karung.training.synth.scene import Scene

Rng = np.random.Generator


def lighting(rng: Rng, img: np.ndarray, sc: Scene) -> np.ndarray:
    """Exposure, gamma, white balance, a light gradient and vignetting."""
    h, w = img.shape[:2]
    xs = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :]
    ys = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]
    grad = 1.0 + 0.25 * (xs * sc.light_x - ys * sc.light_y)
    gain = sc.gain * grad * (1.0 - sc.vignette * 2.0 * (xs * xs + ys * ys))
    if sc.flash:  # the flash lights the middle of a dim room and little else
        gain = gain * np.clip(1.35 - 2.2 * (xs * xs + ys * ys), 0.3, 1.35)
    wb = np.array([1 + 0.1 * sc.warmth, 1.0, 1 - 0.12 * sc.warmth], np.float32)
    lit = img * chan(gain) * wb
    # Gamma through a lookup table on 8 bits: the output is 8-bit JPEG anyway.
    lut = (np.linspace(0, 1, 256) ** sc.gamma * 255.0).astype(np.float32)
    return lut[np.clip(lit, 0, 255).astype(np.uint8)]


def cast_shadow(rng: Rng, img: np.ndarray) -> np.ndarray:
    """A soft shadow of something outside the frame (a person, a window frame, a plant)."""
    h, w = img.shape[:2]
    pts = rng.random((int(rng.integers(3, 7)), 2)) * [w * 1.4, h * 1.4] - [w * 0.2, h * 0.2]
    mask = np.zeros((h, w), np.float32)
    cv2.fillPoly(mask, [cv2.convexHull(pts.astype(np.int32))], 1.0)
    mask = smooth(mask, max(2.0, max(h, w) * rng.uniform(0.01, 0.05)))
    return img * chan(1.0 - float(rng.uniform(0.2, 0.5)) * mask)


def perspective(rng: Rng, img: np.ndarray, sc: Scene) -> np.ndarray:
    """A slightly tilted phone: roll plus a random keystone, borders reflected."""
    h, w = img.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    jitter = rng.uniform(-sc.warp, sc.warp, (4, 2)) * [w, h]
    m = cv2.getPerspectiveTransform(src, (src + jitter).astype(np.float32))
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), sc.roll, 1.0 + abs(sc.roll) / 40)
    m = np.vstack([rot, [0, 0, 1]]) @ m
    return cv2.warpPerspective(
        img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )


def overlay_text(rng: Rng, img: np.ndarray) -> None:
    """A seller's caption (price, handle, words), sometimes on a coloured band; in place."""
    h, w = img.shape[:2]
    size = int(min(h, w) * rng.uniform(0.05, 0.12))
    mask = text_mask(text.caption(rng), size, rng)[:, : w - 4]
    x = int(rng.integers(2, max(3, w - mask.shape[1] - 2)))
    y = int(rng.integers(2, max(3, h - mask.shape[0] - 2)))
    if rng.random() < 0.4:
        band = img[max(y - 3, 0) : y + mask.shape[0] + 3, max(x - 4, 0) : x + mask.shape[1] + 4]
        band *= 0.25
        band += np.float32(rng.uniform(0, 255, 3)) * 0.75
    colour = (
        (255, 255, 255) if rng.random() < 0.6 else tuple(float(c) for c in rng.uniform(0, 255, 3))
    )
    if rng.random() < 0.5:  # outline for legibility, as phone editors do
        stamp(img, cv2.dilate(mask, np.ones((3, 3), np.uint8)), x, y, (0, 0, 0), 0.7)
    stamp(img, mask, x, y, colour, 1.0)


def watermark(rng: Rng, img: np.ndarray) -> None:
    """A faint shop handle: big and diagonal across the middle, or small in a corner."""
    h, w = img.shape[:2]
    mask = text_mask(text.handle(rng), int(min(h, w) * rng.uniform(0.05, 0.14)), rng)
    if rng.random() < 0.5:
        angle = float(rng.uniform(-35, 35))
        m = cv2.getRotationMatrix2D((mask.shape[1] / 2, mask.shape[0] / 2), angle, 1.0)
        mask = cv2.warpAffine(mask, m, (mask.shape[1], mask.shape[0] + int(abs(angle))))
        x, y = (w - mask.shape[1]) // 2, (h - mask.shape[0]) // 2
    else:
        x = [4, w - mask.shape[1] - 4][int(rng.integers(2))]
        y = [4, h - mask.shape[0] - 4][int(rng.integers(2))]
    stamp(img, mask[:, :w], max(x, 0), max(y, 0), (255, 255, 255), float(rng.uniform(0.25, 0.55)))


def screenshot_frame(rng: Rng, img: np.ndarray, sc: Scene, size: int) -> np.ndarray:
    """Put the photo inside a phone (or desktop) marketplace screen with bars and a caption."""
    fw, fh = (
        (round(size * 9 / 16), size)
        if sc.screenshot == "portrait"
        else (size, round(size * 9 / 16))
    )
    dark = rng.random() < 0.3
    frame = np.full((fh, fw, 3), 22 if dark else 246, np.float32)
    bar = max(8, fh // 28)
    frame[:bar] = 0 if dark else 235
    ink = (235, 235, 235) if dark else (25, 25, 25)
    stamp(
        frame,
        text_mask(f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}", bar - 2, rng),
        4,
        1,
        ink,
        1.0,
    )
    ih, iw = img.shape[:2]
    s = min((fw - 8) / iw, (fh - 3 * bar - fh * 0.15) / ih)
    photo = cv2.resize(
        img, (max(1, int(iw * s)), max(1, int(ih * s))), interpolation=cv2.INTER_AREA
    )
    x, y = (fw - photo.shape[1]) // 2, 2 * bar
    frame[y : y + photo.shape[0], x : x + photo.shape[1]] = photo
    ty = y + photo.shape[0] + bar // 2
    for _ in range(int(rng.integers(1, 4))):
        if ty + bar > fh - 2:
            break
        stamp(frame, text_mask(text.caption(rng), bar, rng)[:, : fw - 8], 6, ty, ink, 1.0)
        ty += int(bar * 1.5)
    return frame


def degrade(rng: Rng, img: np.ndarray, sc: Scene) -> np.ndarray:
    """Resampling, blur (focus or motion) and sensor noise."""
    h, w = img.shape[:2]
    if sc.downscale < 1.0:
        small = cv2.resize(
            img,
            (max(8, int(w * sc.downscale)), max(8, int(h * sc.downscale))),
            interpolation=cv2.INTER_AREA,
        )
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if sc.blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), sc.blur)
    if sc.motion > 0:
        k: np.ndarray = np.zeros((sc.motion, sc.motion), np.float32)
        k[sc.motion // 2] = 1.0 / sc.motion
        rot = cv2.getRotationMatrix2D(
            (sc.motion / 2 - 0.5, sc.motion / 2 - 0.5), float(rng.uniform(0, 180)), 1.0
        )
        k = cv2.warpAffine(k, rot, k.shape[::-1])
        kernel = (k / max(float(k.sum()), 1e-6)).astype(np.float32)
        img = cv2.filter2D(img, -1, kernel)
    if sc.noise > 0:
        luma = rng.standard_normal((h, w), dtype=np.float32) * np.float32(sc.noise)
        chroma = (value_noise(rng, h, w, 2.0) - 0.5) * sc.noise
        img = img + chan(luma) + chan(chroma) * np.array([1.0, -0.5, 0.8], np.float32)
    return img


def encode_jpeg(img: np.ndarray, sc: Scene) -> bytes:
    """JPEG bytes at the scene's quality, optionally after an earlier, rougher compression."""
    pil = Image.fromarray(to_uint8(img))
    if sc.jpeg_first:
        buf = io.BytesIO()
        pil.save(buf, "JPEG", quality=sc.jpeg_first)
        buf.seek(0)
        pil = Image.open(buf).convert("RGB")
    out = io.BytesIO()
    pil.save(out, "JPEG", quality=sc.jpeg_quality, optimize=False, progressive=False)
    return out.getvalue()


def apply_all(rng: Rng, img: np.ndarray, sc: Scene, size: int) -> np.ndarray:
    """Every nuisance in camera order; returns the final float image (frame included)."""
    img = lighting(rng, img, sc)
    if sc.cast_shadow:
        img = cast_shadow(rng, img)
    if sc.warp > 0 or sc.roll != 0:
        img = perspective(rng, img, sc)
    img = degrade(rng, img, sc)
    img = np.clip(img, 0, 255)
    if sc.text_overlay:
        overlay_text(rng, img)
    if sc.watermark:
        watermark(rng, img)
    if sc.screenshot:
        img = screenshot_frame(rng, img, sc, size)
    return img
