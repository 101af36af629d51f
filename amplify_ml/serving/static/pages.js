// amplify pages: sort a table by clicking a header, filter its rows by text. No dependencies.
(function () {
  "use strict";

  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

  function sortBy(table, th) {
    var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
    var index = headers.indexOf(th);
    var numeric = th.dataset.type === "number";
    var current = th.getAttribute("aria-sort");
    var direction;
    if (current === "ascending") direction = "descending";
    else if (current === "descending") direction = "ascending";
    else direction = numeric ? "descending" : "ascending"; // biggest numbers first
    var sign = direction === "ascending" ? 1 : -1;
    var body = table.tBodies[0];
    var rows = Array.prototype.map.call(body.rows, function (row, i) {
      var cell = row.cells[index];
      var raw = cell ? cell.dataset.value || "" : "";
      return { row: row, i: i, raw: raw, num: numeric ? parseFloat(raw) : NaN };
    });
    rows.sort(function (a, b) {
      var aEmpty = numeric ? isNaN(a.num) : a.raw === "";
      var bEmpty = numeric ? isNaN(b.num) : b.raw === "";
      if (aEmpty || bEmpty) return aEmpty === bEmpty ? a.i - b.i : aEmpty ? 1 : -1; // blanks last
      var c = numeric ? a.num - b.num : collator.compare(a.raw, b.raw);
      return c !== 0 ? sign * c : a.i - b.i;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
    headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", direction);
  }

  function filterRows(table, input, output) {
    var words = input.value.trim().toLowerCase();
    var shown = 0;
    var rows = table.tBodies[0].rows;
    for (var i = 0; i < rows.length; i++) {
      var hit = !words || rows[i].textContent.toLowerCase().indexOf(words) !== -1;
      rows[i].hidden = !hit;
      if (hit) shown++;
    }
    if (output) {
      output.textContent = words ? shown + " of " + rows.length + " rows match" : rows.length + " rows";
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.data").forEach(function (table) {
      table.tHead.querySelectorAll("th").forEach(function (th) {
        var button = th.querySelector("button");
        if (button) button.addEventListener("click", function () { sortBy(table, th); });
      });
    });
    document.querySelectorAll("input[data-filter]").forEach(function (input) {
      var table = document.getElementById(input.dataset.filter);
      var output = document.getElementById(input.dataset.filter + "-count");
      if (!table) return;
      input.addEventListener("input", function () { filterRows(table, input, output); });
      if (input.value) filterRows(table, input, output);
    });
  });
})();
