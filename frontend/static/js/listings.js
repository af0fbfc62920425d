/* Listings pages: the map of search results (ECharts, vendored, on our own province boundaries — no tiles from
   the internet), grade options that follow the chosen material, and city options that follow the province.
   Every page works without this file; it only narrows choices and draws the map.
   The map element gets data-rendered="true" and data-points="<n>" once ECharts has drawn it. */
(function () {
  "use strict";

  function readJSON(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  // Show only the <option>s whose data-<attr> matches the controlling select's value.
  function follow(controller, target, attr) {
    function apply() {
      var value = controller.value;
      Array.prototype.forEach.call(target.options, function (opt) {
        var key = opt.getAttribute(attr);
        var show = key === null || !value || key === value;
        opt.hidden = !show;
        opt.disabled = !show;
        if (!show && opt.selected) { target.value = ""; }
      });
    }
    controller.addEventListener("change", apply);
    apply();
  }

  function drawMap(el, points) {
    fetch(el.dataset.boundaries, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (geo) {
        echarts.registerMap("listings-provinces", geo);
        var chart = echarts.init(el, null, { renderer: "canvas" });
        window.addEventListener("resize", function () { chart.resize(); });
        chart.on("finished", function () {
          el.dataset.rendered = "true";
          el.dataset.points = String(points.length);
        });
        chart.on("click", function (p) {
          if (p.data && p.data.id) { window.location.href = "/listings/" + p.data.id; }
        });
        function series(kind, color, symbol) {
          return {
            name: el.dataset["label" + kind.charAt(0).toUpperCase() + kind.slice(1)] || kind,
            type: "scatter",
            coordinateSystem: "geo",
            symbol: symbol,
            symbolSize: 10,
            itemStyle: { color: color, borderColor: "#fff", borderWidth: 1 },
            data: points.filter(function (p) { return p.kind === kind; }).map(function (p) {
              return { id: p.id, name: p.material, value: [p.lon, p.lat, p.quantity_t], approximate: p.approximate };
            })
          };
        }
        chart.setOption({
          tooltip: {
            trigger: "item",
            formatter: function (p) {
              if (!p.data || !p.data.value) { return p.name; }
              var text = p.seriesName + " · " + p.data.name + " · " + p.data.value[2] + " t";
              return p.data.approximate ? text + " (" + el.dataset.labelApproximate + ")" : text;
            }
          },
          legend: { top: 0, left: "left" },
          geo: {
            map: "listings-provinces",
            roam: true,
            nameProperty: "adcode",
            itemStyle: { areaColor: "#f3f6f4", borderColor: "#9fb3a8" },
            emphasis: { itemStyle: { areaColor: "#e2ece6" }, label: { show: false } }
          },
          series: [series("supply", "#2e7d4f", "circle"), series("demand", "#c0392b", "diamond")]
        });
      })
      .catch(function (err) { el.dataset.error = String(err); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var grade = document.querySelector("[data-grades-for]");
    if (grade) {
      var material = document.getElementById(grade.dataset.gradesFor);
      if (material) { follow(material, grade, "data-material"); }
    }
    var province = document.querySelector("[data-filters-cities]");
    if (province) {
      var city = document.getElementById(province.dataset.filtersCities);
      if (city) { follow(province, city, "data-province"); }
    }
    var map = document.getElementById("listings-map");
    if (map && window.echarts) { drawMap(map, readJSON("listings-map-data") || []); }
  });
})();
