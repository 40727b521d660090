"""A loss curve as a PNG, drawn with Pillow (no plotting library needed on a server)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def plot_curves(history: list[dict[str, float]], path: Path, width: int = 720, height: int = 400) -> None:
    """One line per loss_* and val_top1 series against the epoch, each scaled to its own range."""
    series = {k: [h[k] for h in history if k in h] for k in history[0] if k.startswith(("loss_", "val_top"))}
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = 50, 20, width - 170, height - 40
    draw.rectangle((left, top, right, bottom), outline=(0, 0, 0))
    count = len(history)
    for index, (name, values) in enumerate(sorted(series.items())):
        colour = COLOURS[index % len(COLOURS)]
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        points = [
            (left + (right - left) * (i / max(count - 1, 1)), bottom - (bottom - top) * ((v - low) / span))
            for i, v in enumerate(values)
        ]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
        draw.text((right + 10, top + 16 * index), f"{name} {values[-1]:.3f}", fill=colour)
    draw.text((left, bottom + 8), f"epochs 1..{count} (each series scaled to its own range)", fill=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
