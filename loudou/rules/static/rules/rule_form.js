// The rule form shows only the fields that make sense for the chosen kind of record and
// requirement (elements carry data-applies / data-requirements, space-separated).
(function () {
  "use strict";
  var form = document.getElementById("rule-form");
  if (!form) { return; }
  var applies = form.querySelector("[name=applies_to]");
  var requirement = form.querySelector("[name=requirement]");

  function matches(el, attr, value) {
    var wanted = el.getAttribute(attr);
    return wanted === null || wanted.split(/\s+/).indexOf(value) !== -1;
  }

  function update() {
    var a = applies.value;
    var r = requirement.value;
    form.querySelectorAll("[data-applies], [data-requirements]").forEach(function (el) {
      el.hidden = !(matches(el, "data-applies", a) && matches(el, "data-requirements", r));
    });
  }

  applies.addEventListener("change", update);
  requirement.addEventListener("change", update);
  update();
})();
