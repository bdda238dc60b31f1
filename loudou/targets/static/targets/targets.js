/* Targets and performance charts (ECharts): the ranking bar chart and the dashboard's
 * target gauge. The spec comes from <script id="target-chart" type="application/json">;
 * every text in it is translated by the server. Redrawn on resize. */
(function () {
  "use strict";
  var source = document.getElementById("target-chart");
  if (!source || !window.echarts) {
    return;
  }
  var spec = JSON.parse(source.textContent);
  var box = document.getElementById(spec.id);
  if (!box) {
    return;
  }
  var lang = document.documentElement.lang || "en";
  function fmt(value) {
    if (value === null || value === undefined) {
      return "—";
    }
    if (spec.percent) {
      return (value * 100).toFixed(0) + "%";
    }
    var text = new Intl.NumberFormat(lang, { notation: "compact", maximumFractionDigits: 1 }).format(value);
    return (spec.money ? spec.symbol || "" : "") + text;
  }
  function bar() {
    var narrow = window.innerWidth < 576;
    return {
      tooltip: { trigger: "axis", valueFormatter: fmt },
      legend: { top: 0 },
      grid: { left: 8, right: 8, bottom: 8, top: 30, containLabel: true },
      xAxis: narrow ? { type: "value", axisLabel: { formatter: fmt } } :
        { type: "category", data: spec.names, axisLabel: { rotate: spec.names.length > 8 ? 40 : 0, interval: 0 } },
      yAxis: narrow ? { type: "category", data: spec.names, inverse: true } :
        { type: "value", axisLabel: { formatter: fmt } },
      series: [
        { name: spec.title, type: "bar", data: spec.values, itemStyle: { color: "#0d6efd" } },
        { name: spec.target_label, type: "scatter", data: spec.targets, symbol: "rect",
          symbolSize: narrow ? [4, 14] : [18, 4], itemStyle: { color: "#dc3545" } },
      ],
    };
  }
  function gauge() {
    var max = Math.max(spec.challenge || spec.stretch || spec.target, spec.value) * 1.1 || 1;
    var t = spec.target / max, s = (spec.stretch || spec.target) / max;
    var c = (spec.challenge || spec.stretch || spec.target) / max;
    return {
      series: [{
        type: "gauge", min: 0, max: max, radius: "95%", center: ["50%", "58%"],
        axisLine: { lineStyle: { width: 12, color: [[t, "#ffc107"], [s, "#198754"], [c, "#0dcaf0"], [1, "#0d6efd"]] } },
        axisLabel: { show: false }, splitLine: { length: 8 }, axisTick: { show: false },
        pointer: { width: 4 },
        title: { offsetCenter: [0, "70%"], fontSize: 12 },
        detail: { formatter: function (v) { return (spec.symbol || "") + new Intl.NumberFormat(lang, { notation: "compact", maximumFractionDigits: 1 }).format(v) + "\n" + (100 * v / spec.target).toFixed(0) + "%"; }, fontSize: 15, offsetCenter: [0, "30%"] },
        data: [{ value: spec.value, name: spec.name }],
      }],
    };
  }
  var chart = echarts.init(box, null, { locale: lang.indexOf("zh") === 0 ? "ZH" : "EN" });
  chart.setOption(spec.type === "gauge" ? gauge() : bar());
  window.addEventListener("resize", function () {
    chart.resize();
    if (spec.type !== "gauge") {
      chart.setOption(bar(), true);
    }
  });
})();
