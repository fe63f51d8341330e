"""The edits ``karung bench hashes`` applies to banked photos before matching them again: the
ways a seller disguises a re-upload (resize, recompression, crops, mirror, rotation, borders,
captions and watermarks, colour changes, blur, a screenshot frame, a perspective warp), the
recall each must reach (issues 5 and 19) and how a re-upload is encoded."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from PIL import Image

Transform = Callable[["Image.Image", random.Random], "Image.Image"]
REUPLOAD_QUALITY: Final = 90


# -- transforms ------------------------------------------------------------------------------------


def _resize(scale: float) -> Transform:
    def apply(img: Image.Image, rng: random.Random) -> Image.Image:
        from PIL import Image

        size = (max(8, round(img.width * scale)), max(8, round(img.height * scale)))
        return img.resize(size, Image.Resampling.BILINEAR)

    return apply


def _jpeg(quality: int) -> Transform:
    def apply(img: Image.Image, rng: random.Random) -> Image.Image:
        from PIL import Image

        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=quality)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")

    return apply


def _crop(share: float) -> Transform:
    """Keep ``1 - share`` of the width and of the height, at a random position."""

    def apply(img: Image.Image, rng: random.Random) -> Image.Image:
        keep_w, keep_h = round(img.width * (1 - share)), round(img.height * (1 - share))
        x, y = rng.randint(0, img.width - keep_w), rng.randint(0, img.height - keep_h)
        return img.crop((x, y, x + keep_w, y + keep_h))

    return apply


def _crop_centre(img: Image.Image, rng: random.Random) -> Image.Image:
    """5% off each side (issue 19's crop): the centred 90% of the width and height."""
    dx, dy = round(img.width * 0.05), round(img.height * 0.05)
    return img.crop((dx, dy, img.width - dx, img.height - dy))


def _caption_bar(img: Image.Image, rng: random.Random) -> Image.Image:
    """A dark bar over the bottom eighth with a white "READY STOCK WA 08.." caption."""
    from PIL import ImageDraw

    out = img.copy()
    draw = ImageDraw.Draw(out)
    top = img.height - img.height // 8
    draw.rectangle((0, top, img.width, img.height), fill=(20, 20, 20))
    size = max(10, img.height // 14)
    draw.text(
        (img.width * 0.04, top + size // 3),
        "READY STOCK WA 0812-3456",
        font=_font(size),
        fill=(255, 255, 255),
    )
    return out


def _mirror(img: Image.Image, rng: random.Random) -> Image.Image:
    from PIL import ImageOps

    return ImageOps.mirror(img)


def _rotate90(img: Image.Image, rng: random.Random) -> Image.Image:
    from PIL import Image

    return img.transpose(Image.Transpose.ROTATE_90)


def _rotate5(img: Image.Image, rng: random.Random) -> Image.Image:
    from PIL import Image

    return img.rotate(5, Image.Resampling.BILINEAR, expand=True, fillcolor=(255, 255, 255))


def _border(share: float, *, white: bool = False) -> Transform:
    """A border ``share`` of the width/height on every side: white, black or a random colour."""

    def apply(img: Image.Image, rng: random.Random) -> Image.Image:
        from PIL import ImageOps

        colour = rng.choice([(255, 255, 255), (0, 0, 0), tuple(rng.randrange(256) for _ in "rgb")])
        colour = (255, 255, 255) if white else colour
        pad = (round(img.width * share), round(img.height * share)) * 2
        return ImageOps.expand(img, pad, fill=colour)

    return apply


def _font(size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _caption(draw: Any, img: Image.Image) -> None:
    """A red "READY STOCK" and a phone number, 1/12 of the height, outlined."""
    size = max(12, img.height // 12)
    for place, text, fill, stroke in (
        ((0.05, 0.08), "READY STOCK", (255, 0, 0, 230), (255, 255, 255, 230)),
        ((0.05, 0.8), "WA 0812-3456-7890", (255, 255, 255, 200), (0, 0, 0, 200)),
    ):
        draw.text(
            (img.width * place[0], img.height * place[1]),
            text,
            font=_font(size),
            fill=fill,
            stroke_width=2,
            stroke_fill=stroke,
        )


def _handle(draw: Any, img: Image.Image) -> None:
    """A translucent seller handle across the middle, 1/8 of the height."""
    font = _font(max(10, img.height // 8))
    draw.text(
        (img.width * 0.2, img.height * 0.45), "@balpres_murah", font=font, fill=(255, 255, 255, 90)
    )


def _overlay(*painters: Callable[[Any, Image.Image], None]) -> Transform:
    def apply(img: Image.Image, rng: random.Random) -> Image.Image:
        from PIL import Image, ImageDraw

        base = img.convert("RGBA")
        layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        for paint in painters:
            paint(draw, img)
        return Image.alpha_composite(base, layer).convert("RGB")

    return apply


def _enhance(name: str, factor: float) -> Transform:
    def apply(img: Image.Image, rng: random.Random) -> Image.Image:
        from PIL import ImageEnhance

        enhancer = {
            "brightness": ImageEnhance.Brightness,
            "contrast": ImageEnhance.Contrast,
            "saturation": ImageEnhance.Color,
        }[name]
        return enhancer(img).enhance(factor)

    return apply


def _blur(img: Image.Image, rng: random.Random) -> Image.Image:
    """A Gaussian blur of 1% of the longer side (2 px on a 200 px thumbnail)."""
    from PIL import ImageFilter

    return img.filter(ImageFilter.GaussianBlur(max(1.0, max(img.size) / 100)))


def _grayscale(img: Image.Image, rng: random.Random) -> Image.Image:
    from PIL import ImageOps

    return ImageOps.grayscale(img).convert("RGB")


def _screenshot(img: Image.Image, rng: random.Random) -> Image.Image:
    """The photo inside a marketplace app screenshot: status bar, header, price, buy button."""
    from PIL import Image, ImageDraw

    width, height, orange = 720, 1520, (238, 77, 45)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, width, 60), fill=(20, 20, 20))
    draw.text((20, 15), "12:41", font=_font(28), fill=(255, 255, 255))
    draw.rectangle((0, 60, width, 160), fill=orange)
    draw.text((30, 90), "< Detail Produk", font=_font(36), fill=(255, 255, 255))
    shown = img.resize((width, round(img.height * width / img.width)))
    canvas.paste(shown, (0, 160))
    y = 180 + shown.height
    draw.text((30, y), "Rp 85.000", font=_font(44), fill=orange)
    draw.text((30, y + 60), "Balpres kaos import 1 karung", font=_font(30), fill=(0, 0, 0))
    draw.rectangle((0, height - 110, width, height), fill=orange)
    draw.text((width // 2 - 80, height - 80), "Beli Sekarang", font=_font(34), fill=(255, 255, 255))
    return canvas


def _perspective(img: Image.Image, rng: random.Random) -> Image.Image:
    """A slight keystone: corners moved inwards by up to 6% of the size."""
    import numpy as np
    from PIL import Image

    w, h = img.size
    dx, dy = w * 0.06, h * 0.06
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    dst = [(dx, dy * 0.5), (w - dx * 0.3, 0), (w, h), (dx * 0.5, h - dy)]
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    coeffs = np.linalg.solve(np.array(rows, dtype=float), np.array(rhs, dtype=float))
    return img.transform(
        (w, h),
        Image.Transform.PERSPECTIVE,
        tuple(float(c) for c in coeffs),
        Image.Resampling.BILINEAR,
        fillcolor=(255, 255, 255),
    )


def _then(*steps: Transform) -> Transform:
    """The edits one after another (a mirrored copy that was also captioned, say)."""

    def apply(img: Image.Image, rng: random.Random) -> Image.Image:
        for step in steps:
            img = step(img, rng)
        return img

    return apply


TRANSFORMS: Final[dict[str, Transform]] = {
    "resize_50": _resize(0.5),
    "resize_25": _resize(0.25),
    "jpeg_30": _jpeg(30),
    "crop_5": _crop(0.05),
    "crop_10": _crop(0.10),
    "crop_20": _crop(0.20),
    "crop_5_each_side": _crop_centre,
    "mirror": _mirror,
    "rotate_90": _rotate90,
    "rotate_5": _rotate5,
    "border_10": _border(0.10),
    "border_20": _border(0.20),
    "border_15_white": _border(0.15, white=True),
    "text_overlay": _overlay(_caption, _handle),  # caption and watermark together
    "caption": _overlay(_caption),
    "caption_bar": _caption_bar,
    "watermark": _overlay(_handle),
    "brightness_+30": _enhance("brightness", 1.3),
    "brightness_-30": _enhance("brightness", 0.7),
    "contrast_+30": _enhance("contrast", 1.3),
    "contrast_-30": _enhance("contrast", 0.7),
    "saturation_+30": _enhance("saturation", 1.3),
    "saturation_-30": _enhance("saturation", 0.7),
    "grayscale": _grayscale,
    "blur": _blur,
    "screenshot": _screenshot,
    "perspective": _perspective,
    # Mirrored and then captioned: only the dihedral PDQ hashes can match these (the pHash and
    # the partial images are not mirrored), so they show what PDQ alone catches.
    "mirror_caption_bar": _then(_mirror, _caption_bar),
    "mirror_text_overlay": _then(_mirror, _overlay(_caption, _handle)),
}
# Recall the combined matcher must reach (issues 5 and 19); transforms without one are reported.
TARGETS: Final[dict[str, float]] = {
    **dict.fromkeys(["resize_50", "resize_25", "jpeg_30", "mirror", "rotate_90"], 0.99),
    **dict.fromkeys(["text_overlay", "caption_bar", "grayscale", "blur"], 0.99),
    **{f"{k}_{s}30": 0.99 for k in ("brightness", "contrast", "saturation") for s in "+-"},
    **dict.fromkeys(["crop_10", "border_10", "border_20"], 0.90),
    **dict.fromkeys(["crop_5_each_side", "border_15_white"], 0.97),
    "rotate_5": 0.80,
}
FALSE_MATCH_TARGET: Final = 0.001


def encode_upload(img: Image.Image, transform: str) -> bytes:
    """The bytes a re-upload would carry (JPEG 90; ``jpeg_30`` keeps its own compression)."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=30 if transform == "jpeg_30" else REUPLOAD_QUALITY)
    return buf.getvalue()
