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
  var source = new EventSource("/market/events");
  source.addEventListener("changed", refreshAll);
  // EventSource reconnects by itself after the server ends a stream (it
  // does, every few minutes); a change during the gap sent no event, so
  // each reconnect refreshes once.
  var opened = false;
  source.addEventListener("open", function () {
    if (opened) {
      refreshAll();
    }
    opened = true;
  });
})();
