// Breaches per rep: open and resolved, stacked horizontal bars (ECharts, served locally).
(function () {
  "use strict";
  var holder = document.getElementById("breach-chart");
  var source = document.getElementById("breach-chart-data");
  if (!holder || !source || !window.echarts) { return; }
  var data = JSON.parse(source.textContent);
  var chart = window.echarts.init(holder);
  chart.setOption({
    grid: { left: 8, right: 16, top: 28, bottom: 8, containLabel: true },
    legend: { top: 0 },
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
    xAxis: { type: "value", minInterval: 1 },
    yAxis: { type: "category", data: data.names, inverse: true },
    series: [
      { name: data.labels.open, type: "bar", stack: "n", data: data.open, color: "#dc3545" },
      { name: data.labels.resolved, type: "bar", stack: "n", data: data.resolved, color: "#adb5bd" }
    ]
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
