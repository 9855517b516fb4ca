// Perennial Studio: progressive enhancement only. Pages are complete without this file;
// it adds live updates (polling the page's <main> with its ETag: a page that did not change
// answers 304), sortable tables, and relative times that keep ticking.
"use strict";
(function () {
  const main = document.getElementById("main");
  const live = document.getElementById("live");
  const poll = Number((live && live.dataset.poll) || 3000);
  let etag = null;
  let last = Date.now();
  let inFlight = false;

  function relative(seconds) {
    const ahead = seconds < 0;
    const s = Math.abs(seconds);
    let text;
    if (s < 45) text = Math.floor(s) + " s";
    else if (s < 45 * 60) text = Math.round(s / 60) + " min";
    else if (s < 36 * 3600) text = Math.round(s / 3600) + " h";
    else text = Math.round(s / 86400) + " d";
    return ahead ? "in " + text : text + " ago";
  }

  function tickTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      const t = Date.parse(el.getAttribute("datetime"));
      if (!isNaN(t)) el.textContent = relative((Date.now() - t) / 1000);
    });
  }

  // --- sortable tables: a button in each header; state kept across live updates ----------
  const sortState = {}; // table index -> [column, direction]

  function cellValue(row, column) {
    const cell = row.cells[column];
    if (!cell) return "";
    const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
    const num = Number(raw);
    return raw !== "" && !isNaN(num) ? num : raw.toLowerCase();
  }

  function sortTable(table, column, direction) {
    const body = table.tBodies[0];
    if (!body) return;
    const rows = Array.from(body.rows);
    rows.sort(function (a, b) {
      const x = cellValue(a, column), y = cellValue(b, column);
      if (x === y) return 0;
      if (x === "") return 1;
      if (y === "") return -1;
      const order = typeof x === typeof y ? (x < y ? -1 : 1) : (typeof x === "number" ? -1 : 1);
      return direction === "ascending" ? order : -order;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    table.querySelectorAll("thead th").forEach(function (th, i) {
      if (i === column) th.setAttribute("aria-sort", direction);
      else th.removeAttribute("aria-sort");
    });
  }

  function enableSorting(root) {
    root.querySelectorAll("table.sortable").forEach(function (table, index) {
      table.querySelectorAll("thead th").forEach(function (th, column) {
        if (th.querySelector("button.sort") || !th.textContent.trim()) return;
        const button = document.createElement("button");
        button.type = "button";
        button.className = "sort";
        button.textContent = th.textContent;
        button.title = "sort by " + th.textContent;
        th.textContent = "";
        th.appendChild(button);
        button.addEventListener("click", function () {
          const current = th.getAttribute("aria-sort");
          const direction = current === "ascending" ? "descending" : "ascending";
          sortState[index] = [column, direction];
          sortTable(table, column, direction);
        });
      });
      const state = sortState[index];
      if (state) sortTable(table, state[0], state[1]);
    });
  }

  // --- live updates -------------------------------------------------------------------------
  function busy() {
    const el = document.activeElement;
    return el && main.contains(el) && /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(el.tagName);
  }

  function refresh() {
    if (inFlight || document.hidden || busy()) return;
    inFlight = true;
    const headers = { "X-Studio-Fragment": "main" };
    if (etag) headers["If-None-Match"] = etag;
    fetch(window.location.href, { headers: headers, cache: "no-store" })
      .then(function (resp) {
        if (resp.status === 304) return null;
        if (!resp.ok) throw new Error("HTTP " + resp.status);
        etag = resp.headers.get("ETag");
        return resp.text();
      })
      .then(function (html) {
        last = Date.now();
        if (html !== null && html !== undefined) {
          main.innerHTML = html;
          enableSorting(main);
          tickTimes(main);
        }
        live.textContent = "live · updated just now";
        live.classList.remove("bad");
      })
      .catch(function (err) {
        live.textContent = "live updates paused: " + err.message;
        live.classList.add("bad");
      })
      .finally(function () { inFlight = false; });
  }

  function status() {
    if (!live || live.classList.contains("bad")) return;
    live.textContent = "live · updated " + relative((Date.now() - last) / 1000);
  }

  enableSorting(document);
  tickTimes(document);
  if (main && live && main.hasAttribute("data-live")) {
    live.textContent = "live";
    // The first poll learns the ETag (the page as loaded may already be a render old).
    setInterval(refresh, poll);
    setInterval(function () { tickTimes(document); status(); }, 5000);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
  }
})();
