/* dirgate.js: open dirgate's hosted pages from your product. No dependencies, ES2017.
 *
 *   <script src="https://dirgate.example.com/ui/dirgate.js"></script>
 *
 *   // url from POST /picker-sessions (created by your server, return_origin = your origin)
 *   button.addEventListener('click', async () => {
 *     const workspaces = await Dirgate.pickWorkspaces(url); // [{id, name, organization_id}]
 *   });
 *
 *   // link_url from POST /link-tokens
 *   const result = await Dirgate.link(linkUrl); // {link_result, name}
 *   // send result.link_result to your server; it calls POST /link-results to learn the account
 *
 * Call them from a click handler: browsers open popups only on a user gesture. Each opens a popup
 * and returns a Promise. It resolves with the page's result and rejects with an Error whose
 * `code` is "canceled" (the person pressed Cancel), "closed" (the popup was closed first),
 * "popup_blocked", "invalid_url" or, for link, the page's `error` (with `description`).
 * Only messages from the popup itself, on the URL's origin, are accepted.
 */
(function (global) {
  'use strict';

  function fail(code, message, description) {
    var e = new Error(message);
    e.code = code;
    if (description !== undefined) e.description = description;
    return e;
  }

  // open shows url in a popup and settles with what onData decides for each message from it.
  function open(url, name, onData) {
    return new Promise(function (resolve, reject) {
      var origin;
      try {
        origin = new URL(url, global.location.href).origin;
      } catch (e) {
        reject(fail('invalid_url', 'dirgate: not a URL: ' + url));
        return;
      }
      var w = 520, h = 680;
      var left = Math.max(0, (global.screenX || 0) + ((global.outerWidth || w) - w) / 2);
      var top = Math.max(0, (global.screenY || 0) + ((global.outerHeight || h) - h) / 2);
      var popup = global.open(url, name, 'popup=yes,width=' + w + ',height=' + h + ',left=' + left + ',top=' + top);
      if (!popup) {
        reject(fail('popup_blocked', 'dirgate: the browser blocked the popup; call this from a click handler'));
        return;
      }
      var settled = false, timer = 0, closedAt = 0;
      function settle(fn, v) {
        if (settled) return;
        settled = true;
        global.removeEventListener('message', onMessage);
        clearInterval(timer);
        fn(v);
      }
      function onMessage(ev) {
        if (ev.source !== popup || ev.origin !== origin) return;
        var d = ev.data;
        if (!d || typeof d !== 'object' || typeof d.type !== 'string') return;
        onData(d, function (v) { settle(resolve, v); }, function (e) { settle(reject, e); });
      }
      global.addEventListener('message', onMessage);
      // A closed popup rejects, a moment after it closed: the page posts its result and then
      // closes, and that message may still be on its way.
      timer = setInterval(function () {
        if (!popup.closed) return;
        if (!closedAt) { closedAt = Date.now(); return; }
        if (Date.now() - closedAt >= 400) settle(reject, fail('closed', 'dirgate: the window was closed'));
      }, 200);
    });
  }

  // pickWorkspaces opens a workspace picker (the url of POST /picker-sessions) and resolves with
  // the chosen workspaces: [{id, name, organization_id}].
  function pickWorkspaces(pickerUrl) {
    return open(pickerUrl, 'dirgate-picker', function (d, resolve, reject) {
      if (d.type === 'dirgate:workspaces-selected' && Array.isArray(d.workspaces)) {
        resolve(d.workspaces.map(function (w) {
          return { id: String(w.id), name: String(w.name), organization_id: String(w.organization_id) };
        }));
      } else if (d.type === 'dirgate:picker-canceled') {
        reject(fail('canceled', 'dirgate: the picker was canceled'));
      }
    });
  }

  // link opens a link page (the link_url of POST /link-tokens) and resolves with the link's
  // outcome: {link_result, name}. link_result is a single-use code for your server to exchange
  // (POST /link-results) for the account: the browser never names an account itself.
  function link(linkUrl) {
    return open(linkUrl, 'dirgate-link', function (d, resolve, reject) {
      if (d.type === 'dirgate:linked' && typeof d.link_result === 'string') {
        resolve({ link_result: d.link_result, name: d.name });
      } else if (d.type === 'dirgate:link-failed') {
        reject(fail(String(d.error || 'link_failed'), 'dirgate: linking failed: ' + (d.error_description || d.error || ''),
          d.error_description));
      }
    });
  }

  global.Dirgate = Object.freeze({ pickWorkspaces: pickWorkspaces, link: link });
}(window));
