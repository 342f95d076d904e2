// Berth dashboard: the live parts of the server-rendered pages. Plain JavaScript, no dependencies; served by berthd
// from its binary under a Content-Security-Policy that allows this file and nothing inline.
"use strict";

(function () {
  const body = document.body;
  const page = body.dataset.page;

  // Buttons that destroy ask first.
  document.addEventListener("submit", function (e) {
    const form = e.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.querySelector("button").getAttribute("aria-label") + "?")) {
      e.preventDefault();
    }
  });

  function setLive(text) {
    const live = document.getElementById("live");
    if (live) live.textContent = text;
  }

  // Containers: the rows are fetched again (server-rendered) whenever the event bus says a container changed.
  function containers() {
    const tbody = document.querySelector("#containers tbody");
    const filter = document.getElementById("filter");
    const state = document.getElementById("state");
    function applyFilter() {
      const q = filter.value.trim().toLowerCase();
      const st = state.value;
      for (const row of tbody.rows) {
        if (!row.dataset.name) continue;
        const text = (row.dataset.name + " " + row.dataset.image).toLowerCase();
        row.hidden = (q !== "" && !text.includes(q)) || (st !== "" && row.dataset.state !== st);
      }
    }
    filter.addEventListener("input", applyFilter);
    state.addEventListener("change", applyFilter);
    let pending = null;
    let inflight = false;
    function refresh() {
      if (inflight) {
        pending = pending || setTimeout(refresh, 150);
        return;
      }
      pending = null;
      inflight = true;
      fetch("/fragments/containers", { credentials: "same-origin" })
        .then(function (r) {
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.text();
        })
        .then(function (html) {
          tbody.innerHTML = html;
          applyFilter();
          drawSparks();
          setLive("live · updated " + new Date().toLocaleTimeString());
        })
        .catch(function (err) {
          setLive("update failed: " + err.message);
        })
        .finally(function () {
          inflight = false;
        });
    }
    // Sparklines: one stream of samples for every running container (not one per row), the last 30 kept per
    // container and drawn again whenever the rows are replaced.
    const sparks = {};
    const keepSpark = 30;
    function line(svg, values, floor) {
      if (!svg) return;
      const max = Math.max(floor, ...values) * 1.15;
      const points = values
        .map(function (v, i) {
          return ((keepSpark - values.length + i) * 60 / (keepSpark - 1)).toFixed(1) + "," + (16 - (v / max) * 15).toFixed(2);
        })
        .join(" ");
      svg.querySelector("polyline").setAttribute("points", points);
    }
    function human(n) {
      const units = ["B", "kB", "MB", "GB"];
      let u = 0;
      while (n >= 1000 && u < units.length - 1) {
        n /= 1000;
        u++;
      }
      return n.toFixed(u ? 1 : 0) + units[u];
    }
    function drawSparks() {
      for (const row of tbody.rows) {
        const s = sparks[row.dataset.id];
        if (!s || !row.querySelector("svg.spark")) continue;
        line(row.querySelector("svg.cpu"), s.cpu, 1);
        line(row.querySelector("svg.mem"), s.mem, 1);
        row.querySelector(".cpu-now").textContent = s.cpu[s.cpu.length - 1].toFixed(1) + "%";
        row.querySelector(".mem-now").textContent = human(s.mem[s.mem.length - 1]);
      }
    }
    const stats = new EventSource("/sse/containers/stats");
    stats.addEventListener("stats", function (e) {
      const all = JSON.parse(e.data);
      for (const id of Object.keys(all)) {
        const s = sparks[id] || (sparks[id] = { cpu: [], mem: [] });
        s.cpu.push(all[id].cpu || 0);
        s.mem.push(all[id].mem || 0);
        if (s.cpu.length > keepSpark) {
          s.cpu.shift();
          s.mem.shift();
        }
      }
      for (const id of Object.keys(sparks)) if (!(id in all)) delete sparks[id];
      drawSparks();
      tbody.dataset.samples = String(Number(tbody.dataset.samples || 0) + 1);
    });
    const es = new EventSource("/sse/containers");
    es.addEventListener("change", function () {
      if (!pending) pending = setTimeout(refresh, 100);
    });
    es.onopen = function () {
      setLive("live");
    };
    es.onerror = function () {
      setLive("reconnecting…");
    };
    applyFilter();
  }

  // A container: its log, followed.
  function container() {
    const pre = document.getElementById("logs");
    const follow = document.getElementById("follow");
    const stamps = document.getElementById("timestamps");
    const search = document.getElementById("logsearch");
    function show(line) {
      const q = search.value.toLowerCase();
      line.hidden = q !== "" && !line.textContent.toLowerCase().includes(q);
    }
    function add(kind, data) {
      // "2026-12-06T16:00:00.123456789Z text"
      const sp = data.indexOf(" ");
      const line = document.createElement("span");
      line.className = "line " + kind;
      const ts = document.createElement("span");
      ts.className = "ts";
      ts.textContent = sp > 0 ? data.slice(0, sp) + " " : "";
      const text = document.createTextNode((sp > 0 ? data.slice(sp + 1) : data) + "\n");
      line.append(ts, text);
      show(line);
      pre.append(line);
      if (follow.checked) pre.scrollTop = pre.scrollHeight;
    }
    function applyStamps() {
      pre.classList.toggle("no-ts", !stamps.checked);
    }
    stamps.addEventListener("change", applyStamps);
    search.addEventListener("input", function () {
      for (const l of pre.children) show(l);
    });
    applyStamps();
    const es = new EventSource(pre.dataset.src || "/sse/containers/" + encodeURIComponent(body.dataset.id) + "/logs");
    es.addEventListener("out", function (e) {
      add("stdout", e.data);
    });
    es.addEventListener("err", function (e) {
      add("stderr", e.data);
    });
    es.addEventListener("end", function () {
      es.close();
      const note = document.createElement("span");
      note.className = "line end";
      note.textContent = "— end of log —\n";
      pre.append(note);
    });
  }

  // A container's resources: a sample a second from the API's stats stream, drawn as lines over the last 120.
  function resources() {
    const section = document.getElementById("resources");
    if (!section) return;
    const keep = 120;
    const series = { cpu: [], mem: [], net: [] };
    let lastNet = null;
    function human(n) {
      const units = ["B", "kB", "MB", "GB", "TB"];
      let u = 0;
      while (n >= 1000 && u < units.length - 1) {
        n /= 1000;
        u++;
      }
      return n.toFixed(u ? 1 : 0) + units[u];
    }
    function draw(name, floor) {
      const values = series[name];
      const max = Math.max(floor, ...values) * 1.15;
      const points = values
        .map(function (v, i) {
          return (keep - values.length + i).toFixed(0) + "," + (40 - (v / max) * 38).toFixed(2);
        })
        .join(" ");
      document.querySelector("#" + name + "-chart polyline").setAttribute("points", points);
    }
    function push(name, v) {
      series[name].push(v);
      if (series[name].length > keep) series[name].shift();
    }
    const es = new EventSource("/sse/containers/" + encodeURIComponent(body.dataset.id) + "/stats");
    es.addEventListener("stats", function (e) {
      const s = JSON.parse(e.data);
      const net = s.rx + s.tx;
      push("cpu", s.cpu);
      push("mem", s.mem);
      push("net", lastNet === null ? 0 : Math.max(0, net - lastNet));
      lastNet = net;
      draw("cpu", 1);
      draw("mem", 1);
      draw("net", 1);
      document.getElementById("cpu-now").textContent = s.cpu.toFixed(2) + "%";
      document.getElementById("mem-now").textContent = human(s.mem) + (s.limit ? " / " + human(s.limit) : "");
      document.getElementById("net-now").textContent = human(series.net[series.net.length - 1]) + "/s";
      section.dataset.samples = String(Number(section.dataset.samples) + 1);
    });
    es.addEventListener("end", function () {
      es.close();
    });
  }

  // POSTs from the page's script: same origin, the session's CSRF token in a header.
  function post(path, body) {
    const csrf = document.querySelector("meta[name=csrf-token]").content;
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "x-csrf-token": csrf, "content-type": "text/plain" },
      body: body || "",
    });
  }

  // A container's terminal: a shell with a TTY; output as events, keystrokes and sizes as POSTs. The screen is a
  // small subset of a VT100 (enough for a shell's line editing): text, CR, LF, BS, erase-in-line, cursor left/right,
  // clear screen; other escape sequences are dropped.
  function terminal() {
    const open = document.getElementById("term-open");
    if (!open) return;
    const screen = document.getElementById("term");
    const status = document.getElementById("term-status");
    let lines = [""];
    let row = 0;
    let col = 0;
    let esc = "";
    const maxLines = 2000;
    function put(ch) {
      let line = lines[row];
      if (line.length < col) line += " ".repeat(col - line.length);
      lines[row] = line.slice(0, col) + ch + line.slice(col + 1);
      col++;
    }
    function csi(seq) {
      const final = seq[seq.length - 1];
      const n = parseInt(seq.slice(1, -1), 10) || 1;
      const arg = seq.slice(1, -1);
      if (final === "K") {
        if (arg === "" || arg === "0") lines[row] = lines[row].slice(0, col);
        else if (arg === "2") lines[row] = "";
      } else if (final === "C") col += n;
      else if (final === "D") col = Math.max(0, col - n);
      else if (final === "J" && (arg === "2" || arg === "3")) {
        lines = [""];
        row = 0;
        col = 0;
      } else if (final === "H" && arg === "") {
        col = 0;
      }
    }
    function feed(text) {
      for (const ch of text) {
        if (esc) {
          esc += ch;
          if (esc.length === 2 && ch !== "[" && ch !== "]") esc = "";
          else if (esc[1] === "[" && esc.length > 2 && /[@-~]/.test(ch)) {
            csi(esc.slice(1));
            esc = "";
          } else if (esc[1] === "]" && (ch === "\u0007" || esc.endsWith("\u001b\\"))) esc = "";
          else if (esc.length > 64) esc = "";
          continue;
        }
        if (ch === "\u001b") esc = ch;
        else if (ch === "\r") col = 0;
        else if (ch === "\n") {
          row++;
          if (row >= lines.length) lines.push("");
          col = 0;
        } else if (ch === "\b") col = Math.max(0, col - 1);
        else if (ch === "\u0007") continue;
        else if (ch >= " ") put(ch);
      }
      if (lines.length > maxLines) {
        const drop = lines.length - maxLines;
        lines = lines.slice(drop);
        row -= drop;
      }
      screen.textContent = lines.join("\n");
      screen.scrollTop = screen.scrollHeight;
    }
    // Keystrokes are sent in order: one request at a time, what came meanwhile in the next.
    let queue = "";
    let sending = false;
    let termId = null;
    function flush() {
      if (sending || queue === "" || termId === null) return;
      const data = queue;
      queue = "";
      sending = true;
      post("/terminals/" + encodeURIComponent(termId) + "/input", data)
        .catch(function () {})
        .finally(function () {
          sending = false;
          flush();
        });
    }
    function send(data) {
      queue += data;
      flush();
    }
    const keys = {
      Enter: "\r", Backspace: "\u007f", Tab: "\t", Escape: "\u001b", ArrowUp: "\u001b[A", ArrowDown: "\u001b[B",
      ArrowRight: "\u001b[C", ArrowLeft: "\u001b[D", Home: "\u001b[H", End: "\u001b[F", Delete: "\u001b[3~",
    };
    screen.addEventListener("keydown", function (e) {
      if (termId === null) return;
      let data = null;
      if (e.ctrlKey && !e.altKey && e.key.length === 1 && /[a-z@\[\\\]^_]/i.test(e.key)) {
        data = String.fromCharCode(e.key.toUpperCase().charCodeAt(0) & 31);
      } else if (keys[e.key] !== undefined && !(e.key === "Tab" && e.shiftKey)) {
        data = keys[e.key];
      } else if (e.key.length === 1 && !e.ctrlKey && !e.metaKey) {
        data = e.key;
      }
      // Shift+Tab is not sent: it moves the focus out of the terminal, so the keyboard is never trapped.
      if (data !== null) {
        e.preventDefault();
        send(data);
      }
    });
    screen.addEventListener("paste", function (e) {
      if (termId === null) return;
      e.preventDefault();
      send(e.clipboardData.getData("text"));
    });
    function size() {
      // One character's box, measured.
      const probe = document.createElement("span");
      probe.textContent = "M";
      screen.append(probe);
      const w = probe.getBoundingClientRect().width || 8;
      const h = probe.getBoundingClientRect().height || 16;
      probe.remove();
      const cols = Math.max(20, Math.floor((screen.clientWidth - 16) / w));
      const rows = Math.max(5, Math.floor((screen.clientHeight - 16) / h));
      return { cols: cols, rows: rows };
    }
    let lastSize = "";
    function resize() {
      if (termId === null) return;
      const s = size();
      const key = s.rows + "x" + s.cols;
      if (key === lastSize) return;
      lastSize = key;
      post("/terminals/" + encodeURIComponent(termId) + "/resize?h=" + s.rows + "&w=" + s.cols).catch(function () {});
      screen.dataset.size = key;
    }
    window.addEventListener("resize", resize);
    open.addEventListener("click", function () {
      open.disabled = true;
      status.textContent = "starting a shell…";
      post("/containers/" + encodeURIComponent(body.dataset.id) + "/terminal")
        .then(function (r) {
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.json();
        })
        .then(function (j) {
          termId = j.Id;
          lines = [""];
          row = 0;
          col = 0;
          screen.textContent = "";
          screen.dataset.state = "open";
          status.textContent = "connected: type into the terminal (Shift+Tab leaves it)";
          const es = new EventSource("/sse/terminals/" + encodeURIComponent(termId));
          es.addEventListener("out", function (e) {
            feed(JSON.parse(e.data));
          });
          es.addEventListener("exit", function (e) {
            es.close();
            termId = null;
            screen.dataset.state = "exited";
            const code = e.data;
            feed("\r\n[exited" + (code === "null" ? "" : " with code " + code) + "]\r\n");
            status.textContent = "the shell exited" + (code === "null" ? "" : " (code " + code + ")");
            open.disabled = false;
          });
          resize();
          screen.focus();
        })
        .catch(function (err) {
          status.textContent = "could not start a shell: " + err.message;
          open.disabled = false;
        });
    });
  }

  // Images: pull with progress, from the API's stream of JSON lines (one line per layer, updated in place).
  function images() {
    const form = document.getElementById("pull");
    if (!form) return;
    const list = document.getElementById("pull-progress");
    const status = document.getElementById("pull-status");
    const button = document.getElementById("pull-go");
    function show(msg) {
      if (msg.error || msg.errorDetail) {
        status.textContent = "failed: " + (msg.error || msg.errorDetail.message);
        list.dataset.state = "failed";
        return;
      }
      if (!msg.id || msg.id === form.elements.ref.value.trim() || !msg.progressDetail && !/^[0-9a-f]{12}$/.test(msg.id)) {
        status.textContent = (msg.id && !/^[0-9a-f]{12}$/.test(msg.id) ? msg.id + ": " : "") + msg.status;
        return;
      }
      let item = document.getElementById("layer-" + msg.id);
      if (!item) {
        item = document.createElement("li");
        item.id = "layer-" + msg.id;
        const label = document.createElement("span");
        const bar = document.createElement("progress");
        bar.setAttribute("aria-label", "layer " + msg.id);
        item.append(label, " ", bar);
        list.append(item);
      }
      const d = msg.progressDetail || {};
      const bar = item.querySelector("progress");
      if (d.total) {
        bar.max = d.total;
        bar.value = d.current || 0;
      } else if (/complete|exists/i.test(msg.status)) {
        if (!(bar.max > 1)) bar.max = 1;
        bar.value = bar.max;
      }
      item.querySelector("span").textContent = msg.id + ": " + msg.status;
      item.dataset.status = msg.status;
    }
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      list.textContent = "";
      list.dataset.state = "pulling";
      button.disabled = true;
      status.textContent = "pulling…";
      post("/images/pull", form.elements.ref.value.trim())
        .then(function (r) {
          if (!r.ok) return r.text().then(function () { throw new Error("HTTP " + r.status); });
          const reader = r.body.getReader();
          const decoder = new TextDecoder();
          let buf = "";
          function pump() {
            return reader.read().then(function (chunk) {
              if (chunk.done) return;
              buf += decoder.decode(chunk.value, { stream: true });
              let nl;
              while ((nl = buf.indexOf("\n")) >= 0) {
                const text = buf.slice(0, nl).trim();
                buf = buf.slice(nl + 1);
                if (text) show(JSON.parse(text));
              }
              return pump();
            });
          }
          return pump().then(function () {
            if (buf.trim()) show(JSON.parse(buf.trim()));
          });
        })
        .then(function () {
          if (list.dataset.state !== "failed") list.dataset.state = "done";
        })
        .catch(function (err) {
          status.textContent = "failed: " + err.message;
          list.dataset.state = "failed";
        })
        .finally(function () {
          button.disabled = false;
        });
    });
  }

  // Events: the feed, newest first.
  function events() {
    const tbody = document.querySelector("#events tbody");
    const es = new EventSource("/sse/events");
    es.onmessage = function (e) {
      let ev;
      try {
        ev = JSON.parse(e.data);
      } catch (_) {
        return;
      }
      const actor = ev.Actor || {};
      const attrs = actor.Attributes || {};
      const row = tbody.insertRow(0);
      const when = ev.timeNano ? new Date(ev.timeNano / 1e6) : new Date((ev.time || 0) * 1000);
      const name = attrs.name ? attrs.name + " " : "";
      const rest = Object.keys(attrs)
        .filter(function (k) {
          return k !== "name";
        })
        .map(function (k) {
          return k + "=" + attrs[k];
        })
        .join(", ");
      for (const text of [when.toLocaleString(), ev.Type || "", ev.Action || "", name + (actor.ID || "").slice(0, 12), rest]) {
        row.insertCell().textContent = text;
      }
      while (tbody.rows.length > 1000) tbody.deleteRow(-1);
    };
  }

  if (page === "containers") containers();
  else if (page === "container") {
    container();
    resources();
    terminal();
  }
  else if (page === "events") events();
  else if (page === "images") images();
  else if (page === "project") container();
})();
