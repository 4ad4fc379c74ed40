// Live refresh without a framework: poll the page's JSON API; when the answer changes,
// fetch the page again and swap its <main> (the server renders and escapes everything).
(function () {
  "use strict";
  var api = document.body.dataset.api;
  if (!api) { return; }
  var every = parseInt(document.body.dataset.refreshMs || "2000", 10);
  var last = null;
  var badge = document.getElementById("live-state");
  function swap() {
    return fetch(window.location.href, {cache: "no-store"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("live");
        var here = document.getElementById("live");
        if (fresh && here) { keepTyped(here, fresh); here.replaceWith(fresh); }
      });
  }
  // What a person typed into a form (the action token) survives the swap: each field of
  // the fresh page takes the value of the same form's field here, and focus stays on it.
  function keepTyped(here, fresh) {
    var focused = document.activeElement;
    here.querySelectorAll("form input[name]").forEach(function (old) {
      var form = old.form.getAttribute("action");
      fresh.querySelectorAll("form input[name]").forEach(function (field) {
        if (field.name === old.name && field.form.getAttribute("action") === form) {
          field.value = old.value;
          if (old === focused) { window.setTimeout(function () { field.focus(); }, 0); }
        }
      });
    });
  }
  function poll() {
    fetch(api, {cache: "no-store", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (badge) { badge.hidden = text === null; }
        if (text === null) { return; }
        if (last !== null && text !== last) { return swap().then(function () { last = text; }); }
        last = text;
      })
      .catch(function () { if (badge) { badge.hidden = true; } })
      .then(function () { window.setTimeout(poll, every); });
  }
  window.setTimeout(poll, 0);
})();
