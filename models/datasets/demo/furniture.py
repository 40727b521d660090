"""The four categories' furniture generators and the parameters they read.

Each category has one generator of parts driven by a parameter vector drawn from a seeded RNG: leg, back, arm, top
and headboard styles, proportions, counts. `parameter_vector` scales a draw so that two draws can be compared:
continuous parameters to [0, 1], one choice against another exactly 1 apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import trimesh

from photo2cad.models.datasets.demo import geometry
from photo2cad.models.datasets.demo.geometry import Part

CATEGORIES: tuple[str, ...] = ("bed", "chair", "sofa", "table")
Parameters = dict[str, float | int | str | None]


@dataclass(frozen=True)
class _Param:
    name: str
    low: float = 0.0
    high: float = 1.0
    choices: tuple[str, ...] = ()  # a choice listed twice is drawn twice as often
    integer: bool = False
    # Drawn only while an earlier choice has one of these values (e.g. a slat count only for slatted backs); else
    # None, so that it can make no two shapes look different on paper only.
    when: tuple[str, tuple[str, ...]] | None = None

    def draw(self, rng: np.random.Generator, drawn: Parameters) -> float | int | str | None:
        if self.when is not None and drawn[self.when[0]] not in self.when[1]:
            return None
        if self.choices:
            return self.choices[int(rng.integers(len(self.choices)))]
        if self.integer:
            return int(rng.integers(int(self.low), int(self.high) + 1))
        return round(float(rng.uniform(self.low, self.high)), 4)

    def encode(self, value: float | int | str | None) -> list[float]:
        if self.choices:
            # One-hot scaled so that two different choices lie exactly 1 apart.
            return [(value == choice) / math.sqrt(2.0) for choice in dict.fromkeys(self.choices)]
        if value is None:
            return [0.0]
        return [(float(value) - self.low) / (self.high - self.low)]


_FOUR_LEGS = ("square", "round", "tapered", "turned", "splayed")

_CHAIR = (
    _Param("seat_width", 0.40, 0.56),
    _Param("seat_depth", 0.38, 0.54),
    _Param("seat_height", 0.40, 0.50),
    _Param("seat_thickness", 0.02, 0.07),
    _Param("seat_shape", choices=("rectangular", "rounded", "round")),
    _Param("legs", choices=("square", "round", "tapered", "turned", "splayed", "sled", "pedestal")),
    _Param("leg_thickness", 0.022, 0.05),
    _Param("leg_inset", 0.0, 0.04, when=("legs", _FOUR_LEGS)),
    _Param("splay", 0.03, 0.09, when=("legs", ("splayed",))),
    _Param("turning", choices=("bead", "vase", "ring"), when=("legs", ("turned",))),
    _Param("stretchers", choices=("none", "h", "box"), when=("legs", _FOUR_LEGS)),
    _Param("back", choices=("solid", "slatted", "ladder", "spindle", "curved", "upholstered")),
    _Param("back_height", 0.28, 0.55),
    _Param("back_tilt_deg", 0.0, 16.0),
    _Param("back_count", 2, 7, integer=True, when=("back", ("slatted", "ladder", "spindle"))),
    _Param("panel_fraction", 0.35, 0.9, when=("back", ("solid", "curved"))),
    _Param("curve", 0.03, 0.12, when=("back", ("curved",))),
    _Param("arms", choices=("none", "none", "bar", "panel")),
    _Param("arm_height", 0.16, 0.26, when=("arms", ("bar", "panel"))),
    _Param("seat_cushion", choices=("no", "yes")),
)

_TABLE = (
    _Param("kind", choices=("dining", "coffee", "side")),
    _Param("size", 0.0, 1.0),
    _Param("height", 0.0, 1.0),
    _Param("top", choices=("rectangular", "square", "round", "oval")),
    _Param("aspect", 0.45, 0.8, when=("top", ("rectangular", "oval"))),
    _Param("top_thickness", 0.02, 0.065),
    _Param("legs", choices=("square", "round", "tapered", "turned", "splayed", "hairpin", "pedestal", "trestle")),
    _Param("leg_thickness", 0.03, 0.075),
    _Param("leg_inset", 0.02, 0.14, when=("legs", (*_FOUR_LEGS, "hairpin", "trestle"))),
    _Param("splay", 0.03, 0.1, when=("legs", ("splayed",))),
    _Param("turning", choices=("bead", "vase", "ring"), when=("legs", ("turned",))),
    _Param("apron", choices=("no", "yes"), when=("legs", _FOUR_LEGS)),
    _Param("apron_height", 0.05, 0.13, when=("apron", ("yes",))),
    _Param("stretchers", choices=("none", "h", "box"), when=("legs", _FOUR_LEGS)),
    _Param("shelf", choices=("no", "yes"), when=("legs", (*_FOUR_LEGS, "trestle"))),
    _Param("pedestal_base", choices=("disk", "cross", "tripod"), when=("legs", ("pedestal",))),
    _Param("column", choices=("straight", "turned", "tapered"), when=("legs", ("pedestal",))),
)

_BED = (
    _Param("mattress_width", 0.9, 1.9),
    _Param("mattress_length", 1.9, 2.15),
    _Param("mattress_thickness", 0.14, 0.3),
    _Param("clearance", 0.04, 0.3),
    _Param("rail_height", 0.1, 0.3),
    _Param("rail_thickness", 0.03, 0.08),
    _Param("legs", choices=("block", "turned", "tapered", "plinth", "metal")),
    _Param("headboard", choices=("panel", "slatted", "spindle", "upholstered", "arched")),
    _Param("headboard_height", 0.3, 0.95),
    _Param("headboard_count", 4, 12, integer=True, when=("headboard", ("slatted", "spindle"))),
    _Param("arch", 0.06, 0.3, when=("headboard", ("arched",))),
    _Param("footboard", choices=("none", "panel", "slatted", "spindle", "upholstered")),
    _Param("footboard_height", -0.12, 0.35, when=("footboard", ("panel", "slatted", "spindle", "upholstered"))),
    _Param("posts", choices=("none", "none", "short", "tall")),
    _Param("post_width", 0.04, 0.09, when=("posts", ("short", "tall"))),
    _Param("pillows", 1, 3, integer=True),
    _Param("blanket", choices=("no", "yes")),
    _Param("blanket_cover", 0.35, 0.8, when=("blanket", ("yes",))),
)

_SOFA = (
    _Param("seats", 2, 4, integer=True),
    _Param("seat_width", 0.5, 0.72),
    _Param("depth", 0.78, 1.02),
    _Param("seat_height", 0.38, 0.48),
    _Param("cushion_thickness", 0.08, 0.18),
    _Param("back_height", 0.68, 0.95),
    _Param("back_thickness", 0.12, 0.24),
    _Param("back", choices=("tight", "cushions", "curved")),
    _Param("back_tilt_deg", 4.0, 16.0, when=("back", ("cushions",))),
    _Param("curve", 0.05, 0.2, when=("back", ("curved",))),
    _Param("seat_cushions", choices=("bench", "per seat")),
    _Param("arms", choices=("none", "square", "rolled", "sloped", "wooden")),
    _Param("arm_width", 0.08, 0.26, when=("arms", ("square", "rolled", "sloped"))),
    _Param("arm_height", 0.52, 0.72, when=("arms", ("square", "rolled", "sloped", "wooden"))),
    _Param("base", choices=("legs", "buns", "tapered", "plinth", "sled")),
    _Param("leg_height", 0.03, 0.22),
    _Param("chaise", choices=("none", "none", "left", "right")),
    _Param("chaise_length", 0.45, 0.75, when=("chaise", ("left", "right"))),
)

SPECS: dict[str, tuple[_Param, ...]] = {"bed": _BED, "chair": _CHAIR, "sofa": _SOFA, "table": _TABLE}
# The style that most sets a piece apart is dealt from a shuffled deck rather than drawn, so every style gets its
# share of the catalogue (a plain draw gave one table style in three, another one in sixty).
DEALT: dict[str, str] = {"bed": "headboard", "chair": "legs", "sofa": "arms", "table": "legs"}


def valid(category: str, parameters: Parameters) -> bool:
    """Combinations a furniture maker would not build are drawn again."""
    if category == "table":
        legs, top, kind = parameters["legs"], parameters["top"], parameters["kind"]
        if legs == "pedestal" and top not in ("round", "oval", "square"):
            return False
        if legs == "trestle" and (top not in ("rectangular", "oval") or kind == "side"):
            return False
        if parameters.get("shelf") == "yes" and kind == "dining":
            return False
    if category == "chair" and parameters["arms"] != "none":
        # Arms run along straight seat sides: a round seat has none to carry them, a sled or a pedestal no legs to
        # carry a side panel.
        if parameters["seat_shape"] == "round":
            return False
        if parameters["arms"] == "panel" and parameters["legs"] in ("sled", "pedestal"):
            return False
    return not (category == "sofa" and parameters["chaise"] != "none" and int(parameters["seats"] or 0) < 3)


def parameter_vector(spec: Sequence[_Param], parameters: Parameters) -> np.ndarray:
    return np.array([value for param in spec for value in param.encode(parameters[param.name])])


def _chair(p: Parameters) -> list[Part]:
    width, depth, height = _f(p, "seat_width"), _f(p, "seat_depth"), _f(p, "seat_height")
    thickness, leg = _f(p, "seat_thickness"), _f(p, "leg_thickness")
    legs_style = str(p["legs"])
    if p["seat_shape"] == "round":
        depth = width = max(width, depth)
    under_seat = height - thickness
    parts: list[Part] = []

    if p["seat_shape"] == "round":
        seat = trimesh.creation.cylinder(radius=width / 2.0, height=thickness, sections=32)
        seat.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2.0, [1.0, 0.0, 0.0]))
        seat.apply_translation([0.0, height - thickness / 2.0, 0.0])
    elif p["seat_shape"] == "rounded":
        seat = geometry.rounded_box((width, thickness, depth), (0.0, height - thickness / 2.0, 0.0), softness=0.18)
    else:
        seat = geometry.box((width, thickness, depth), (0.0, height - thickness / 2.0, 0.0))
    parts.append((seat, "seat"))
    if p["seat_cushion"] == "yes":
        cushion = geometry.rounded_box((width * 0.92, 0.05, depth * 0.9), (0.0, height + 0.02, 0.01), softness=0.35)
        parts.append((cushion, "cushion"))

    if legs_style in _FOUR_LEGS:
        inset = leg / 2.0 + _f(p, "leg_inset")
        reach = 0.72 if p["seat_shape"] == "round" else 1.0
        x, z = (width / 2.0 - inset) * reach, (depth / 2.0 - inset) * reach
        corners = [(-x, z), (x, z), (x, -z), (-x, -z)]
        splay = _f(p, "splay") if legs_style == "splayed" else 0.0

        def foot_of(cx: float, cz: float, y: float) -> np.ndarray:
            share = 1.0 - y / under_seat
            return np.array([cx + math.copysign(splay, cx) * share, y, cz + math.copysign(splay, cz) * share])

        for cx, cz in corners:
            style = "round" if legs_style == "splayed" else legs_style
            parts.append(
                (geometry.leg(style, (cx, under_seat, cz), foot_of(cx, cz, 0.0), leg, _s(p, "turning")), "legs")
            )
        parts += geometry.stretchers(_s(p, "stretchers"), corners, foot_of, 0.16, leg * 0.3)
    elif legs_style == "sled":
        for side in (-1.0, 1.0):
            x = side * (width / 2.0 - 0.03)
            front, back = depth / 2.0 - 0.03, -depth / 2.0 + 0.05
            parts += [
                (geometry.rod((x, 0.012, front + 0.04), (x, 0.012, back), 0.012), "legs"),
                (geometry.rod((x, 0.012, front + 0.04), (x, under_seat, front), 0.012), "legs"),
                (geometry.rod((x, 0.012, back), (x, under_seat, back), 0.012), "legs"),
            ]
    else:  # pedestal: an office chair's column on a five-arm star
        parts.append((geometry.rod((0.0, 0.09, 0.0), (0.0, under_seat, 0.0), max(leg, 0.03) * 0.8, 16), "legs"))
        for arm in range(5):
            angle = 2.0 * math.pi * arm / 5.0
            tip = (0.3 * math.sin(angle), 0.07, 0.3 * math.cos(angle))
            parts.append((geometry.rod((0.0, 0.09, 0.0), tip, 0.022, 8), "legs"))
            parts.append((geometry.rod((tip[0], 0.0, tip[2]), (tip[0], 0.05, tip[2]), 0.025, 10), "legs"))

    parts += _chair_back(p, width, depth, height, thickness, leg)
    parts += _chair_arms(p, width, depth, height, leg)
    return parts


def _chair_back(p: Parameters, width: float, depth: float, height: float, thickness: float, leg: float) -> list[Part]:
    back, back_height = str(p["back"]), _f(p, "back_height")
    post = leg * 0.85
    z = -depth / 2.0 + post / 2.0
    x = width / 2.0 - post / 2.0
    if p["seat_shape"] == "round":  # posts on the rim, not out in the air beside it
        x, z = 0.6 * width / 2.0, -0.78 * depth / 2.0
    inner = 2.0 * x - post
    round_posts = p["legs"] in ("round", "splayed", "turned", "sled", "pedestal")
    parts: list[Part] = []
    if back != "curved":
        for side in (-x, x):
            start, end = (side, height - thickness, z), (side, height + back_height, z)
            parts.append(
                (geometry.rod(start, end, post / 2.0) if round_posts else geometry.post(start, end, post), "frame")
            )
    top = height + back_height
    if back == "solid":
        panel = _f(p, "panel_fraction") * back_height
        parts.append((geometry.box((inner, panel, 0.02), (0.0, top - 0.02 - panel / 2.0, z)), "back"))
    elif back == "upholstered":
        parts.append(
            (
                geometry.rounded_box((inner + 0.02, back_height * 0.85, 0.07), (0.0, top - back_height * 0.44, z), 0.3),
                "back",
            )
        )
    elif back == "curved":
        panel = _f(p, "panel_fraction") * back_height
        bent = geometry.bent_panel(2.0 * x + post, panel, 0.022, _f(p, "curve"))
        bent.apply_translation([0.0, top - panel, z])
        parts.append((bent, "back"))
        for side in (-0.6 * x, 0.6 * x):
            parts.append(
                (
                    geometry.rod((side, height - thickness, z - 0.015), (side, top - panel + 0.02, z - 0.015), 0.012),
                    "frame",
                )
            )
    else:
        count = int(p["back_count"] or 3)
        rail = 0.06
        parts.append((geometry.box((inner, rail, post * 0.8), (0.0, top - rail / 2.0, z)), "frame"))
        if back == "ladder":
            for rung in range(1, count):
                y = top - rail / 2.0 - rung * (back_height * 0.7 - rail) / max(count - 1, 1)
                parts.append((geometry.box((inner, rail * 0.8, post * 0.6), (0.0, y, z)), "frame"))
        else:
            bottom = height + 0.08
            parts.append((geometry.box((inner, 0.035, post * 0.7), (0.0, bottom, z)), "frame"))
            for index in range(count):
                sx = -inner / 2.0 + inner * (index + 1) / (count + 1)
                start, end = (sx, bottom, z), (sx, top - rail / 2.0, z)
                if back == "spindle":
                    parts.append((geometry.rod(start, end, 0.009, 8), "frame"))
                else:
                    slat = min(0.8 * inner / (count + 1), 0.07)
                    parts.append(
                        (geometry.box((slat, top - rail / 2.0 - bottom, 0.015), (sx, (bottom + top) / 2.0, z)), "back")
                    )
    return geometry.tilted(parts, (0.0, height, z), _f(p, "back_tilt_deg"))


def _chair_arms(p: Parameters, width: float, depth: float, height: float, leg: float) -> list[Part]:
    if p["arms"] not in ("bar", "panel"):
        return []
    arm_y = height + _f(p, "arm_height")
    parts: list[Part] = []
    for side in (-1.0, 1.0):
        x = side * (width / 2.0 + 0.02)
        if p["arms"] == "bar":
            parts.append((geometry.box((0.05, 0.025, depth * 0.85), (x, arm_y, -depth * 0.05)), "frame"))
            front = depth / 2.0 - 0.06
            parts.append((geometry.rod((x, height - 0.02, front), (x, arm_y, front), leg * 0.4), "frame"))
        else:
            parts.append(
                (geometry.box((0.035, arm_y - height + 0.04, depth * 0.9), (x, (arm_y + height) / 2.0, -0.02)), "back")
            )
    return parts


def _table(p: Parameters) -> list[Part]:
    kind = str(p["kind"])
    length_range, height_range = {
        "dining": ((1.0, 2.1), (0.71, 0.78)),
        "coffee": ((0.75, 1.35), (0.36, 0.48)),
        "side": ((0.4, 0.65), (0.5, 0.68)),
    }[kind]
    length = _lerp(length_range, _f(p, "size"))
    height = _lerp(height_range, _f(p, "height"))
    top_shape = str(p["top"])
    depth = length * _f(p, "aspect") if top_shape in ("rectangular", "oval") else length
    top_thickness = _f(p, "top_thickness")
    leg = _f(p, "leg_thickness")
    legs_style = str(p["legs"])
    under_top = height - top_thickness
    parts: list[Part] = []

    if top_shape in ("round", "oval"):
        top = trimesh.creation.cylinder(radius=depth / 2.0, height=top_thickness, sections=40)
        top.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2.0, [1.0, 0.0, 0.0]))
        top.apply_scale([length / depth, 1.0, 1.0])
        top.apply_translation([0.0, height - top_thickness / 2.0, 0.0])
    else:
        top = geometry.box((length, top_thickness, depth), (0.0, height - top_thickness / 2.0, 0.0))
    parts.append((top, "top"))

    if legs_style in (*_FOUR_LEGS, "hairpin"):
        inset = leg / 2.0 + _f(p, "leg_inset")
        if top_shape in ("round", "oval"):
            x, z = (length / 2.0 - inset) * 0.68, (depth / 2.0 - inset) * 0.68
        else:
            x, z = length / 2.0 - inset, depth / 2.0 - inset
        corners = [(-x, z), (x, z), (x, -z), (-x, -z)]
        splay = _f(p, "splay") if legs_style == "splayed" else 0.0

        def foot_of(cx: float, cz: float, y: float) -> np.ndarray:
            share = 1.0 - y / under_top
            return np.array([cx + math.copysign(splay, cx) * share, y, cz + math.copysign(splay, cz) * share])

        for cx, cz in corners:
            if legs_style == "hairpin":
                foot = (cx, 0.0, cz)
                for dx in (-0.05, 0.05):
                    parts.append((geometry.rod((cx + dx, under_top, cz), foot, 0.006, 8), "metal"))
                parts.append(
                    (
                        geometry.rod((cx - 0.06, under_top - 0.004, cz), (cx + 0.06, under_top - 0.004, cz), 0.008, 8),
                        "metal",
                    )
                )
                continue
            style = "round" if legs_style == "splayed" else legs_style
            parts.append(
                (geometry.leg(style, (cx, under_top, cz), foot_of(cx, cz, 0.0), leg, _s(p, "turning")), "legs")
            )
        if p.get("apron") == "yes":
            apron = _f(p, "apron_height")
            y = under_top - apron / 2.0
            parts += [
                (geometry.box((2 * x, apron, 0.022), (0.0, y, z)), "legs"),
                (geometry.box((2 * x, apron, 0.022), (0.0, y, -z)), "legs"),
                (geometry.box((0.022, apron, 2 * z), (x, y, 0.0)), "legs"),
                (geometry.box((0.022, apron, 2 * z), (-x, y, 0.0)), "legs"),
            ]
        parts += [
            (mesh, "legs")
            for mesh, _ in geometry.stretchers(_s(p, "stretchers"), corners, foot_of, height * 0.2, leg * 0.3)
        ]
        if p.get("shelf") == "yes":
            parts.append((geometry.box((2 * x + leg, 0.02, 2 * z + leg), (0.0, height * 0.25, 0.0)), "top"))
    elif legs_style == "pedestal":
        parts += _pedestal(p, under_top, max(length, depth))
    else:  # trestle: an end frame at each side, a beam between them
        x = length / 2.0 - _f(p, "leg_inset") - 0.08
        for side in (-x, x):
            parts += [
                (geometry.box((leg, under_top - 0.06, depth * 0.35), (side, (under_top + 0.06) / 2.0, 0.0)), "legs"),
                (geometry.box((leg * 1.4, 0.06, depth * 0.8), (side, 0.03, 0.0)), "legs"),
                (geometry.box((leg * 1.2, 0.05, depth * 0.75), (side, under_top - 0.025, 0.0)), "legs"),
            ]
        parts.append((geometry.box((2 * x, 0.07, 0.04), (0.0, under_top * 0.35, 0.0)), "legs"))
        if p.get("shelf") == "yes":
            parts.append((geometry.box((2 * x - leg, 0.02, depth * 0.3), (0.0, under_top * 0.35 + 0.045, 0.0)), "top"))
    return parts


def _pedestal(p: Parameters, under_top: float, span: float) -> list[Part]:
    column_style, base = str(p["column"]), str(p["pedestal_base"])
    radius = max(_f(p, "leg_thickness"), 0.045)
    base_height = 0.04
    start, end = (0.0, base_height, 0.0), (0.0, under_top, 0.0)
    if column_style == "turned":
        column = geometry.lathe(
            [
                (radius * 1.4, 0.0),
                (radius * 0.8, 0.15),
                (radius * 1.3, 0.35),
                (radius * 0.7, 0.6),
                (radius * 0.9, 0.9),
                (radius * 1.2, 1.0),
            ],
            start,
            end,
            sections=16,
        )
    elif column_style == "tapered":
        column = geometry.lathe([(radius * 1.5, 0.0), (radius * 0.8, 1.0)], start, end, sections=16)
    else:
        column = geometry.rod(start, end, radius, 16)
    parts: list[Part] = [(column, "legs")]
    reach = min(0.22 + 0.2 * span, 0.42)
    if base == "disk":
        disk = trimesh.creation.cylinder(radius=reach, height=base_height, sections=32)
        disk.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2.0, [1.0, 0.0, 0.0]))
        disk.apply_translation([0.0, base_height / 2.0, 0.0])
        parts.append((disk, "legs"))
    else:
        feet = 4 if base == "cross" else 3
        for foot in range(feet):
            angle = 2.0 * math.pi * foot / feet + math.pi / 4.0
            tip = (reach * math.sin(angle), 0.02, reach * math.cos(angle))
            parts.append((geometry.post((0.0, base_height, 0.0), tip, 0.05, top_scale=0.6), "legs"))
    return parts


def _bed(p: Parameters) -> list[Part]:
    width, length = _f(p, "mattress_width"), _f(p, "mattress_length")
    clearance, rail_height, rail = _f(p, "clearance"), _f(p, "rail_height"), _f(p, "rail_thickness")
    legs_style, posts = str(p["legs"]), str(p["posts"])
    if legs_style == "plinth":
        clearance = min(clearance, 0.08)
    rail_top = clearance + rail_height
    mattress_bottom = rail_top - 0.05
    mattress_top = mattress_bottom + _f(p, "mattress_thickness")
    outer_x = width / 2.0 + rail
    head_z, foot_z = -length / 2.0 - rail / 2.0, length / 2.0 + rail / 2.0
    parts: list[Part] = [
        (
            geometry.rounded_box(
                (width - 0.01, mattress_top - mattress_bottom, length - 0.01),
                (0.0, (mattress_top + mattress_bottom) / 2.0, 0.0),
                0.2,
            ),
            "mattress",
        ),
    ]
    rail_y = clearance + rail_height / 2.0
    for side in (-1.0, 1.0):
        parts.append((geometry.box((rail, rail_height, length), (side * (width + rail) / 2.0, rail_y, 0.0)), "frame"))
    parts.append((geometry.box((2 * outer_x, rail_height, rail), (0.0, rail_y, foot_z)), "frame"))

    if legs_style == "plinth":
        parts.append(
            (geometry.box((width - 0.1, clearance + 0.01, length - 0.1), (0.0, clearance / 2.0, 0.0)), "frame")
        )
    else:
        leg = 0.07 if legs_style == "block" else 0.055
        for side in (-1.0, 1.0):
            for z in (head_z + rail, foot_z - rail / 2.0):
                x = side * (outer_x - leg / 2.0)
                top, foot = (x, clearance + 0.01, z), (x, 0.0, z)
                if legs_style == "metal":
                    parts.append((geometry.rod(foot, top, 0.015), "metal"))
                else:
                    style = {"block": "square", "turned": "turned", "tapered": "tapered"}[legs_style]
                    parts.append((geometry.leg(style, top, foot, leg, "ring"), "frame"))

    head_top = mattress_top + _f(p, "headboard_height")
    post_width = _f(p, "post_width") if posts != "none" else 0.0
    board_bottom = 0.0 if legs_style == "plinth" else clearance * 0.5
    parts += _board(p, "headboard", 2 * outer_x, board_bottom, head_top, head_z)
    foot_top = mattress_top + _f(p, "footboard_height") if p["footboard"] != "none" else rail_top
    if p["footboard"] != "none":
        parts += _board(p, "footboard", 2 * outer_x, board_bottom, max(foot_top, rail_top + 0.08), foot_z)
    if posts != "none":
        tall = 2.0 if posts == "tall" else 0.0
        for side in (-1.0, 1.0):
            x = side * (outer_x + post_width / 2.0)
            parts.append(
                (geometry.post((x, 0.0, head_z), (x, max(head_top + 0.06, tall), head_z), post_width), "frame")
            )
            parts.append(
                (geometry.post((x, 0.0, foot_z), (x, max(foot_top + 0.06, tall), foot_z), post_width), "frame")
            )
        if posts == "tall":
            x = outer_x + post_width / 2.0
            for a, b in (
                ((-x, head_z), (x, head_z)),
                ((-x, foot_z), (x, foot_z)),
                ((-x, head_z), (-x, foot_z)),
                ((x, head_z), (x, foot_z)),
            ):
                parts.append(
                    (geometry.post((a[0], tall - 0.03, a[1]), (b[0], tall - 0.03, b[1]), post_width * 0.6), "frame")
                )

    pillows = int(p["pillows"] or 1)
    pillow_width = min(0.62, (width - 0.08) / pillows)
    for index in range(pillows):
        x = -width / 2.0 + (index + 0.5) * width / pillows
        parts.append(
            (
                geometry.rounded_box(
                    (pillow_width - 0.03, 0.13, 0.38), (x, mattress_top + 0.05, -length / 2.0 + 0.26), 0.45
                ),
                "pillow",
            )
        )
    if p["blanket"] == "yes":
        cover = _f(p, "blanket_cover") * length
        z0, z1 = length / 2.0 + 0.025 - cover, length / 2.0 + 0.025
        drop = min(0.22, mattress_top - rail_top + 0.1)
        parts += [
            (geometry.box((width + 0.05, 0.025, cover), (0.0, mattress_top + 0.012, (z0 + z1) / 2.0)), "blanket"),
            (
                geometry.box((0.02, drop, cover), (-(width / 2.0 + 0.025), mattress_top - drop / 2.0, (z0 + z1) / 2.0)),
                "blanket",
            ),
            (
                geometry.box((0.02, drop, cover), (width / 2.0 + 0.025, mattress_top - drop / 2.0, (z0 + z1) / 2.0)),
                "blanket",
            ),
        ]
    return parts


def _board(p: Parameters, which: str, width: float, bottom: float, top: float, z: float) -> list[Part]:
    style = str(p[which])
    height = top - bottom
    thickness = 0.045
    if style == "panel":
        return [
            (geometry.box((width, height, thickness), (0.0, bottom + height / 2.0, z)), "frame"),
            (geometry.box((width + 0.04, 0.035, thickness + 0.02), (0.0, top, z)), "frame"),
        ]
    if style == "upholstered":
        return [
            (geometry.rounded_box((width + 0.04, height, 0.11), (0.0, bottom + height / 2.0, z), 0.25), "upholstery")
        ]
    if style == "arched":
        rise = _f(p, "arch")
        outline = geometry.arch(width, rise, height - rise)
        return [(geometry.slab(outline, thickness, "xy", (0.0, bottom, z)), "frame")]
    # slatted or spindle: rails at the top and bottom, filled with upright slats or rods
    count = int(p.get(f"{which}_count") or p.get("headboard_count") or 6)
    rail = 0.07
    low = bottom + min(0.25, height * 0.4)
    parts: list[Part] = [
        (geometry.box((width, rail, thickness), (0.0, top - rail / 2.0, z)), "frame"),
        (geometry.box((width, rail, thickness), (0.0, low, z)), "frame"),
        (geometry.post((-width / 2.0 + 0.03, 0.0, z), (-width / 2.0 + 0.03, top, z), 0.06), "frame"),
        (geometry.post((width / 2.0 - 0.03, 0.0, z), (width / 2.0 - 0.03, top, z), 0.06), "frame"),
    ]
    for index in range(count):
        x = -width / 2.0 + width * (index + 1) / (count + 1)
        if style == "spindle":
            parts.append((geometry.rod((x, low, z), (x, top - rail / 2.0, z), 0.012, 8), "frame"))
        else:
            slat = min(0.5 * width / (count + 1), 0.1)
            parts.append(
                (geometry.box((slat, top - rail / 2.0 - low, 0.02), (x, (low + top - rail / 2.0) / 2.0, z)), "frame")
            )
    return parts


def _sofa(p: Parameters) -> list[Part]:
    seats, seat_width, depth = int(p["seats"] or 2), _f(p, "seat_width"), _f(p, "depth")
    seat_height, cushion = _f(p, "seat_height"), _f(p, "cushion_thickness")
    back_top, back_thickness = _f(p, "back_height"), _f(p, "back_thickness")
    arms, base = str(p["arms"]), str(p["base"])
    arm_width = {"none": 0.0, "wooden": 0.05}[arms] if arms in ("none", "wooden") else _f(p, "arm_width")
    inner = seats * seat_width
    width = inner + 2 * arm_width
    leg_height = 0.02 if base == "plinth" else _f(p, "leg_height")
    if base == "tapered":
        leg_height = max(leg_height, 0.14)
    base_top = seat_height - cushion
    back_z = -depth / 2.0 + back_thickness / 2.0
    seat_front = depth / 2.0
    parts: list[Part] = [
        (
            geometry.box(
                (inner if arms != "wooden" else width, base_top - leg_height, depth),
                (0.0, (base_top + leg_height) / 2.0, 0.0),
            ),
            "upholstery",
        ),
    ]
    cushion_depth = depth - back_thickness - 0.02
    cushion_z = seat_front - cushion_depth / 2.0
    pieces = seats if p["seat_cushions"] == "per seat" else 1
    for index in range(pieces):
        x = -inner / 2.0 + (index + 0.5) * inner / pieces
        parts.append(
            (
                geometry.rounded_box(
                    (inner / pieces - 0.01, cushion + 0.02, cushion_depth),
                    (x, base_top + cushion / 2.0, cushion_z),
                    0.25,
                ),
                "cushion",
            )
        )

    chaise = str(p["chaise"])
    if chaise != "none":
        side = -1.0 if chaise == "left" else 1.0
        extra = _f(p, "chaise_length")
        x = side * (inner / 2.0 - seat_width / 2.0)
        z = seat_front + extra / 2.0
        parts.append(
            (
                geometry.box((seat_width, base_top - leg_height, extra), (x, (base_top + leg_height) / 2.0, z)),
                "upholstery",
            )
        )
        parts.append(
            (
                geometry.rounded_box(
                    (seat_width - 0.01, cushion + 0.02, extra + 0.02), (x, base_top + cushion / 2.0, z), 0.25
                ),
                "cushion",
            )
        )

    back = str(p["back"])
    if back == "curved":
        panel = geometry.bent_panel(width, back_top - leg_height, back_thickness, _f(p, "curve"), segments=16)
        panel.apply_translation([0.0, leg_height, back_z - _f(p, "curve") * 0.5])
        parts.append((panel, "upholstery"))
    elif back == "tight":
        parts.append(
            (
                geometry.rounded_box(
                    (inner, back_top - leg_height, back_thickness), (0.0, (back_top + leg_height) / 2.0, back_z), 0.12
                ),
                "upholstery",
            )
        )
    else:
        frame_top = seat_height + 0.12
        parts.append(
            (
                geometry.box(
                    (inner, frame_top - leg_height, back_thickness * 0.6),
                    (0.0, (frame_top + leg_height) / 2.0, -depth / 2.0 + back_thickness * 0.3),
                ),
                "upholstery",
            )
        )
        cushions: list[Part] = []
        height = back_top - seat_height
        for index in range(seats):
            x = -inner / 2.0 + (index + 0.5) * seat_width
            cushions.append(
                (
                    geometry.rounded_box(
                        (seat_width - 0.02, height, 0.17), (x, seat_height + height / 2.0, back_z + 0.05), 0.3
                    ),
                    "cushion",
                )
            )
        parts += geometry.tilted(cushions, (0.0, seat_height, back_z), _f(p, "back_tilt_deg"))

    parts += _sofa_arms(arms, p, width, depth, leg_height, seat_height, arm_width)
    parts += _sofa_base(base, width, depth, leg_height, chaise, inner, seat_width, p)
    return parts


def _sofa_arms(
    arms: str, p: Parameters, width: float, depth: float, leg_height: float, seat_height: float, arm_width: float
) -> list[Part]:
    if arms == "none":
        return []
    arm_top = _f(p, "arm_height")
    parts: list[Part] = []
    for side in (-1.0, 1.0):
        x = side * (width / 2.0 - arm_width / 2.0)
        if arms == "square":
            parts.append(
                (
                    geometry.box((arm_width, arm_top - leg_height, depth), (x, (arm_top + leg_height) / 2.0, 0.0)),
                    "upholstery",
                )
            )
        elif arms == "rolled":
            roll = arm_width * 0.62
            body_top = arm_top - roll
            parts.append(
                (
                    geometry.box((arm_width, body_top - leg_height, depth), (x, (body_top + leg_height) / 2.0, 0.0)),
                    "upholstery",
                )
            )
            parts.append(
                (
                    geometry.rod(
                        (x + side * roll * 0.2, body_top, -depth / 2.0),
                        (x + side * roll * 0.2, body_top, depth / 2.0 + 0.02),
                        roll,
                        16,
                    ),
                    "upholstery",
                )
            )
        elif arms == "sloped":
            outline = np.array(
                [
                    [depth / 2.0, leg_height],
                    [depth / 2.0, arm_top - 0.12],
                    [0.0, arm_top - 0.02],
                    [-depth / 2.0, arm_top + 0.04],
                    [-depth / 2.0, leg_height],
                ]
            )
            parts.append((geometry.slab(outline, arm_width, "zy", (x, 0.0, 0.0)), "upholstery"))
        else:  # wooden: a rest on two posts
            parts.append((geometry.box((0.06, 0.03, depth * 0.95), (x, arm_top, 0.0)), "legs"))
            for z in (depth / 2.0 - 0.06, -depth / 2.0 + 0.06):
                parts.append((geometry.post((x, seat_height - 0.1, z), (x, arm_top, z), 0.04), "legs"))
    return parts


def _sofa_base(
    base: str,
    width: float,
    depth: float,
    leg_height: float,
    chaise: str,
    inner: float,
    seat_width: float,
    p: Parameters,
) -> list[Part]:
    if base == "plinth":
        return [(geometry.box((width - 0.06, leg_height, depth - 0.06), (0.0, leg_height / 2.0, 0.0)), "legs")]
    x, z = width / 2.0 - 0.06, depth / 2.0 - 0.06
    spots = [(-x, z), (x, z), (x, -z), (-x, -z)]
    if width > 2.0:
        spots += [(0.0, z), (0.0, -z)]
    if chaise != "none":
        side = -1.0 if chaise == "left" else 1.0
        spots.append((side * (inner / 2.0 - 0.06), depth / 2.0 + _f(p, "chaise_length") - 0.06))
    parts: list[Part] = []
    if base == "sled":
        for side in (-x, x):
            parts += [
                (geometry.rod((side, 0.01, z + 0.03), (side, 0.01, -z - 0.03), 0.012), "metal"),
                (geometry.rod((side, 0.01, z), (side, leg_height + 0.01, z), 0.012), "metal"),
                (geometry.rod((side, 0.01, -z), (side, leg_height + 0.01, -z), 0.012), "metal"),
            ]
        return parts
    for sx, sz in spots:
        top, foot = (sx, leg_height + 0.01, sz), (sx, 0.0, sz)
        if base == "buns":
            parts.append(
                (
                    geometry.lathe([(0.03, 0.0), (0.045, 0.3), (0.045, 0.6), (0.035, 0.9), (0.035, 1.0)], foot, top),
                    "legs",
                )
            )
        elif base == "tapered":
            splayed = (sx + math.copysign(0.03, sx), 0.0, sz + math.copysign(0.03, sz))
            parts.append((geometry.lathe([(0.012, 0.0), (0.022, 1.0)], splayed, top), "legs"))
        else:
            parts.append((geometry.post(foot, top, 0.05), "legs"))
    return parts


GENERATORS: dict[str, Callable[[Parameters], list[Part]]] = {
    "bed": _bed,
    "chair": _chair,
    "sofa": _sofa,
    "table": _table,
}


def _f(parameters: Parameters, name: str) -> float:
    value = parameters[name]
    if value is None or isinstance(value, str):
        raise ValueError(f"parameter {name!r} is {value!r}, not a number")
    return float(value)


def _s(parameters: Parameters, name: str) -> str | None:
    value = parameters.get(name)
    return None if value is None else str(value)


def _lerp(bounds: tuple[float, float], share: float) -> float:
    return bounds[0] + share * (bounds[1] - bounds[0])
