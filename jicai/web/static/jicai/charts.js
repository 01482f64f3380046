/* Charts of the daily screens (Apache ECharts, served locally).
 *
 * Every chart is a <div data-chart="KIND" data-source="ID"> whose data is the JSON of the
 * <script type="application/json" id="ID"> that Django's json_script wrote; labels come
 * translated in that JSON ("labels"). A chart that has drawn carries data-ready="1".
 */
(function () {
  "use strict";
  if (!window.echarts) { return; }
  var zh = (document.documentElement.lang || "").toLowerCase().indexOf("zh") === 0;
  var locale = zh ? "ZH" : "EN";
  var colors = {
    selected: "#2e7d32", non_selected: "#e65100", substitute: "#6a1b9a",
    completion: "#b42318", elapsed: "#616e7c"
  };
  var statusColors = ["#027a48", "#1570ef", "#dc6803", "#b42318", "#98a2b3"];
  var font = '"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",system-ui,sans-serif';

  function json(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function start(el) {
    var chart = echarts.init(el, null, { renderer: "canvas", locale: locale });
    window.addEventListener("resize", function () { chart.resize(); });
    return chart;
  }

  function percent(v) { return v === null || v === undefined ? "—" : v + "%"; }

  var builders = {
    mix: function (el, d) {
      var L = d.labels;
      var chart = start(el);
      var series = ["selected", "non_selected", "substitute"].map(function (key) {
        return { name: L[key], type: "bar", stack: "qty", data: d[key], itemStyle: { color: colors[key] },
                 emphasis: { focus: "series" } };
      });
      chart.setOption({
        textStyle: { fontFamily: font },
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
        legend: { top: 0, right: 0 },
        grid: { left: 70, right: 16, top: 44, bottom: 56 },
        xAxis: { type: "category", data: d.months },
        yAxis: { type: "value", name: L.quantity, nameTextStyle: { align: "left", padding: [0, 0, 0, -60] } },
        dataZoom: [{ type: "slider", height: 16, bottom: 8 }],
        series: series
      });
      return chart;
    },

    trend: function (el, d) {
      var L = d.labels;
      var chart = start(el);
      chart.setOption({
        textStyle: { fontFamily: font },
        tooltip: { trigger: "axis", valueFormatter: percent },
        legend: { top: 0 },
        grid: { left: 56, right: 16, top: 36, bottom: 56 },
        xAxis: { type: "category", data: d.months },
        yAxis: { type: "value", axisLabel: { formatter: "{value}%" } },
        dataZoom: [{ type: "slider", height: 16, bottom: 8 }],
        series: [
          { name: L.completion, type: "line", data: d.completion, symbolSize: 5,
            itemStyle: { color: colors.completion }, areaStyle: { opacity: 0.08 } },
          { name: L.elapsed, type: "line", data: d.elapsed, symbol: "none",
            lineStyle: { type: "dashed" }, itemStyle: { color: colors.elapsed } }
        ]
      });
      return chart;
    },

    heatmap: function (el, d) {
      var L = d.labels;
      var names = [L.completed, L.on_track, L.behind, L.at_risk, L.none];
      el.style.height = Math.max(360, d.institutions.length * 18 + 150) + "px";
      var chart = start(el);
      chart.setOption({
        textStyle: { fontFamily: font },
        tooltip: {
          position: "top",
          formatter: function (p) {
            var v = p.data, inst = d.institutions[v[1]], item = d.items[v[0]];
            return inst.name + "<br>" + item.name + "（" + item.batch + " · " + item.item + "）<br>" +
              L.completion + " " + percent(v[2]) + " · " + L.elapsed + " " + percent(v[4]) + "<br>" + names[v[3]];
          }
        },
        grid: { left: 210, right: 16, top: 8, bottom: 150 },
        xAxis: { type: "category", data: d.items.map(function (i) { return i.name; }),
                 axisLabel: { rotate: 60, interval: 0, fontSize: 11 }, splitArea: { show: true } },
        yAxis: { type: "category", inverse: true, data: d.institutions.map(function (i) { return i.name; }),
                 axisLabel: { fontSize: 11, width: 200, overflow: "truncate" } },
        visualMap: {
          type: "piecewise", dimension: 3, orient: "horizontal", left: "center", bottom: 0,
          pieces: names.map(function (n, i) { return { value: i, label: n, color: statusColors[i] }; })
        },
        series: [{
          type: "heatmap", data: d.cells,
          label: { show: d.items.length <= 30, fontSize: 9, color: "#fff",
                   formatter: function (p) { return p.data[2] === null ? "" : Math.round(p.data[2]); } },
          emphasis: { itemStyle: { borderColor: "#1f2933", borderWidth: 1 } }
        }]
      });
      chart.on("click", function (p) {
        var v = p.data, inst = d.institutions[v[1]], item = d.items[v[0]];
        window.location.href = d.url.replace("__INST__", encodeURIComponent(inst.code))
          .replace("__BATCH__", encodeURIComponent(item.batch)).replace("__ITEM__", encodeURIComponent(item.item));
      });
      return chart;
    },

    department: function (el, d) {
      var L = d.labels;
      el.style.height = Math.max(260, d.items.length * 22 + 90) + "px";
      var chart = start(el);
      if (d.mode === "quantity") {
        chart.setOption({
          textStyle: { fontFamily: font },
          tooltip: { trigger: "axis", axisPointer: { type: "shadow" },
                     formatter: function (ps) { var p = ps[0]; return p.name + "<br>" + p.value + " " + d.units[p.dataIndex]; } },
          legend: { top: 0 },
          grid: { left: 150, right: 24, top: 32, bottom: 24 },
          yAxis: { type: "category", inverse: true, data: d.items, axisLabel: { width: 140, overflow: "truncate" } },
          xAxis: { type: "value" },
          series: [{ name: L.dispensed, type: "bar", data: d.dispensed, itemStyle: { color: colors.selected } }]
        });
        return chart;
      }
      chart.setOption({
        textStyle: { fontFamily: font },
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, valueFormatter: percent },
        legend: { top: 0 },
        grid: { left: 150, right: 24, top: 32, bottom: 24 },
        yAxis: { type: "category", inverse: true, data: d.items, axisLabel: { width: 140, overflow: "truncate" } },
        xAxis: { type: "value", axisLabel: { formatter: "{value}%" } },
        series: [
          { name: L.completion, type: "bar", data: d.completion, itemStyle: { color: colors.completion } },
          { name: L.elapsed, type: "scatter", data: d.elapsed, symbol: "rect", symbolSize: [3, 16],
            itemStyle: { color: colors.elapsed } }
        ]
      });
      return chart;
    }
  };

  var nodes = document.querySelectorAll("[data-chart]");
  for (var i = 0; i < nodes.length; i++) {
    var el = nodes[i];
    var build = builders[el.getAttribute("data-chart")];
    var data = json(el.getAttribute("data-source"));
    if (build && data) {
      build(el, data);
      el.setAttribute("data-ready", "1");
    }
  }
})();
