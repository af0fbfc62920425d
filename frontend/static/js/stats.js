/* Statistics charts (ECharts, vendored; maps from our own GeoJSON, no tiles from the internet).
   Data comes from the page's JSON data block (the same figures as /api/v1/stats/dashboard).
   Each chart element gets data-rendered="true" once ECharts has finished drawing it. */
(function () {
  "use strict";

  function readJSON(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function pct(rate) {
    return rate === null || rate === undefined ? null : Math.round(rate * 1000) / 10;
  }

  function markRendered(chart, el, extra) {
    chart.on("finished", function () {
      el.dataset.rendered = "true";
      Object.keys(extra || {}).forEach(function (k) { el.dataset[k] = extra[k]; });
    });
  }

  function init(el) {
    var chart = echarts.init(el, null, { renderer: "canvas" });
    window.addEventListener("resize", function () { chart.resize(); });
    return chart;
  }

  function targetLine(target) {
    return {
      silent: true,
      symbol: "none",
      lineStyle: { color: "#c0392b", type: "dashed", width: 2 },
      label: { formatter: "目标 Target " + pct(target) + "%" },
      data: [{ yAxis: pct(target), name: "target" }]
    };
  }

  function rateVisualMap(target) {
    var t = pct(target);
    return {
      type: "piecewise",
      left: "left",
      bottom: 0,
      pieces: [
        { lt: t - 15, color: "#b2182b", label: "< " + (t - 15) + "%" },
        { gte: t - 15, lt: t, color: "#ef8a62", label: (t - 15) + "–" + t + "%" },
        { gte: t, lt: t + 15, color: "#67a9cf", label: t + "–" + (t + 15) + "%" },
        { gte: t + 15, color: "#2166ac", label: "≥ " + (t + 15) + "%" }
      ],
      outOfRange: { color: "#eeeeee" }
    };
  }

  function drawMap(el, rows, target) {
    var level = el.dataset.mapLevel || "province";
    var province = el.dataset.mapProvince || "";
    var url = "/api/v1/stats/boundaries?level=" + level + (province ? "&province_code=" + province : "");
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (geo) {
        var name = "scope-" + level + "-" + (province || "cn");
        echarts.registerMap(name, geo);
        var chart = init(el);
        markRendered(chart, el, { mapName: name, regions: String(rows.length) });
        chart.setOption({
          tooltip: {
            trigger: "item",
            formatter: function (p) {
              var d = p.data || {};
              return (d.label || p.name) + ": " + (d.value === undefined || d.value === null ? "—" : d.value + "%");
            }
          },
          visualMap: rateVisualMap(target),
          series: [{
            type: "map",
            map: name,
            nameProperty: "adcode",
            roam: true,
            emphasis: { label: { show: false } },
            data: rows.map(function (r) {
              return { name: r.region_code, label: r.name_zh, value: pct(r.utilisation_rate) };
            })
          }]
        });
      })
      .catch(function (err) { el.dataset.error = String(err); });
  }

  function drawTrend(el, rows, target) {
    var chart = init(el);
    markRendered(chart, el, { targetLine: String(pct(target)) });
    chart.setOption({
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: rows.map(function (r) { return r.period; }) },
      yAxis: { type: "value", name: "%", min: 0, max: 100 },
      series: [{
        name: "utilisation rate",
        type: "line",
        connectNulls: false,
        data: rows.map(function (r) { return pct(r.utilisation_rate); }),
        markLine: targetLine(target)
      }]
    });
  }

  function drawMaterials(el, rows, names, target) {
    var chart = init(el);
    markRendered(chart, el, { targetLine: String(pct(target)) });
    chart.setOption({
      tooltip: { trigger: "axis" },
      grid: { left: 110 },
      yAxis: { type: "category", data: rows.map(function (r) { return names[r.material_code] || r.material_code; }) },
      xAxis: { type: "value", name: "%", min: 0, max: 100 },
      series: [{
        type: "bar",
        data: rows.map(function (r) { return pct(r.utilisation_rate); }),
        markLine: {
          silent: true, symbol: "none",
          lineStyle: { color: "#c0392b", type: "dashed", width: 2 },
          data: [{ xAxis: pct(target), name: "target" }]
        }
      }]
    });
  }

  function drawFlows(el, rows, names) {
    var chart = init(el);
    markRendered(chart, el, { links: String(rows.length) });
    var nodes = {};
    var links = rows.map(function (r) {
      var s = (names[r.source] || r.source) + " ▸";
      var t = "▸ " + (names[r.target] || r.target);
      nodes[s] = true;
      nodes[t] = true;
      return { source: s, target: t, value: parseFloat(r.tonnes) };
    });
    chart.setOption({
      tooltip: { trigger: "item" },
      series: [{
        type: "sankey",
        emphasis: { focus: "adjacency" },
        data: Object.keys(nodes).map(function (n) { return { name: n }; }),
        links: links
      }]
    });
  }

  function dashboard() {
    var data = readJSON("stats-data");
    if (!data) { return; }
    var target = data.kpis.target_rate;
    var el;
    if ((el = document.getElementById("chart-map"))) { drawMap(el, data.tables.regions, target); }
    if ((el = document.getElementById("chart-trend"))) { drawTrend(el, data.tables.trend_month, target); }
    if ((el = document.getElementById("chart-trend-year"))) { drawTrend(el, data.tables.trend_year, target); }
    if ((el = document.getElementById("chart-materials"))) {
      drawMaterials(el, data.tables.materials, data.names.materials, target);
    }
    if ((el = document.getElementById("chart-flows"))) { drawFlows(el, data.tables.flows, data.names.industries); }
  }

  function publicPage() {
    var data = readJSON("public-data");
    if (!data) { return; }
    var el = document.getElementById("chart-public-map");
    if (el) {
      var rows = data.map.filter(function (r) { return r.status === "published"; });
      drawMap(el, rows, data.target_rate);
    }
  }

  function start() {
    if (typeof echarts === "undefined") { return; }
    dashboard();
    publicPage();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
