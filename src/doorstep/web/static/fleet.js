/* The fleet pages (console/fleet*.html): small enhancements; everything works without them.
   - A form with data-confirm asks before it is sent (deleting a driver, vehicle, ...).
   - When the server drew a form again with errors, the first field in error gets the focus. */
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) {
      return;
    }
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  var invalid = document.querySelector('.fleet-form [aria-invalid="true"]');
  if (invalid && typeof invalid.focus === "function") {
    invalid.focus({ preventScroll: false });
  }
})();
