"""Rendering: SVG paths, PNG files and bytes, the attention figure."""

import matplotlib.image
import numpy as np
import pytest
from lxml import etree

from hwtf import render

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def strokes():
    t = np.linspace(0, 2 * np.pi, 40)
    loop = np.stack([100 * np.cos(t), 100 * np.sin(t) + 100], 1)  # y up
    bar = np.array([[300.0, 250.0], [900.0, 260.0]])
    dot = np.array([[950.0, 300.0]])
    return [loop.astype(np.float32), bar.astype(np.float32), dot.astype(np.float32)]


def test_svg_has_one_path_per_stroke(strokes, tmp_path):
    path = tmp_path / "line.svg"
    svg = render.strokes_to_svg(strokes, path, stroke_width=3, colour="navy")
    assert path.read_text() == svg
    root = etree.fromstring(path.read_bytes())
    paths = root.findall(f".//{SVG}path")
    assert len(paths) == len(strokes)
    assert float(root.get("width")) > float(root.get("height")) > 0
    assert root.find(f"{SVG}g").get("stroke") == "navy"
    # y is flipped: the bar (high, y up) is near the top of the SVG (y down).
    bar_y = float(paths[1].get("d").split()[1].split("L")[0])
    loop_y = [float(v.split()[1]) for v in paths[0].get("d")[1:].split("L")]
    assert bar_y < min(loop_y)


def test_svg_without_path_returns_text_and_skips_bad_points(strokes):
    strokes = strokes + [np.array([[np.nan, 1.0]]), np.zeros((0, 2))]
    svg = render.strokes_to_svg(strokes)
    assert len(etree.fromstring(svg.encode()).findall(f".//{SVG}path")) == 3
    assert "nan" not in svg


def test_save_png(strokes, tmp_path):
    path = tmp_path / "line.png"
    render.save_png(strokes, path, height_px=120)
    image = matplotlib.image.imread(path)
    assert image.shape[0] == 120
    assert image.shape[1] > 2 * image.shape[0]  # a wide line makes a wide picture
    assert image[..., :3].min() < 0.5  # ink


def test_png_bytes(strokes):
    data = render.png_bytes(strokes, title="a title")
    assert data.startswith(b"\x89PNG") and len(data) > 1000
    assert render.png_bytes([]).startswith(b"\x89PNG")


def test_render_lines_png(strokes, tmp_path):
    path = tmp_path / "lines.png"
    other = [s * 0.5 for s in strokes]
    render.render_lines_png([("first", strokes), ("second", other)], path, width_px=800)
    image = matplotlib.image.imread(path)
    assert image.shape[1] == 800 and image.shape[0] > 100


def test_plot_attention(strokes, tmp_path):
    text = "hello world"
    rng = np.random.default_rng(0)
    phi = rng.random((50, len(text) + 3))  # padded columns are dropped
    path = tmp_path / "attention.png"
    render.plot_attention(phi, text, strokes, path)
    assert matplotlib.image.imread(path).shape[0] > 100
    assert render.attention_png_bytes(phi, text, strokes).startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="phi"):
        render.plot_attention(phi[0], text, strokes, path)
