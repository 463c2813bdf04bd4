"""Sortable, filterable HTML tables, driven in headless Chromium (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import report_tables
from browser import load_page
from factories import write_config, write_study

from pipeline.config.settings import load_config
from pipeline.ingest.raw_tables import read_raw_tables
from pipeline.privacy.suppression import publish_tables
from pipeline.report import provenance
from pipeline.report.content import build_content
from pipeline.report.html import render_html

ROOT = Path(__file__).resolve().parents[2]

# sort the glossary by its first column (twice: reversed), sort a numeric column, then filter
SCRIPT = """(() => {
  const cells = (t, c) => [...t.tBodies[0].rows].filter(r => !r.hidden)
      .map(r => r.cells[c].textContent.trim());
  const glossary = document.getElementById('glossary-table');
  const out = {sortable: document.querySelectorAll('table[data-sortable]').length,
               tables: document.querySelectorAll('table').length,
               filters: document.querySelectorAll('input.table-filter').length,
               network: performance.getEntriesByType('resource').length};
  const term = glossary.tHead.rows[0].cells[0];
  term.click(); out.ascending = cells(glossary, 0); out.sort = term.getAttribute('aria-sort');
  term.click(); out.descending = cells(glossary, 0);
  const fits = [...document.querySelectorAll('table')].find(
      t => t.caption && t.caption.textContent.startsWith('Fixed effects'));
  const obs = [...fits.tHead.rows[0].cells].findIndex(h => h.textContent === 'Estimate');
  fits.tHead.rows[0].cells[obs].click();
  out.obs = cells(fits, obs);
  const box = glossary.previousElementSibling;
  box.value = 'holm'; box.dispatchEvent(new Event('input'));
  out.filtered = cells(glossary, 0);
  return JSON.stringify(out);
})()"""


def test_tables_sort_and_filter_in_the_browser_offline(chromium, tmp_path):
    paths = write_study(tmp_path / "raw")
    config = load_config(write_config(tmp_path, paths))
    published = publish_tables(report_tables.run_tables(), config.privacy.small_cell_threshold)
    run = provenance.collect(config, read_raw_tables(paths), ROOT, "environment variable X")
    page_file = tmp_path / "report.html"
    page_file.write_text(render_html(build_content(config, published, run)), encoding="utf-8")
    page = load_page(chromium, page_file.as_uri(), script=SCRIPT)
    assert page.errors == []
    result = json.loads(page.result)
    assert result["network"] == 0  # nothing fetched: the script is in the page
    assert 0 < result["sortable"] <= result["tables"] and result["filters"] >= 1
    assert result["ascending"] == sorted(result["ascending"], key=str.lower)
    assert result["sort"] == "ascending"
    assert result["descending"] == result["ascending"][::-1]
    # numbers with a typographic minus sort as numbers, not as text
    numbers = [float(v.replace(",", "").replace("−", "-")) for v in result["obs"]]
    assert numbers == sorted(numbers) and len(set(numbers)) > 1
    assert result["filtered"] == ["Holm p"]
