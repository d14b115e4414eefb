// tokenmux pages: sample-code tabs, copy buttons and instant filtering of the models table.
// Every page works without this file; it only makes them quicker to use. No build step, no library.
"use strict";

// Marks the page as scripted before it is painted (this file loads in <head>, not deferred), so the CSS
// can hide inactive tab panels without a flash of all of them.
document.documentElement.classList.add("js");

(function () {
  // -- tabs ------------------------------------------------------------------------------------------
  function selectTab(tablist, tab, focus) {
    const tabs = tablist.querySelectorAll('[role="tab"]');
    tabs.forEach(function (other) {
      const selected = other === tab;
      other.setAttribute("aria-selected", selected ? "true" : "false");
      other.tabIndex = selected ? 0 : -1;
      const panel = document.getElementById(other.getAttribute("aria-controls"));
      if (panel) panel.classList.toggle("active", selected);
    });
    if (focus) tab.focus();
  }

  function setUpTabs(root) {
    const tablist = root.querySelector('[role="tablist"]');
    if (!tablist) return;
    const tabs = Array.from(tablist.querySelectorAll('[role="tab"]'));
    tablist.addEventListener("click", function (event) {
      const tab = event.target.closest('[role="tab"]');
      if (tab) selectTab(tablist, tab, false);
    });
    // Arrow keys move between tabs, as the ARIA tabs pattern expects.
    tablist.addEventListener("keydown", function (event) {
      const at = tabs.indexOf(document.activeElement);
      if (at < 0) return;
      let next = null;
      if (event.key === "ArrowRight") next = tabs[(at + 1) % tabs.length];
      else if (event.key === "ArrowLeft") next = tabs[(at - 1 + tabs.length) % tabs.length];
      else if (event.key === "Home") next = tabs[0];
      else if (event.key === "End") next = tabs[tabs.length - 1];
      if (next) {
        event.preventDefault();
        selectTab(tablist, next, true);
      }
    });
  }

  // -- copy buttons ----------------------------------------------------------------------------------
  // navigator.clipboard exists only in secure contexts (https or localhost); a gateway reached over plain
  // http on a LAN name falls back to selecting the text and the older execCommand.
  function copyText(text, source) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      const range = document.createRange();
      range.selectNodeContents(source);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      const ok = document.execCommand && document.execCommand("copy");
      if (ok) resolve();
      else reject(new Error("copy is not available"));
    });
  }

  function setUpCopy(button) {
    const label = button.textContent;
    let timer = null;
    button.addEventListener("click", function () {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      copyText(source.textContent, source).then(
        function () { flash(button, "Copied", label); },
        function () { flash(button, "Press Ctrl+C", label); }
      );
    });
    function flash(target, text, original) {
      target.textContent = text;
      target.classList.add("done");
      clearTimeout(timer);
      timer = setTimeout(function () {
        target.textContent = original;
        target.classList.remove("done");
      }, 1600);
    }
  }

  // -- models filter ---------------------------------------------------------------------------------
  // Mirrors catalog_filter.ModelQuery: the same fields, the same rules, read from the rows' data-*.
  function readFilters(form) {
    const data = new FormData(form);
    const number = function (name) {
      const raw = (data.get(name) || "").trim();
      const value = raw === "" ? NaN : Number(raw);
      return Number.isFinite(value) && value >= 0 ? value : null;
    };
    return {
      terms: (data.get("q") || "").trim().toLowerCase().split(/\s+/).filter(Boolean),
      provider: data.get("provider") || "",
      modality: data.get("modality") || "",
      minContext: number("min_context"),
      maxPrice: number("max_price"),
      param: data.get("param") || "",
      sort: data.get("sort") || "name",
    };
  }

  function words(row, name) {
    return (row.dataset[name] || "").split(" ");
  }

  function rowMatches(row, f) {
    const haystack = row.dataset.search || "";
    if (!f.terms.every(function (t) { return haystack.indexOf(t) >= 0; })) return false;
    if (f.provider && words(row, "providers").indexOf(f.provider) < 0) return false;
    if (f.modality && words(row, "input").indexOf(f.modality) < 0) return false;
    if (f.minContext !== null && Number(row.dataset.context) < f.minContext) return false;
    if (f.maxPrice !== null && Number(row.dataset.price) > f.maxPrice) return false;
    if (f.param && words(row, "params").indexOf(f.param) < 0) return false;
    return true;
  }

  function byName(a, b) {
    return a.dataset.name < b.dataset.name ? -1 : a.dataset.name > b.dataset.name ? 1 : 0;
  }

  const ORDERS = {
    name: function () { return 0; },
    price: function (a, b) {
      return Number(a.dataset.price) - Number(b.dataset.price) ||
        Number(a.dataset.outputPrice) - Number(b.dataset.outputPrice);
    },
    context: function (a, b) { return Number(b.dataset.context) - Number(a.dataset.context); },
    throughput: function (a, b) {
      const speed = function (row) { return row.dataset.throughput === "" ? -1 : Number(row.dataset.throughput); };
      return speed(b) - speed(a);
    },
  };

  function applyFilters(form, table) {
    const filters = readFilters(form);
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    const order = ORDERS[filters.sort] || ORDERS.name;
    rows.sort(function (a, b) { return order(a, b) || byName(a, b); });
    let shown = 0;
    rows.forEach(function (row) {
      const visible = rowMatches(row, filters);
      row.hidden = !visible;
      if (visible) shown += 1;
      body.appendChild(row); // re-appending moves the row: the body ends up in sorted order
    });
    const count = document.getElementById("model-count");
    if (count) count.textContent = String(shown);
    const none = document.getElementById("no-models");
    if (none) none.hidden = shown > 0;
    // Keep the address in step, so a filtered list can be bookmarked or shared.
    const params = new URLSearchParams();
    new FormData(form).forEach(function (value, name) {
      if (value !== "" && !(name === "sort" && value === "name")) params.append(name, value);
    });
    const query = params.toString();
    history.replaceState(null, "", query ? "?" + query : location.pathname);
  }

  function setUpFilters(form) {
    const table = document.getElementById("models-table");
    if (!table) return;
    const apply = function () { applyFilters(form, table); };
    form.addEventListener("input", apply);
    form.addEventListener("change", apply);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      apply();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-tabs]").forEach(setUpTabs);
    document.querySelectorAll("button[data-copy]").forEach(setUpCopy);
    document.querySelectorAll("form[data-model-filters]").forEach(setUpFilters);
  });
})();
