/* Matching rounds: the progress bar (polls GET /api/v1/rounds/{id}/status), the map of proposed flows (ECharts,
   vendored; boundaries from our own GeoJSON, no tiles from the internet) and the scope parts of the new-round
   form. Every page works without it: the report is rendered on the server, the table is always there.
   The map element gets data-rendered="true" once ECharts has drawn it; the progress element data-done="true". */
(function () {
  "use strict";

  var POLL_MS = 1000;

  function readJSON(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  // ------------------------------------------------------------------------------------------ progress

  function showStatus(el, s) {
    var percent = Math.round((s.progress || 0) * 100);
    var bar = document.getElementById("round-bar");
    if (bar) { bar.style.width = percent + "%"; }
    var meter = el.querySelector("[role=progressbar]");
    if (meter) { meter.setAttribute("aria-valuenow", String(percent)); }
    var stage = document.getElementById("round-stage");
    if (stage && s.stage) { stage.textContent = el.getAttribute("data-label-" + s.stage) || s.stage; }
    var pc = document.getElementById("round-percent");
    if (pc) { pc.textContent = percent + "%"; }
    var queue = document.getElementById("round-queue");
    if (queue) {
      queue.textContent = s.queue_position ? "· " + el.getAttribute("data-label-position") + " " + s.queue_position : "";
    }
    var error = document.getElementById("round-error");
    if (error) {
      error.textContent = s.error || "";
      error.hidden = !s.error;
    }
    el.dataset.stage = s.stage || "";
    el.dataset.state = s.round_state;
  }

  function poll(el) {
    var id = el.dataset.roundId;
    fetch("/api/v1/rounds/" + id + "/status", {
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    })
      .then(function (r) {
        if (!r.ok) { throw new Error("status " + r.status); }
        return r.json();
      })
      .then(function (s) {
        showStatus(el, s);
        if (s.done) {
          el.dataset.done = "true";
          // The report is rendered on the server: show it by loading the round page again.
          window.location.replace("/rounds/" + id);
        } else {
          window.setTimeout(function () { poll(el); }, POLL_MS);
        }
      })
      .catch(function (err) {
        el.dataset.pollError = String(err);
        window.setTimeout(function () { poll(el); }, POLL_MS * 5);
      });
  }

  // ------------------------------------------------------------------------------------------ the map

  function eachPoint(coords, fn) {
    if (typeof coords[0] === "number") { fn(coords); return; }
    coords.forEach(function (c) { eachPoint(c, fn); });
  }

  function bounds(points) {
    var b = { minLon: Infinity, maxLon: -Infinity, minLat: Infinity, maxLat: -Infinity };
    points.forEach(function (p) {
      b.minLon = Math.min(b.minLon, p[0]);
      b.maxLon = Math.max(b.maxLon, p[0]);
      b.minLat = Math.min(b.minLat, p[1]);
      b.maxLat = Math.max(b.maxLat, p[1]);
    });
    return b;
  }

  function view(geo, flows) {
    // Centre on the flows and zoom so that they fill about two thirds of the map (ECharts' zoom is relative
    // to the whole boundary layer), but keep at least about a degree (~100 km) in view so that the city
    // boundaries around short flows still show where they are.
    var all = [];
    geo.features.forEach(function (f) { eachPoint(f.geometry.coordinates, function (p) { all.push(p); }); });
    var ends = [];
    flows.forEach(function (f) { ends.push(f.from, f.to); });
    if (!all.length || !ends.length) { return {}; }
    var whole = bounds(all);
    var b = bounds(ends);
    var spanLon = Math.max(b.maxLon - b.minLon, 1.0);
    var spanLat = Math.max(b.maxLat - b.minLat, 1.0);
    var zoom = Math.min((whole.maxLon - whole.minLon) / spanLon, (whole.maxLat - whole.minLat) / spanLat) * 0.66;
    return {
      center: [(b.minLon + b.maxLon) / 2, (b.minLat + b.maxLat) / 2],
      zoom: Math.max(1, Math.min(zoom, 12))
    };
  }

  function drawFlows(el, flows) {
    var level = el.dataset.mapLevel || "province";
    var province = el.dataset.mapProvince || "";
    var url = "/api/v1/stats/boundaries?level=" + level + (province ? "&province_code=" + province : "");
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (geo) {
        var name = "round-" + level + "-" + (province || "cn");
        echarts.registerMap(name, geo);
        var chart = echarts.init(el, null, { renderer: "canvas" });
        window.addEventListener("resize", function () { chart.resize(); });
        chart.on("finished", function () {
          el.dataset.rendered = "true";
          el.dataset.lines = String(flows.length);
        });
        var maxT = flows.reduce(function (m, f) { return Math.max(m, f.tonnes); }, 0) || 1;
        var producers = {};
        var consumers = {};
        flows.forEach(function (f) {
          producers[f.from.join(",")] = { name: f.supplier, value: f.from };
          consumers[f.to.join(",")] = { name: f.consumer, value: f.to };
        });
        var v = view(geo, flows);
        chart.setOption({
          tooltip: {
            trigger: "item",
            formatter: function (p) {
              if (p.seriesType === "lines") { return p.data.label + ": " + p.data.tonnes + " t"; }
              return p.name;
            }
          },
          legend: { left: "left", data: [el.dataset.labelProducers || "▲", el.dataset.labelConsumers || "●"] },
          geo: {
            map: name,
            roam: true,
            center: v.center,
            zoom: v.zoom || 1,
            itemStyle: { areaColor: "#e9efec", borderColor: "#9aa8a1" },
            emphasis: { disabled: true }
          },
          series: [
            {
              type: "lines",
              coordinateSystem: "geo",
              zlevel: 1,
              symbol: ["none", "arrow"],
              symbolSize: 8,
              lineStyle: { color: "#2e7d4f", opacity: 0.75, curveness: 0.15 },
              data: flows.map(function (f) {
                return {
                  coords: [f.from, f.to],
                  tonnes: f.tonnes,
                  label: f.supplier + " → " + f.consumer,
                  lineStyle: { width: 1 + 9 * f.tonnes / maxT }
                };
              })
            },
            {
              name: el.dataset.labelProducers || "▲",
              type: "scatter",
              coordinateSystem: "geo",
              zlevel: 2,
              symbol: "triangle",
              symbolSize: 10,
              itemStyle: { color: "#b35c00" },
              data: Object.keys(producers).map(function (k) { return producers[k]; })
            },
            {
              name: el.dataset.labelConsumers || "●",
              type: "scatter",
              coordinateSystem: "geo",
              zlevel: 2,
              symbolSize: 9,
              itemStyle: { color: "#1f5a8a" },
              data: Object.keys(consumers).map(function (k) { return consumers[k]; })
            }
          ]
        });
      })
      .catch(function (err) { el.dataset.error = String(err); });
  }

  // ------------------------------------------------------------------------------------------ the form

  function scopeParts(form) {
    function update() {
      var checked = form.querySelector("input[name=scope]:checked");
      var scope = checked ? checked.value : "";
      form.querySelectorAll("[data-scope-part]").forEach(function (part) {
        // .field is display:flex, which would override the hidden attribute
        part.style.display = part.getAttribute("data-scope-part") === scope ? "" : "none";
      });
    }
    form.querySelectorAll("input[name=scope]").forEach(function (r) { r.addEventListener("change", update); });
    update();
  }

  function start() {
    var progress = document.getElementById("round-progress");
    if (progress && progress.dataset.done === "false") {
      window.setTimeout(function () { poll(progress); }, POLL_MS / 2);
    }
    var map = document.getElementById("round-map");
    var flows = readJSON("round-flows");
    if (map && flows && typeof echarts !== "undefined") { drawFlows(map, flows); }
    var form = document.getElementById("round-form");
    if (form) { scopeParts(form); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
