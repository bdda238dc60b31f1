/* Visits: the check-in button of the visit page and the weekly chart of the visits page.
 *
 * Check-in: the position is asked for only when the rep taps "Check in" (the page says so
 * first), once, with getCurrentPosition — never watched. It is posted with htmx to the
 * check-in form; the server answers the visit's body with the distance and the record
 * form. Refusal, timeout, no fix, no geolocation and plain http each get a message
 * (translated, from the button's data-msg-* attributes) and the option to record the
 * visit without location. Event delegation: the body is swapped by htmx.
 */
(function () {
  "use strict";

  function say(box, text, kind) {
    box.textContent = "";
    var line = document.createElement("div");
    line.className = kind === "error" ? "text-danger" : "text-secondary";
    line.textContent = text;
    box.appendChild(line);
  }

  function offerRecord() {
    var panel = document.getElementById("record-panel");
    if (panel && window.bootstrap) {
      window.bootstrap.Collapse.getOrCreateInstance(panel, { toggle: false }).show();
    } else if (panel) {
      panel.classList.add("show");
    }
  }

  function checkIn(button) {
    var card = button.closest("[data-testid=checkin-card]") || document;
    var box = card.querySelector("[data-checkin-status]");
    var form = card.querySelector("[data-checkin-form]");
    var msg = button.dataset;
    if (!window.isSecureContext) {
      say(box, msg.msgInsecure, "error");
      offerRecord();
      return;
    }
    if (!("geolocation" in navigator)) {
      say(box, msg.msgUnsupported, "error");
      offerRecord();
      return;
    }
    button.disabled = true;
    say(box, msg.msgLocating);
    navigator.geolocation.getCurrentPosition(
      function (position) {
        form.elements.latitude.value = position.coords.latitude;
        form.elements.longitude.value = position.coords.longitude;
        form.elements.accuracy.value = position.coords.accuracy;
        say(box, msg.msgSending);
        if (window.htmx) {
          window.htmx.trigger(form, "submit");
        } else {
          form.submit();
        }
      },
      function (error) {
        button.disabled = false;
        var text = msg.msgUnavailable;
        if (error.code === 1) {
          text = msg.msgDenied;
        } else if (error.code === 3) {
          text = msg.msgTimeout;
        }
        say(box, text, "error");
        offerRecord();
      },
      { enableHighAccuracy: true, timeout: 20000, maximumAge: 0 }
    );
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-checkin]");
    if (button) {
      event.preventDefault();
      checkIn(button);
    }
  });

  /* The chart: done, cancelled and not-yet-done visits per week (stacked bars), and the
   * share of done visits checked in (line, right axis). */
  var source = document.getElementById("visit-chart-data");
  if (!source || !window.echarts) {
    return;
  }
  var spec = JSON.parse(source.textContent);
  var box = document.getElementById(spec.id);
  if (!box) {
    return;
  }
  var lang = document.documentElement.lang || "en";
  function pct(v) {
    return v === null || v === undefined ? "—" : Math.round(v * 100) + "%";
  }
  function option() {
    var narrow = window.innerWidth < 576;
    var series = spec.series.map(function (s) {
      return { name: s.name, type: "bar", stack: "visits", data: s.values, itemStyle: { color: s.color },
        emphasis: { focus: "series" } };
    });
    series.push({ name: spec.share.name, type: "line", yAxisIndex: 1, data: spec.share.values,
      connectNulls: true, itemStyle: { color: "#0d6efd" }, tooltip: { valueFormatter: pct } });
    return {
      animation: !(window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches),
      tooltip: { trigger: "axis" },
      legend: { top: 0, type: narrow ? "scroll" : "plain" },
      grid: { left: 8, right: 8, bottom: 8, top: narrow ? 34 : 30, containLabel: true },
      xAxis: { type: "category", data: spec.weeks, axisLabel: { rotate: narrow ? 45 : 0 } },
      yAxis: [
        { type: "value", minInterval: 1 },
        { type: "value", min: 0, max: 1, axisLabel: { formatter: pct }, splitLine: { show: false } },
      ],
      series: series,
    };
  }
  var chart = window.echarts.init(box, null, { locale: lang.indexOf("zh") === 0 ? "ZH" : "EN" });
  chart.setOption(option());
  window.addEventListener("resize", function () {
    chart.setOption(option(), true);
    chart.resize();
  });
})();
