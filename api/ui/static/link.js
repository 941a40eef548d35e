// link.js: the end of a hosted link. When this window was opened as a popup by the product
// that asked for the link (and that product gave a return_origin), tell it the outcome with
// postMessage addressed to that origin only, then offer to close the window.
(function () {
  "use strict";
  var el = document.getElementById("link-result");
  if (!el) { return; }
  var d = el.dataset;
  var origin = d.returnOrigin || "";
  if (!origin || !window.opener || window.opener === window) { return; }
  var msg;
  if (d.type === "dirgate:linked") {
    msg = { type: "dirgate:linked", link_result: d.linkResult, name: d.name || "" };
  } else if (d.type === "dirgate:link-failed") {
    msg = { type: "dirgate:link-failed", error: d.error, error_description: d.errorDescription || "" };
  } else {
    return;
  }
  try {
    window.opener.postMessage(msg, origin); // never a wildcard: only the product's origin may read it
  } catch (e) {
    return; // the opener navigated away or the origin is malformed: nothing to tell
  }
  var row = document.getElementById("close-row");
  var button = document.getElementById("close");
  if (row && button) {
    row.hidden = false;
    button.addEventListener("click", function () { window.close(); });
    button.focus();
  }
})();
