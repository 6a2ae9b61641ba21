// Draws the run page's plotly figures from their JSON data islands (no inline script, so the strict CSP holds).
// Without JavaScript the page shows the server-rendered SVG charts inside <noscript> instead.
(function () {
  "use strict";
  function draw() {
    if (!window.Plotly) { return; }
    document.querySelectorAll("[data-plotly-figure]").forEach(function (div) {
      var island = document.getElementById(div.getAttribute("data-plotly-figure"));
      if (!island) { return; }
      var figure = JSON.parse(island.textContent);
      window.Plotly.newPlot(div, figure.data, figure.layout, {
        responsive: true,
        displaylogo: false,
        modeBarButtonsToRemove: ["toImage"]
      });
    });
  }
  document.addEventListener("DOMContentLoaded", draw);
})();
