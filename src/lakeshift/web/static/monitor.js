// Live refresh without a framework: poll the page's JSON API; when the answer changes,
// fetch the page again and swap its <main> (the server renders and escapes everything).
// Every page keeps polling, whatever it shows: a job page shows a run that starts later,
// and a run shown interrupted (its heartbeat late) can come back.  The "live" badge says
// something else: that what the page shows is still going on (the server marks its <main>
// data-live="yes": a running run, a job with one) and the polling keeps up with it.
(function () {
  "use strict";
  var api = document.body.dataset.api;
  if (!api) { return; }
  var every = parseInt(document.body.dataset.refreshMs || "2000", 10);
  var last = null;
  var badge = document.getElementById("live-state");
  function showLive(polled) {
    var main = document.getElementById("live");
    if (badge) { badge.hidden = !(polled && main && main.dataset.live === "yes"); }
  }
  // A request that hangs must not stop the polling: each gives up after a while.
  function limit() {
    return window.AbortSignal && AbortSignal.timeout ? AbortSignal.timeout(Math.max(every * 5, 10000))
                                                     : undefined;
  }
  function swap() {
    return fetch(window.location.href, {cache: "no-store", signal: limit()})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { return false; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("live");
        var here = document.getElementById("live");
        if (fresh && here) { keepTyped(here, fresh); here.replaceWith(fresh); }
        showLive(true);  // before the count: whoever waits for a swap sees the badge right
        // Counted, so a test (or a person in the console) can tell a swap has happened.
        document.body.dataset.swaps = String(parseInt(document.body.dataset.swaps || "0", 10) + 1);
        return true;
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
    fetch(api, {cache: "no-store", signal: limit(),
           headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (text === null) { showLive(false); return; }
        // The answer counts as seen only once the page that shows it is in: a page fetch
        // that failed (a busy server, a restart) is tried again at the next poll, even if
        // the answer no longer changes (a run that ended stays ended).  The first answer
        // too: the page was rendered before it was asked for, and a run that ended in
        // between (a cancel taken at the next heartbeat) would show 'running' for good.
        if (text !== last) {
          return swap().then(function (done) { if (done) { last = text; } });
        }
        showLive(true);
      })
      .catch(function () { showLive(false); })
      .then(function () { window.setTimeout(poll, every); });
  }
  window.setTimeout(poll, 0);
})();
