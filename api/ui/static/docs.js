// Renders the API reference at /docs with the embedded Redoc bundle (/ui/redoc.standalone.js).
// It lives in a file because the page's policy allows no inline script.
(function () {
  "use strict";
  var el = document.getElementById("redoc");
  var system = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  var mono = 'ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace';
  Redoc.init(el.dataset.specUrl, {
    // Redoc puts this nonce on the <style> elements styled-components injects (see api/docs.go).
    nonce: el.dataset.nonce,
    // Fonts the device already has: the page may load none from another origin.
    theme: {
      typography: {
        fontFamily: system,
        headings: { fontFamily: system },
        code: { fontFamily: mono }
      }
    },
    expandResponses: "200,201",
    // Markdown in descriptions goes through DOMPurify: no markup the contract did not mean.
    sanitize: true
  }, el, function (err) {
    el.removeAttribute("aria-busy");
    if (err) {
      el.textContent = "The API reference could not be shown: " + err;
    }
  });
})();
