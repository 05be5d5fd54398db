// The lease's terminal: xterm.js wired to the marketplace's WebSocket.
// Binary frames are terminal bytes both ways; a text frame from here is a
// resize ({"resize":{"cols","rows"}}), from the server the shell's exit
// ({"exit":code}).
(function () {
  "use strict";
  var el = document.getElementById("terminal");
  var status = document.getElementById("shell-status");
  if (!el || !window.Terminal || !window.WebSocket) {
    return;
  }
  var term = new window.Terminal({ cursorBlink: true, convertEol: false, fontFamily: "monospace", fontSize: 14, scrollback: 5000 });
  term.open(el);

  // The size in cells that fits the element, from a measured cell.
  function fit() {
    var probe = document.createElement("span");
    probe.textContent = "W";
    probe.className = "xterm-probe";
    el.appendChild(probe);
    var w = probe.getBoundingClientRect().width || 8;
    var h = probe.getBoundingClientRect().height || 17;
    el.removeChild(probe);
    var cols = Math.max(20, Math.min(300, Math.floor((el.clientWidth - 16) / w)));
    var rows = Math.max(8, Math.min(100, Math.floor(480 / h)));
    return { cols: cols, rows: rows };
  }
  var size = fit();
  term.resize(size.cols, size.rows);

  var proto = location.protocol === "https:" ? "wss://" : "ws://";
  var ws = new WebSocket(proto + location.host + el.getAttribute("data-ws") + "?cols=" + size.cols + "&rows=" + size.rows);
  ws.binaryType = "arraybuffer";
  var enc = new TextEncoder();
  var dec = new TextDecoder("utf-8");

  ws.onopen = function () {
    status.textContent = "Connected: waiting for the provider's machine…";
  };
  var first = true;
  var exited = "";
  ws.onmessage = function (ev) {
    if (typeof ev.data === "string") {
      try {
        var c = JSON.parse(ev.data);
        if (c.exit !== undefined) {
          exited = "The shell exited (status " + c.exit + ").";
          status.textContent = exited;
        }
      } catch (e) {}
      return;
    }
    if (first) {
      first = false;
      status.textContent = "Connected.";
    }
    term.write(dec.decode(new Uint8Array(ev.data), { stream: true }));
  };
  ws.onclose = function (ev) {
    status.textContent = (exited ? exited + " " : "") + "Closed" + (ev.reason ? ": " + ev.reason : ".");
    status.setAttribute("data-closed", "1");
  };
  term.onData(function (d) {
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(enc.encode(d));
    }
  });
  window.addEventListener("resize", function () {
    var s = fit();
    if (s.cols === size.cols && s.rows === size.rows) {
      return;
    }
    size = s;
    term.resize(s.cols, s.rows);
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ resize: s }));
    }
  });
  term.focus();
})();
