// Escalation policy steps: add, remove and reorder in the browser, no page reload.
// The server's formset stays the source of truth: "Add step" clones the formset's empty_form
// (<template id="step-template">, "__prefix__" becoming the next form index, TOTAL_FORMS counting it);
// "Remove" ticks the step's DELETE box and hides it; moving renumbers every step's ORDER field.
// Without this script the same fields are visible and work by hand.
(function () {
  "use strict";
  var box = document.getElementById("policy-steps");
  if (!box) return;
  var prefix = box.dataset.prefix;
  var list = box.querySelector("[data-step-list]");
  var template = document.getElementById("step-template");
  var total = box.querySelector('input[name="' + prefix + '-TOTAL_FORMS"]');
  var status = document.getElementById("steps-status");

  function say(text) { status.textContent = ""; window.setTimeout(function () { status.textContent = text; }, 50); }
  function field(step, name) { return step.querySelector("[data-step-" + name + "]"); }
  function live() {
    return Array.prototype.filter.call(list.querySelectorAll("[data-step]"), function (s) { return !s.hidden; });
  }

  function renumber() {
    var steps = live();
    steps.forEach(function (step, i) {
      step.querySelector("[data-step-number]").textContent = String(i + 1);
      field(step, "order").value = String(i + 1);
      var up = step.querySelector('[data-step-move="-1"]'), down = step.querySelector('[data-step-move="1"]');
      up.disabled = i === 0;
      down.disabled = i === steps.length - 1;
      step.querySelector("[data-step-remove]").disabled = steps.length === 1;
      [up, down, step.querySelector("[data-step-remove]")].forEach(function (b) {
        b.setAttribute("aria-label", b.textContent + " (step " + (i + 1) + ")");
      });
    });
  }

  function enhance(step) {
    field(step, "tools").hidden = false;
    // The hand-operated fields are the script's job now.
    [field(step, "order"), field(step, "delete")].forEach(function (input) {
      var wrap = input.closest(".field");
      if (wrap) wrap.hidden = true;
    });
  }

  function remove(step) {
    field(step, "delete").checked = true;
    step.hidden = true;
  }

  function add() {
    var index = parseInt(total.value, 10);
    var html = template.innerHTML.replace(/__prefix__/g, String(index));
    var holder = document.createElement("div");
    holder.innerHTML = html;
    var step = holder.querySelector("[data-step]");
    step.removeAttribute("data-spare");
    list.appendChild(step);
    total.value = String(index + 1);
    enhance(step);
    renumber();
    var first = step.querySelector("input:not([type=hidden]), select, textarea");
    if (first) first.focus();
    say("Step " + live().length + " added.");
  }

  list.querySelectorAll("[data-step]").forEach(function (step) {
    enhance(step);
    if (step.hasAttribute("data-removed")) step.hidden = true;
  });
  // The untouched spare step the server adds for people without JavaScript: "Add step" replaces it.
  list.querySelectorAll("[data-step][data-spare]").forEach(function (step) {
    if (live().length > 1) remove(step);
  });
  box.querySelector("[data-step-add]").hidden = false;
  box.querySelectorAll("[data-no-js]").forEach(function (el) { el.hidden = true; });
  renumber();

  document.getElementById("add-step").addEventListener("click", add);
  list.addEventListener("click", function (ev) {
    var button = ev.target.closest("button");
    if (!button) return;
    var step = button.closest("[data-step]");
    if (button.hasAttribute("data-step-remove")) {
      var steps = live(), at = steps.indexOf(step);
      remove(step);
      renumber();
      var next = live()[Math.min(at, live().length - 1)];
      (next ? next.querySelector("[data-step-remove]") : document.getElementById("add-step")).focus();
      say("Step " + (at + 1) + " removed.");
    } else if (button.hasAttribute("data-step-move")) {
      var others = live(), pos = others.indexOf(step), to = pos + parseInt(button.dataset.stepMove, 10);
      if (to < 0 || to >= others.length) return;
      if (to < pos) list.insertBefore(step, others[to]);
      else list.insertBefore(step, others[to].nextSibling);
      renumber();
      (button.disabled ? step.querySelector("[data-step-move]:not([disabled])") : button).focus();
      say("Moved to step " + (to + 1) + ".");
    }
  });
})();
