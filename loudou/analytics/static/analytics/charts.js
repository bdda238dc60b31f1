/* Loudou analytics: draws every chart of the page with ECharts.
 *
 * The page puts its chart specs in <script id="chart-data" type="application/json"> (a list
 * of {id, type, ...}); each spec is drawn into the element with that id by the renderer of
 * its type. All text comes translated from the server. Charts are redrawn when the window
 * changes size, with a narrower layout on phones.
 */
(function () {
  "use strict";

  var source = document.getElementById("chart-data");
  if (!source || !window.echarts) {
    return;
  }
  var specs = JSON.parse(source.textContent);
  var lang = document.documentElement.lang || "en";
  var COLORS = {
    primary: "#0d6efd", success: "#198754", danger: "#dc3545", warning: "#ffc107",
    secondary: "#6c757d", dark: "#212529", info: "#0dcaf0", light: "#cfe2ff",
  };
  var PALETTE = ["#0d6efd", "#20c997", "#fd7e14", "#6f42c1", "#d63384", "#0dcaf0", "#198754",
    "#ffc107", "#6610f2", "#adb5bd"];

  function reducedMotion() {
    return window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  }

  function build(spec) {
    var option = RENDER[spec.type](spec);
    option.animation = !reducedMotion();
    return option;
  }

  function narrow() {
    return window.innerWidth < 576;
  }

  function pct(value, digits) {
    if (value === null || value === undefined) {
      return "—";
    }
    return (value * 100).toFixed(digits === undefined ? 0 : digits) + "%";
  }

  function compact(value, symbol) {
    if (value === null || value === undefined) {
      return "—";
    }
    var text = new Intl.NumberFormat(lang, { notation: "compact", maximumFractionDigits: 1 })
      .format(value);
    return (symbol || "") + text;
  }

  function full(value, symbol) {
    return (symbol || "") + new Intl.NumberFormat(lang, { maximumFractionDigits: 0 }).format(value);
  }

  function categoryAxis(names) {
    // On a phone, more than four categories do not fit side by side: slant their names
    // (cut at 80 px) instead of letting them run into each other.
    var crowded = narrow() && names.length > 4;
    return {
      type: "category",
      data: names,
      axisTick: { alignWithLabel: true },
      axisLabel: {
        interval: 0, rotate: crowded ? 40 : 0, width: crowded ? 80 : narrow() ? 64 : 120,
        overflow: crowded ? "truncate" : "break", fontSize: narrow() ? 11 : 12,
      },
    };
  }

  function rateAxis() {
    return { type: "value", min: 0, max: 1, axisLabel: { formatter: function (v) { return pct(v); } } };
  }

  /* Error bar of one category: vertical line from low to high with short caps. */
  function errorBar(params, api) {
    var x = api.value(0);
    var low = api.coord([x, api.value(1)]);
    var high = api.coord([x, api.value(2)]);
    var cap = Math.max(api.size([1, 0])[0] * 0.12, 4);
    var style = { stroke: COLORS.dark, lineWidth: 1.5 };
    return {
      type: "group",
      children: [
        { type: "line", shape: { x1: low[0], y1: low[1], x2: high[0], y2: high[1] }, style: style },
        { type: "line", shape: { x1: low[0] - cap, y1: low[1], x2: low[0] + cap, y2: low[1] }, style: style },
        { type: "line", shape: { x1: high[0] - cap, y1: high[1], x2: high[0] + cap, y2: high[1] }, style: style },
      ],
    };
  }

  var RENDER = {
    funnel: function (s) {
      return {
        color: PALETTE,
        tooltip: { trigger: "item", formatter: "{b}<br>" + s.series + ": {c}" },
        series: [{
          type: "funnel",
          name: s.series,
          sort: "none",
          left: narrow() ? "4%" : "10%",
          right: narrow() ? "4%" : "10%",
          top: 8,
          bottom: 8,
          minSize: "40%",
          gap: 2,
          label: { show: true, position: "inside", formatter: "{b}\n{c}", color: "#fff", fontWeight: 600 },
          labelLine: { show: false },
          data: s.names.map(function (name, i) { return { name: name, value: s.values[i] }; }),
        }],
      };
    },

    conversion: function (s) {
      var bars = s.rates.map(function (rate, i) {
        return {
          value: rate === null ? "-" : rate,
          itemStyle: { color: COLORS.primary, opacity: s.stable[i] ? 1 : 0.45 },
          label: { color: s.stable[i] ? "#fff" : COLORS.dark },
        };
      });
      var intervals = [];
      s.low.forEach(function (low, i) {
        if (low !== null) {
          intervals.push([i, low, s.high[i]]);
        }
      });
      return {
        tooltip: {
          trigger: "axis",
          axisPointer: { type: "shadow" },
          formatter: function (items) {
            var i = items[0].dataIndex;
            var lines = [s.names[i], s.series + ": <b>" + pct(s.rates[i], 1) + "</b> (n = " + s.n[i] + ")"];
            if (s.low[i] !== null) {
              lines.push(s.interval + ": " + pct(s.low[i], 1) + "–" + pct(s.high[i], 1));
            }
            if (!s.stable[i]) {
              lines.push(s.unstable);
            }
            return lines.join("<br>");
          },
        },
        grid: { left: 8, right: 12, top: 16, bottom: 8, containLabel: true },
        xAxis: categoryAxis(s.names),
        yAxis: rateAxis(),
        series: [
          {
            type: "bar",
            name: s.series,
            data: bars,
            barMaxWidth: 56,
            label: {
              show: true, position: "insideBottom", color: "#fff", fontWeight: 600,
              formatter: function (p) { return pct(p.value); },
            },
          },
          {
            type: "custom",
            name: s.interval,
            renderItem: errorBar,
            encode: { x: 0, y: [1, 2] },
            data: intervals,
            z: 10,
            tooltip: { show: false },
          },
        ],
      };
    },

    reps: function (s) {
      var series = [{
        type: "bar",
        name: s.team.name,
        data: s.team.rates.map(function (v) { return v === null ? "-" : v; }),
        itemStyle: { color: COLORS.secondary },
        barMaxWidth: 28,
      }];
      s.reps.forEach(function (rep, r) {
        series.push({
          type: "bar",
          name: rep.name,
          barMaxWidth: 28,
          itemStyle: { color: PALETTE[r % PALETTE.length] },
          data: rep.rates.map(function (v, i) {
            var point = { value: v === null ? "-" : v };
            if (rep.weak[i]) {
              point.itemStyle = { borderColor: COLORS.danger, borderWidth: 2, borderType: "solid" };
              point.label = { show: true, position: "top", formatter: "!", color: COLORS.danger, fontWeight: 700 };
            }
            return point;
          }),
        });
      });
      return {
        tooltip: {
          trigger: "axis",
          axisPointer: { type: "shadow" },
          formatter: function (items) {
            var i = items[0].dataIndex;
            var lines = [s.names[i]];
            items.forEach(function (item) {
              var rep = s.reps[item.seriesIndex - 1];
              var weak = rep && rep.weak[i] ? " — " + s.weak : "";
              lines.push(item.marker + item.seriesName + ": " + pct(item.value === "-" ? null : item.value) + weak);
            });
            return lines.join("<br>");
          },
        },
        legend: { type: "scroll", bottom: 0 },
        grid: { left: 8, right: 12, top: 16, bottom: 36, containLabel: true },
        xAxis: categoryAxis(s.names),
        yAxis: rateAxis(),
        series: series,
      };
    },

    gauge: function (s) {
      var value = s.value === null ? 0 : Math.min(s.value * 100, 150);
      return {
        series: [{
          type: "gauge",
          min: 0,
          max: 150,
          splitNumber: 6,
          radius: "92%",
          center: ["50%", "58%"],
          startAngle: 200,
          endAngle: -20,
          axisLine: {
            lineStyle: {
              width: 14,
              color: [[80 / 150, COLORS.danger], [100 / 150, COLORS.warning], [1, COLORS.success]],
            },
          },
          pointer: { width: 5, length: "60%" },
          axisTick: { show: false },
          splitLine: { length: 8, distance: 2, lineStyle: { width: 2, color: "#999" } },
          axisLabel: { distance: 20, fontSize: 11, formatter: function (v) { return v + "%"; } },
          title: { offsetCenter: [0, "62%"], fontSize: 13 },
          detail: {
            offsetCenter: [0, "35%"],
            fontSize: 24,
            fontWeight: 700,
            formatter: function () { return pct(s.value); },
          },
          data: [{ value: value, name: s.name }],
        }],
      };
    },

    band: function (s) {
      var L = s.labels;
      var rows = [L.completed, L.band, L.forecast];
      var base = [0, s.p10, 0];
      var lengths = [s.completed, s.p90 - s.p10, s.forecast];
      var styles = [
        { color: COLORS.success },
        { color: COLORS.light, borderColor: COLORS.primary, borderWidth: 1 },
        { color: COLORS.primary },
      ];
      var texts = [
        compact(s.completed, s.symbol),
        compact(s.p10, s.symbol) + " – " + compact(s.p90, s.symbol),
        compact(s.forecast, s.symbol),
      ];
      var lines = [{ xAxis: s.forecast, lineStyle: { color: COLORS.primary, type: "dashed" }, label: { show: false } }];
      if (s.target !== null) {
        lines.push({
          xAxis: s.target,
          lineStyle: { color: COLORS.danger, type: "solid", width: 2 },
          label: { show: true, position: "start", align: "right", color: COLORS.danger, formatter: L.target + " " + compact(s.target, s.symbol) },
        });
      }
      return {
        tooltip: {
          trigger: "item",
          formatter: function (p) {
            if (p.seriesName === "p50") {
              return L.p50 + ": " + full(s.p50, s.symbol);
            }
            if (p.dataIndex === 1) {
              return L.band + ": " + full(s.p10, s.symbol) + " – " + full(s.p90, s.symbol) +
                "<br>" + L.p50 + ": " + full(s.p50, s.symbol);
            }
            return rows[p.dataIndex] + ": " + full(lengths[p.dataIndex], s.symbol);
          },
        },
        grid: { left: 8, right: narrow() ? 16 : 40, top: s.target !== null ? 28 : 12, bottom: 8, containLabel: true },
        xAxis: { type: "value", min: 0, axisLabel: { formatter: function (v) { return compact(v, s.symbol); } } },
        yAxis: { type: "category", data: rows, inverse: true, axisTick: { show: false } },
        series: [
          { type: "bar", stack: "band", data: base, itemStyle: { color: "transparent" }, silent: true, barWidth: "55%" },
          {
            type: "bar",
            stack: "band",
            name: "value",
            barWidth: "55%",
            data: lengths.map(function (v, i) { return { value: v, itemStyle: styles[i] }; }),
            label: {
              show: true,
              position: "right",
              color: COLORS.dark,
              fontSize: 11,
              formatter: function (p) { return texts[p.dataIndex]; },
            },
            markLine: { symbol: "none", silent: true, data: lines },
          },
          {
            // invisible: makes the axis reach the target, so its line is drawn
            type: "scatter",
            name: "extent",
            data: s.target !== null ? [[s.target, L.forecast]] : [],
            symbolSize: 0,
            silent: true,
            tooltip: { show: false },
          },
          {
            type: "scatter",
            name: "p50",
            data: [[s.p50, L.band]],
            symbol: "rect",
            symbolSize: [3, 26],
            itemStyle: { color: COLORS.dark },
            z: 5,
          },
        ],
      };
    },

    sources: function (s) {
      var series = s.series.map(function (one, k) {
        return {
          type: "bar",
          name: one.name,
          barMaxWidth: 32,
          itemStyle: { color: PALETTE[k % PALETTE.length] },
          data: one.rates.map(function (rate, i) {
            return {
              value: rate === null ? "-" : rate,
              itemStyle: { opacity: one.stable[i] ? 1 : 0.45 },
            };
          }),
        };
      });
      return {
        tooltip: {
          trigger: "axis",
          axisPointer: { type: "shadow" },
          formatter: function (items) {
            var i = items[0].dataIndex;
            var lines = [s.names[i] + " — " + s.counts.name + ": " + s.counts.values[i]];
            s.series.forEach(function (one, k) {
              var mark = one.n[i] && !one.stable[i] ? " — " + s.unstable : "";
              lines.push(items[k] ? items[k].marker + one.name + ": <b>" + pct(one.rates[i], 1) +
                "</b> (n = " + one.n[i] + ")" + mark : "");
            });
            return lines.join("<br>");
          },
        },
        legend: { bottom: 0 },
        grid: { left: 8, right: 12, top: 16, bottom: 36, containLabel: true },
        xAxis: categoryAxis(s.names),
        yAxis: rateAxis(),
        series: series,
      };
    },

    breakdown: function (s) {
      var colors = [COLORS.primary, COLORS.secondary, "#adb5bd"];
      var g = s.growth;
      return {
        tooltip: {
          trigger: "axis",
          axisPointer: { type: "shadow" },
          formatter: function (items) {
            var i = items[0].dataIndex;
            var lines = [s.names[i]];
            items.forEach(function (item) {
              lines.push(item.marker + item.seriesName + ": " + full(item.value, s.symbol));
            });
            lines.push(g.labels.previous + ": " + pct(g.previous[i], 1));
            lines.push(g.labels.year + ": " + pct(g.year[i], 1));
            return lines.join("<br>");
          },
        },
        legend: { bottom: 0 },
        grid: { left: 8, right: 12, top: 16, bottom: 36, containLabel: true },
        xAxis: categoryAxis(s.names),
        yAxis: { type: "value", axisLabel: { formatter: function (v) { return compact(v, s.symbol); } } },
        series: s.series.map(function (one, k) {
          return {
            type: "bar", name: one.name, data: one.values, barMaxWidth: 36,
            itemStyle: { color: colors[k % colors.length] },
          };
        }),
      };
    },

    reverse: function (s) {
      var L = s.labels;
      function values(list) {
        return list.map(function (v) { return v === null ? "-" : v; });
      }
      return {
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
        legend: { bottom: 0 },
        grid: { left: 8, right: 12, top: 24, bottom: 32, containLabel: true },
        xAxis: categoryAxis(s.names),
        yAxis: { type: "value", minInterval: 1 },
        series: [
          {
            type: "bar", name: L.needed, data: values(s.needed), barMaxWidth: 40,
            itemStyle: { color: COLORS.warning }, label: { show: true, position: "top" },
          },
          {
            type: "bar", name: L.open, data: values(s.open), barMaxWidth: 40,
            itemStyle: { color: COLORS.primary }, label: { show: true, position: "top" },
          },
        ],
      };
    },
  };

  var drawn = [];
  specs.forEach(function (spec) {
    var box = document.getElementById(spec.id);
    if (!box || !RENDER[spec.type]) {
      return;
    }
    var chart = echarts.init(box, null, { renderer: "canvas" });
    chart.setOption(build(spec));
    drawn.push({ chart: chart, spec: spec });
  });

  var timer = null;
  var wasNarrow = narrow();
  window.addEventListener("resize", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var isNarrow = narrow();
      drawn.forEach(function (item) {
        if (isNarrow !== wasNarrow) {  // the layout depends on the width class
          item.chart.setOption(build(item.spec), true);
        }
        item.chart.resize();
      });
      wasNarrow = isNarrow;
    }, 100);
  });

  if (window.bootstrap && window.bootstrap.Tooltip) {
    document.querySelectorAll("[data-bs-toggle=tooltip]").forEach(function (el) {
      new window.bootstrap.Tooltip(el);
    });
  }
})();
