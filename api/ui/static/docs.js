// Renders the API reference at /docs with the embedded Redoc bundle (/ui/redoc.standalone.js).
// It lives in a file because the page's policy allows no inline script.
(function () {
  "use strict";
  var el = document.getElementById("redoc");

  // Redoc's icons (the search glass, chevrons, copy marks) are inline SVGs that screen readers
  // announce as unnamed images. Each sits beside text that says the same, so hide the ones
  // without a name of their own, also those Redoc renders later (expanding a section, searching).
  function hideDecorative(root) {
    if (!root.querySelectorAll) return;
    var svgs = root.matches && root.matches("svg") ? [root] : root.querySelectorAll("svg");
    Array.prototype.forEach.call(svgs, function (svg) {
      if (svg.hasAttribute("aria-hidden") || svg.hasAttribute("aria-label") ||
          svg.hasAttribute("aria-labelledby") || svg.querySelector("title")) return;
      svg.setAttribute("aria-hidden", "true");
      svg.setAttribute("focusable", "false");
    });
  }
  function hideDecorativeIcons() {
    hideDecorative(el);
    new MutationObserver(function (records) {
      records.forEach(function (r) { Array.prototype.forEach.call(r.addedNodes, hideDecorative); });
    }).observe(el, { childList: true, subtree: true });
  }
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
    hideDecorativeIcons();
    if (err) {
      el.textContent = "The API reference could not be shown: " + err;
    }
  });
})();
