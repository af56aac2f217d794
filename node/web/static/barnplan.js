// Small progressive enhancements; every page works without JavaScript.
(function () {
  "use strict";
  // Ask once more before a form marked data-confirm is sent (e.g. revoking consent).
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  });
  // Print buttons are hidden until there is script to run them.
  document.querySelectorAll(".js-print").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
  // After a failed submit, move focus to the error summary so it is read out first.
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
})();
