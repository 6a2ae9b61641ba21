// Live run progress over server-sent events; the page works without it (reload shows the same data).
(function () {
  "use strict";
  function start() {
    var panel = document.querySelector("[data-sse]");
    if (!panel || !window.EventSource) { return; }
    var status = panel.querySelector('[data-field="status"]');
    if (status && status.textContent !== "running") { return; }
    var source = new EventSource(panel.getAttribute("data-sse"));
    function show(event) {
      var data = JSON.parse(event.data);
      Object.keys(data).forEach(function (key) {
        var field = panel.querySelector('[data-field="' + key + '"]');
        if (field) { field.textContent = String(data[key]); }
      });
    }
    source.addEventListener("progress", show);
    source.addEventListener("done", function (event) {
      show(event);
      source.close();
      window.location.reload();
    });
  }
  document.addEventListener("DOMContentLoaded", start);
})();
