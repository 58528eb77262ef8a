"""Drawing strokes: SVG for pen plotters, PNG pictures, and Graves's attention
figure.

Strokes are what `hwtf.data` and the samplers produce: a list of float
`[n_i, 2]` arrays of absolute `(x, y)`, y pointing up, one per pen-down run
(`hwtf.data.strokes.offsets_to_strokes` turns offsets into them). Pictures are
drawn with matplotlib's object API and the Agg canvas (no pyplot, no display,
no global state), so rendering is safe inside training.
"""

from __future__ import annotations

import io
import os
from typing import Sequence
from xml.sax.saxutils import quoteattr

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

DPI = 100


def clean_strokes(strokes: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Float64 `[n, 2]` strokes without non-finite points, empty ones dropped."""
    cleaned = []
    for stroke in strokes:
        stroke = np.asarray(stroke, np.float64).reshape(-1, 2)
        stroke = stroke[np.all(np.isfinite(stroke), axis=1)]
        if len(stroke):
            cleaned.append(stroke)
    return cleaned


def stroke_bounds(strokes: Sequence[np.ndarray]) -> tuple[float, float, float, float]:
    """`(x_min, x_max, y_min, y_max)` of cleaned strokes; a unit box if none."""
    if not strokes:
        return 0.0, 1.0, 0.0, 1.0
    points = np.concatenate(strokes)
    (x_min, y_min), (x_max, y_max) = points.min(0), points.max(0)
    return float(x_min), float(x_max), float(y_min), float(y_max)


def strokes_to_svg(
    strokes: Sequence[np.ndarray],
    path: str | os.PathLike | None = None,
    stroke_width: float = 2.0,
    colour: str = "black",
    margin: float = 10.0,
    scale: float = 0.25,
) -> str:
    """An SVG picture with one `<path>` per stroke, for viewers and pen plotters.

    Args:
      strokes: float `[n_i, 2]` arrays, y up (flipped here for SVG's y down).
      path: where to write the SVG, or None to only return it.
      stroke_width, margin: in SVG pixels.
      colour: any SVG/CSS colour.
      scale: SVG pixels per stroke unit (0.25 sets a 5,000-unit IAM-OnDB line
        1,250 pixels wide).

    Returns:
      The SVG document.
    """
    strokes = clean_strokes(strokes)
    x_min, x_max, y_min, y_max = stroke_bounds(strokes)
    width = (x_max - x_min) * scale + 2 * margin
    height = (y_max - y_min) * scale + 2 * margin
    paths = []
    for stroke in strokes:
        x = (stroke[:, 0] - x_min) * scale + margin
        y = (y_max - stroke[:, 1]) * scale + margin
        d = f"M{x[0]:.2f} {y[0]:.2f}" + "".join(f"L{a:.2f} {b:.2f}" for a, b in zip(x[1:], y[1:]))
        if len(stroke) == 1:
            d += "l0 0"  # a dot: round caps draw it
        paths.append(f'<path d="{d}"/>')
    svg = "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.2f}" height="{height:.2f}" '
            f'viewBox="0 0 {width:.2f} {height:.2f}">',
            f"<g fill=\"none\" stroke={quoteattr(colour)} stroke-width=\"{stroke_width:g}\" "
            'stroke-linecap="round" stroke-linejoin="round">',
            *paths,
            "</g>",
            "</svg>",
            "",
        ]
    )
    if path is not None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(svg)
    return svg


def draw_strokes(
    ax,
    strokes: Sequence[np.ndarray],
    colour: str = "black",
    linewidth: float = 1.5,
    show_points: bool = False,
    limits: tuple[float, float, float, float] | None = None,
) -> None:
    """Draws strokes (y up) on a matplotlib Axes, at equal x and y scales,
    without axes.

    Args:
      limits: `(x_min, x_max, y_min, y_max)` to show; by default the strokes'
        bounds with a small margin.
      show_points: also mark every sampled point (to see the pen's speed).
    """
    strokes = clean_strokes(strokes)
    ax.add_collection(
        LineCollection(
            [s if len(s) > 1 else np.repeat(s, 2, axis=0) for s in strokes],
            colors=colour,
            linewidths=linewidth,
            capstyle="round",
            joinstyle="round",
        )
    )
    if show_points and strokes:
        points = np.concatenate(strokes)
        ax.plot(points[:, 0], points[:, 1], ".", color="tab:red", markersize=linewidth * 1.5)
    if limits is None:
        x_min, x_max, y_min, y_max = stroke_bounds(strokes)
        pad = 0.05 * max(y_max - y_min, 1e-6)
        limits = (x_min - pad, x_max + pad, y_min - pad, y_max + pad)
    ax.set_xlim(limits[0], limits[1])
    ax.set_ylim(limits[2], limits[3])
    ax.set_aspect("equal", adjustable="box")
    ax.set_axis_off()


def strokes_figure(
    strokes: Sequence[np.ndarray],
    height_px: int = 160,
    linewidth: float = 1.5,
    colour: str = "black",
    title: str | None = None,
    max_width_px: int = 4000,
) -> Figure:
    """A figure just big enough for the strokes at `height_px` pixels high."""
    strokes = clean_strokes(strokes)
    x_min, x_max, y_min, y_max = stroke_bounds(strokes)
    pad = 0.05 * max(y_max - y_min, 1.0)
    limits = (x_min - pad, x_max + pad, y_min - pad, y_max + pad)
    title_px = 24 if title else 0
    aspect = (limits[1] - limits[0]) / (limits[3] - limits[2])
    width_px = int(np.clip(height_px * aspect, height_px, max_width_px))
    fig = Figure(figsize=(width_px / DPI, (height_px + title_px) / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, height_px / (height_px + title_px)))
    draw_strokes(ax, strokes, colour=colour, linewidth=linewidth, limits=limits)
    if title:
        fig.suptitle(title, fontsize=10, y=0.99, va="top")
    return fig


def _save(fig: Figure, target) -> None:
    fig.savefig(target, format="png", dpi=DPI, facecolor="white")


def save_png(
    strokes: Sequence[np.ndarray],
    path: str | os.PathLike,
    height_px: int = 160,
    linewidth: float = 1.5,
    colour: str = "black",
    title: str | None = None,
) -> None:
    """Writes the strokes (y up) as a PNG `height_px` pixels high."""
    _save(strokes_figure(strokes, height_px, linewidth, colour, title), path)


def png_bytes(
    strokes: Sequence[np.ndarray],
    height_px: int = 160,
    linewidth: float = 1.5,
    colour: str = "black",
    title: str | None = None,
) -> bytes:
    """The PNG of `save_png` as bytes (for TensorBoard images)."""
    buffer = io.BytesIO()
    _save(strokes_figure(strokes, height_px, linewidth, colour, title), buffer)
    return buffer.getvalue()


def render_lines_png(
    lines: Sequence[tuple[str, Sequence[np.ndarray]]],
    path: str | os.PathLike,
    width_px: int = 1600,
    linewidth: float = 1.2,
    colour: str = "black",
) -> None:
    """Several lines stacked, each under its title, all at one scale (so that
    sizes compare), e.g. for a README picture.

    Args:
      lines: `(title, strokes)` pairs; strokes y up.
    """
    if not lines:
        raise ValueError("render_lines_png needs at least one line")
    cleaned = [clean_strokes(strokes) for _, strokes in lines]
    bounds = [stroke_bounds(s) for s in cleaned]
    span_x = max(b[1] - b[0] for b in bounds) or 1.0
    span_y = max(b[3] - b[2] for b in bounds) or 1.0
    pad = 0.05 * span_y
    row_px = max(60, int(width_px * (span_y + 2 * pad) / (span_x + 2 * pad)))
    title_px = 22
    fig = Figure(figsize=(width_px / DPI, len(lines) * (row_px + title_px) / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(lines), 1, squeeze=False)[:, 0]
    for ax, (title, _), strokes, (x_min, _, y_min, y_max) in zip(axes, lines, cleaned, bounds):
        middle = 0.5 * (y_min + y_max)
        limits = (x_min - pad, x_min + span_x + pad, middle - span_y / 2 - pad, middle + span_y / 2 + pad)
        draw_strokes(ax, strokes, colour=colour, linewidth=linewidth, limits=limits)
        ax.set_title(title, fontsize=10, loc="left")
    total_px = len(lines) * (row_px + title_px)
    fig.subplots_adjust(left=0.01, right=0.99, top=1 - title_px / total_px, bottom=0.01, hspace=title_px / row_px)
    _save(fig, path)


def attention_figure(phi: np.ndarray, text: str, strokes: Sequence[np.ndarray]) -> Figure:
    """Graves (2013) figure 12's layout: the written line above, the window
    weights `phi` below, characters on the y axis and time (points) on x.

    Args:
      phi: `[T, U]` window weights for each point and character.
      text: the `U` characters (extra columns of `phi`, padding, are dropped).
      strokes: what was written, y up.
    """
    phi = np.asarray(phi, np.float64)
    if phi.ndim != 2:
        raise ValueError(f"phi must be [T, U], got shape {phi.shape}")
    phi = phi[:, : max(len(text), 1)] if text else phi
    if phi.shape[0] == 0:
        phi = np.zeros((1, phi.shape[1]))
    num_chars = phi.shape[1]
    fig = Figure(figsize=(10, 2 + 0.14 * max(num_chars, 10)), dpi=DPI)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1, 2]})
    draw_strokes(top, strokes, linewidth=1.2)
    top.set_title(text or "(no text)", fontsize=10)
    bottom.imshow(
        phi.T, aspect="auto", origin="upper", cmap="Greys", interpolation="nearest",
        extent=(0, phi.shape[0], num_chars - 0.5, -0.5),
    )
    labels = [c if c != " " else "\u2423" for c in text[:num_chars]]
    bottom.set_yticks(range(len(labels)))
    bottom.set_yticklabels(labels, fontsize=7, family="monospace")
    bottom.set_xlabel("time (points)")
    bottom.set_ylabel("character")
    fig.tight_layout()
    return fig


def plot_attention(
    phi: np.ndarray, text: str, strokes: Sequence[np.ndarray], path: str | os.PathLike
) -> None:
    """Writes `attention_figure` as a PNG."""
    _save(attention_figure(phi, text, strokes), path)


def attention_png_bytes(phi: np.ndarray, text: str, strokes: Sequence[np.ndarray]) -> bytes:
    """`attention_figure` as PNG bytes (for TensorBoard images)."""
    buffer = io.BytesIO()
    _save(attention_figure(phi, text, strokes), buffer)
    return buffer.getvalue()


def density_figure(
    offsets: np.ndarray,
    weights: np.ndarray,
    mu: np.ndarray,
    sigma: np.ndarray,
    rho: np.ndarray,
    resolution: int = 400,
) -> Figure:
    """Graves (2013) figure 10's heat map: at each point of a line, the
    model's mixture density over where the pen goes next, summed over the line.

    Args:
      offsets: `[T, 3]` the line's offsets `(dx, dy, pen_up)` (y up).
      weights, mu, sigma, rho: `[T, M]`, `[T, M, 2]`, `[T, M, 2]`, `[T, M]`:
        the mixture predicted after each point for the next offset, in the
        same units as `offsets`.
    """
    from hwtf.data.strokes import offsets_to_strokes

    offsets = np.asarray(offsets, np.float64)
    points = np.cumsum(offsets[:, :2], axis=0)  # [T, 2]
    centres = points[:, None, :] + mu  # [T, M, 2] next positions
    lo = np.minimum(points.min(0), centres.reshape(-1, 2).min(0))
    hi = np.maximum(points.max(0), centres.reshape(-1, 2).max(0))
    span = np.maximum(hi - lo, 1e-6)
    lo, hi = lo - 0.05 * span, hi + 0.05 * span
    aspect = (hi[1] - lo[1]) / (hi[0] - lo[0])
    nx, ny = resolution, max(int(resolution * aspect), 20)
    gx, gy = np.linspace(lo[0], hi[0], nx), np.linspace(lo[1], hi[1], ny)
    density = np.zeros((ny, nx))
    for t in range(len(points)):
        for m in np.flatnonzero(weights[t] > 1e-3):
            (cx, cy), (sx, sy), r = centres[t, m], sigma[t, m], rho[t, m]
            # Only the grid cells within 4 sigma of the centre.
            ix = slice(*np.searchsorted(gx, [cx - 4 * sx, cx + 4 * sx]))
            iy = slice(*np.searchsorted(gy, [cy - 4 * sy, cy + 4 * sy]))
            zx = (gx[ix][None, :] - cx) / sx
            zy = (gy[iy][:, None] - cy) / sy
            z = (zx**2 + zy**2 - 2 * r * zx * zy) / (1 - r**2)
            density[iy, ix] += weights[t, m] * np.exp(-z / 2) / (2 * np.pi * sx * sy * np.sqrt(1 - r**2))
    fig = Figure(figsize=(10, max(2.0, 10 * aspect)), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.imshow(np.sqrt(density), origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]), cmap="magma_r", aspect="equal")
    draw_strokes(ax, offsets_to_strokes(offsets), colour="#1f77b4", linewidth=0.6, limits=(lo[0], hi[0], lo[1], hi[1]))
    ax.set_axis_off()
    fig.tight_layout()
    return fig


def plot_density(offsets, weights, mu, sigma, rho, path: str | os.PathLike) -> None:
    """Writes `density_figure` as a PNG."""
    _save(density_figure(offsets, weights, mu, sigma, rho), path)
