"""The HTML report opened in headless Chromium: ranking and charts render, console stays clean."""

import json
import os
import re
import shutil
import subprocess

import pytest

from test_batch import DOCKER, GOOD, run, write_csv

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Collects page errors and console.error calls, then writes them into the DOM for --dump-dom.
CAPTURE = ('<script>window.__errors=[];window.addEventListener("error",function(e){window.__errors.push('
           'String(e.message))});(function(){var ce=console.error;console.error=function(){window.__errors.push('
           'Array.prototype.join.call(arguments," "));ce.apply(console,arguments)}})();</script>')
REPORT = '<script>document.body.setAttribute("data-errors", JSON.stringify(window.__errors));</script>'


def chromium_dom(html_path, tmp_path):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
           html_path.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180).stdout


@pytest.mark.skipif(not CHROMIUM and not os.environ.get("CI"), reason="chromium not installed (.ci/run installs it)")
def test_html_report_renders_in_chromium(tmp_path):
    assert CHROMIUM, "chromium must be installed in CI"
    inp = write_csv(tmp_path / "a.csv", [
        ("Ann <b>", "put-vs-patch", GOOD), ("Ann <b>", "docker", DOCKER),
        ("Bob", "put-vs-patch", "PATCH changes some fields."), ("Bob", "docker", "<script>alert(1)</script>"),
    ])
    out = tmp_path / "r.html"
    r = run("batch", str(inp), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    html = out.read_text(encoding="utf-8")
    assert "src=\"http" not in html and "<script" not in html  # self-contained: nothing fetched, nothing run
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("<head>", "<head>" + CAPTURE, 1).replace("</body>", REPORT + "</body>"),
                     encoding="utf-8")
    dom = chromium_dom(probe, tmp_path)
    errors = json.loads(re.search(r'data-errors="([^"]*)"', dom).group(1).replace("&quot;", '"'))
    assert errors == []
    ranking = dom.split('id="ranking"')[1].split("</table>")[0]
    assert ranking.index("Ann &lt;b&gt;") < ranking.index("Bob")
    # Both charts are inline SVG with a bar per value, the candidates' names escaped in them.
    for chart in ("chart-distribution", "chart-topics"):
        part = dom.split(f'id="{chart}"')[1].split("</svg>")[0]
        assert part.count('class="bar"') >= 2, chart
    assert "Ann &lt;b&gt;" in dom.split('id="chart-topics"')[1].split("</svg>")[0]
    assert "<script>alert(1)</script>" not in dom
