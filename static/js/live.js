// Live regions: an element with data-live="<fragment URL>" is re-fetched
// and swapped in whenever the market changes. One EventSource per page;
// the server already coalesces changes to one event a second, and a fetch
// still in flight absorbs further events (one more fetch follows it), so a
// busy market never stacks requests. Without JS the pages still work: they
// are just not live.
(function () {
  "use strict";
  var regions = document.querySelectorAll("[data-live]");
  if (regions.length === 0 || !window.EventSource || !window.fetch) {
    return;
  }

  function refresher(el) {
    var busy = false;
    var again = false;
    return function refresh() {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      fetch(el.getAttribute("data-live"), { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) {
          // A 4xx/5xx (logged out, lease gone) leaves the last good view.
          return r.ok || r.status === 422 ? r.text() : null;
        })
        .then(function (html) {
          if (html !== null) {
            el.innerHTML = html;
          }
        })
        .catch(function () {})
        .then(function () {
          busy = false;
          if (again) {
            again = false;
            refresh();
          }
        });
    };
  }

  var refreshers = [];
  regions.forEach(function (el) {
    refreshers.push(refresher(el));
  });
  function refreshAll() {
    refreshers.forEach(function (r) {
      r();
    });
  }
  // The page names the market generation it was rendered at; the stream
  // sends "changed" at once when the market has moved on since, so a
  // change between the render and the stream opening is not missed. The
  // same URL serves EventSource's own reconnects (the server ends a stream
  // every few minutes): a change during the gap is caught the same way.
  var script = document.currentScript || document.querySelector("script[data-since]");
  var since = script ? script.getAttribute("data-since") : null;
  var url = "/market/events" + (since ? "?since=" + encodeURIComponent(since) : "");
  var source = new EventSource(url);
  source.addEventListener("changed", refreshAll);
})();
