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
          setLive("live · updated " + new Date().toLocaleTimeString());
        })
        .catch(function (err) {
          setLive("update failed: " + err.message);
        })
        .finally(function () {
          inflight = false;
        });
    }
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
    const es = new EventSource("/sse/containers/" + encodeURIComponent(body.dataset.id) + "/logs");
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
  }
  else if (page === "events") events();
})();
