"use strict";
// Draws each chart whose figure the page carries as JSON (<script type="application/json"
// data-chart="ID">), and submits a form when a select marked data-autosubmit changes.
// No data ever becomes code: figures are parsed with JSON.parse, texts were escaped server-side.
document.addEventListener("DOMContentLoaded", () => {
  const config = {displaylogo: false, responsive: true,
                  modeBarButtonsToRemove: ["select2d", "lasso2d", "toImage"]};
  for (const block of document.querySelectorAll("script[type='application/json'][data-chart]")) {
    const target = document.getElementById(block.dataset.chart);
    if (!target || typeof Plotly === "undefined") continue;
    const figure = JSON.parse(block.textContent);
    Plotly.newPlot(target, figure.data, figure.layout, config);
  }
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
});
