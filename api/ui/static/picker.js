/* dirgate workspace picker (picker.html). Reads the session's organizations and workspaces from
 * the page's own origin, lets the person choose, and posts the choice to the return origin the
 * server rendered into data-return-origin: never to "*", never anywhere else. */
(function () {
  'use strict';
  var root = document.getElementById('picker');
  var returnOrigin = root.getAttribute('data-return-origin');
  var multi = root.getAttribute('data-multi') === 'true';
  var list = document.getElementById('picker-list');
  var search = document.getElementById('picker-search');
  var status = document.getElementById('picker-status');
  var confirmBtn = document.getElementById('picker-confirm');
  var cancelBtn = document.getElementById('picker-cancel');
  var count = document.getElementById('picker-count');
  var items = []; // {ws, input, label, org}
  var groups = []; // {fieldset, items}

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function selected() {
    return items.filter(function (it) { return it.input.checked; });
  }

  function update() {
    var n = 0;
    items.forEach(function (it) {
      it.label.classList.toggle('selected', it.input.checked);
      if (it.input.checked) n++;
    });
    confirmBtn.disabled = n === 0;
    count.textContent = n === 0 ? '' : n === 1 ? '1 workspace selected' : n + ' workspaces selected';
  }

  function visible() {
    return items.filter(function (it) { return !it.label.hidden && !it.group.fieldset.hidden; });
  }

  function choose(it, on) {
    if (!multi) {
      items.forEach(function (o) { o.input.checked = false; });
      it.input.checked = true;
    } else {
      it.input.checked = on;
    }
    update();
  }

  function render(data) {
    var orgs = data.organizations || [];
    orgs.forEach(function (org) {
      if (!org.workspaces || org.workspaces.length === 0) return;
      var fs = el('fieldset', 'picker-org');
      var legend = el('legend', '', org.name);
      fs.appendChild(legend);
      var group = { fieldset: fs, name: org.name.toLowerCase(), items: [] };
      org.workspaces.forEach(function (ws) {
        var label = el('label', 'picker-item');
        var input = el('input');
        input.type = multi ? 'checkbox' : 'radio';
        input.name = 'workspace';
        input.value = ws.id;
        var name = el('span', 'picker-name', ws.name);
        var desc = [ws.name, 'in ' + org.name];
        label.appendChild(input);
        label.appendChild(name);
        if (ws.role_name) {
          var badge = el('span', 'picker-badge' + (/admin/.test(ws.role || '') ? ' admin' : ''), ws.role_name);
          badge.title = 'Your role';
          label.appendChild(badge);
          desc.push('your role: ' + ws.role_name);
        }
        if (typeof ws.member_count === 'number') {
          var m = ws.member_count === 1 ? '1 member' : ws.member_count + ' members';
          label.appendChild(el('span', 'picker-members', m));
          desc.push(m);
        }
        input.setAttribute('aria-label', desc.join(', '));
        var it = { ws: ws, input: input, label: label, group: group, text: ws.name.toLowerCase() };
        input.addEventListener('change', function () { choose(it, input.checked); });
        input.addEventListener('keydown', function (ev) { onKey(ev, it); });
        items.push(it);
        group.items.push(it);
        fs.appendChild(label);
      });
      groups.push(group);
      list.appendChild(fs);
    });
    filter();
    update();
  }

  function filter() {
    var q = search.value.trim().toLowerCase();
    var shown = 0;
    groups.forEach(function (g) {
      var orgMatch = q !== '' && g.name.indexOf(q) >= 0;
      var any = false;
      g.items.forEach(function (it) {
        var show = q === '' || orgMatch || it.text.indexOf(q) >= 0;
        it.label.hidden = !show;
        if (show) { any = true; shown++; }
      });
      g.fieldset.hidden = !any;
    });
    if (items.length === 0) status.textContent = 'No workspaces to choose from.';
    else if (shown === 0) status.textContent = 'No workspace matches “' + search.value.trim() + '”.';
    else status.textContent = shown === 1 ? '1 workspace' : shown + ' workspaces';
  }

  // Arrow keys move between the visible options, Home/End to the ends; Space (native) and Enter
  // select. Native radio groups would select on arrow keys; moving without selecting is the same
  // in both modes.
  function onKey(ev, it) {
    var vis = visible();
    var i = vis.indexOf(it);
    var next = null;
    switch (ev.key) {
      case 'ArrowDown': case 'ArrowRight': next = vis[Math.min(i + 1, vis.length - 1)]; break;
      case 'ArrowUp': case 'ArrowLeft': next = i <= 0 ? null : vis[i - 1]; if (i === 0) { ev.preventDefault(); search.focus(); return; } break;
      case 'Home': next = vis[0]; break;
      case 'End': next = vis[vis.length - 1]; break;
      case 'Enter':
        ev.preventDefault();
        choose(it, multi ? !it.input.checked : true);
        return;
      case ' ':
        if (!multi) { ev.preventDefault(); choose(it, true); }
        return;
      default: return;
    }
    ev.preventDefault();
    if (next) next.input.focus();
  }

  search.addEventListener('input', filter);
  search.addEventListener('keydown', function (ev) {
    if (ev.key === 'ArrowDown') {
      var vis = visible();
      if (vis.length) { ev.preventDefault(); vis[0].input.focus(); }
    } else if (ev.key === 'Enter') {
      ev.preventDefault(); // a search box submits nothing
    }
  });

  function post(msg) {
    if (window.opener && !window.opener.closed) {
      window.opener.postMessage(msg, returnOrigin);
      return true;
    }
    return false;
  }

  function finish(title, detail, chosen) {
    root.hidden = true;
    var done = document.getElementById('picker-done');
    document.getElementById('picker-done-title').textContent = title;
    document.getElementById('picker-done-detail').textContent = detail;
    var ul = document.getElementById('picker-done-list');
    (chosen || []).forEach(function (w) { ul.appendChild(el('li', '', w.name)); });
    done.hidden = false;
  }

  confirmBtn.addEventListener('click', function () {
    var chosen = selected().map(function (it) {
      return { id: it.ws.id, name: it.ws.name, organization_id: it.ws.organization_id };
    });
    if (chosen.length === 0) return;
    if (post({ type: 'dirgate:workspaces-selected', workspaces: chosen })) {
      window.close();
    }
    // Still open: no opener, or the browser kept the window. Say what was chosen.
    finish('Done', chosen.length === 1 ? 'You selected this workspace:' : 'You selected these workspaces:', chosen);
  });

  cancelBtn.addEventListener('click', function () {
    if (post({ type: 'dirgate:picker-canceled' })) {
      window.close();
    }
    finish('Canceled', 'No workspace was selected. You can close this window.', []);
  });

  fetch(root.getAttribute('data-source'), { credentials: 'omit', headers: { Accept: 'application/json' } })
    .then(function (res) {
      if (!res.ok) {
        throw new Error(res.status === 404 ? 'This picker has expired. Close this window and open it again.' :
          'The workspaces could not be loaded (error ' + res.status + '). Try again later.');
      }
      return res.json();
    })
    .then(render)
    .catch(function (err) {
      status.textContent = err.message;
      status.classList.add('err');
      status.setAttribute('role', 'alert');
    });
}());
