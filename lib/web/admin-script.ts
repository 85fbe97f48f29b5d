// The web admin's script, served as /admin/assets/admin.js. Plain browser JavaScript: it fills
// the pages from the admin API and sends every state-changing request with the session's CSRF
// token. Data is only ever set as textContent, never as HTML.
import { pageHelpersScript } from './page-helpers-script.js';

export const ADMIN_SCRIPT = String.raw`'use strict';
(function () {
${pageHelpersScript('/admin')}  function duration(s) {
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + m + 'm ' + (s % 60) + 's';
  }

  // ---------------------------------------------------------------- login
  if (page === 'login') {
    $('login').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var body = { username: $('username').value, password: $('password').value };
      if (!$('code-label').hidden && $('code').value.trim() !== '') body.code = $('code').value;
      api('POST', 'login', body).then(function () { location.href = '/admin/'; }, function (err) {
        // The account has two-factor on: ask for the code too.
        if (err.code === 'code_required') { $('code-label').hidden = false; $('code').focus(); }
        failed(err);
      });
    });
    return;
  }

  api('GET', 'session').then(function (s) {
    csrf = s.csrf;
    $('who').textContent = s.admin;
    start();
  }, function () {});

  $('logout').addEventListener('click', function () {
    api('POST', 'logout').then(function () { location.href = '/admin/login'; }, failed);
  });

  function start() {
    if (page === 'status') status();
    if (page === 'users') users();
    if (page === 'sessions') sessions();
    if (page === 'rooms') rooms();
  }

  // ---------------------------------------------------------------- status (live)
  function status() {
    var last, history = [];
    function tick() {
      api('GET', 'stats').then(function (s) {
        var total = s.stanzas.in + s.stanzas.out, now = Date.now();
        var rate = last ? (total - last.total) / ((now - last.at) / 1000) : 0;
        last = { total: total, at: now };
        history.push(rate);
        if (history.length > 30) history.shift();
        $('stat-uptime').textContent = duration(s.uptimeSeconds);
        $('stat-sessions').textContent = s.sessions;
        $('stat-accounts').textContent = s.accounts;
        $('stat-rate').textContent = rate.toFixed(1);
        $('stat-memory').textContent = (s.memory.rssBytes / 1048576).toFixed(1) + ' MiB';
        $('stat-lag').textContent = s.eventLoopLagSeconds === undefined || s.eventLoopLagSeconds === null ? 'n/a' : (s.eventLoopLagSeconds * 1000).toFixed(1) + ' ms';
        $('stat-version').textContent = s.version;
        $('stat-hosts').textContent = s.hosts.join(', ');
        var tb = $('connections');
        tb.replaceChildren();
        Object.keys(s.connections).sort().forEach(function (k) { tb.appendChild(row([k, s.connections[k]])); });
        var max = Math.max.apply(null, history.concat([1]));
        var h = $('history');
        h.replaceChildren();
        history.forEach(function (r) {
          var bar = el('span', null, 'bar');
          bar.title = r.toFixed(1) + '/s';
          bar.dataset.level = String(Math.round(r / max * 10));
          h.appendChild(bar);
        });
      }, failed);
    }
    tick();
    setInterval(tick, 2000);
    $('reload').addEventListener('click', function () {
      api('POST', 'reload').then(function (r) {
        $('reload-result').textContent = 'reloaded' + (r.restartNeeded.length ? '; restart needed for: ' + r.restartNeeded.join(', ') : '');
      }, failed);
    });
  }

  // ---------------------------------------------------------------- users
  function users() {
    var after = '';
    function load(reset) {
      if (reset) { after = ''; $('users').replaceChildren(); }
      api('GET', 'users?limit=50' + (after ? '&after=' + encodeURIComponent(after) : '')).then(function (p) {
        p.users.forEach(function (u) {
          var actions = el('span', null, 'actions');
          actions.appendChild(button(u.disabled ? 'Enable' : 'Disable', function () {
            act('POST', 'users/' + encodeURIComponent(u.jid) + (u.disabled ? '/enable' : '/disable'), undefined, (u.disabled ? 'enabled ' : 'disabled ') + u.jid);
          }));
          actions.appendChild(button('Reset password', function () {
            var pw = window.prompt('New password for ' + u.jid);
            if (pw) act('POST', 'users/' + encodeURIComponent(u.jid) + '/password', { password: pw }, 'changed the password of ' + u.jid);
          }));
          if (u.twoFactor) {
            actions.appendChild(button('Reset 2FA', function () {
              if (window.confirm('Turn off two-factor authentication of ' + u.jid + '? Its password alone will open it again.')) {
                act('DELETE', 'users/' + encodeURIComponent(u.jid) + '/second-factor', undefined, 'reset the second factor of ' + u.jid);
              }
            }));
          }
          actions.appendChild(button('Delete', function () {
            if (window.confirm('Delete ' + u.jid + ' and all its data?')) act('DELETE', 'users/' + encodeURIComponent(u.jid), undefined, 'deleted ' + u.jid);
          }, 'danger'));
          var tr = row([u.jid, u.createdAt.slice(0, 10), u.disabled ? 'disabled' : 'active', u.twoFactor ? 'on' : 'off', u.sessions, actions]);
          tr.dataset.twoFactor = u.twoFactor ? 'on' : 'off';
          tr.dataset.jid = u.jid;
          $('users').appendChild(tr);
        });
        after = p.next || '';
        $('more').hidden = !p.next;
      }, failed);
    }
    function act(method, path, body, done) {
      api(method, path, body).then(function () { say(done); load(true); }, failed);
    }
    $('more').addEventListener('click', function () { load(false); });
    $('create-user').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var jid = $('new-jid').value.trim();
      api('POST', 'users', { jid: jid, password: $('new-password').value }).then(function (r) {
        say('created ' + r.jid);
        $('create-user').reset();
        load(true);
      }, failed);
    });
    load(true);
  }

  // ---------------------------------------------------------------- sessions
  function sessions() {
    function load() {
      api('GET', 'sessions').then(function (p) {
        var tb = $('sessions');
        tb.replaceChildren();
        if (p.sessions.length === 0) tb.appendChild(row(['nobody is online']));
        p.sessions.forEach(function (s) {
          var tr = row([s.jid, s.remoteAddress, s.secure ? 'yes' : 'no', s.hibernating ? 'hibernating' : s.available ? 'available' : 'unavailable',
            button('Kick', function () {
              api('DELETE', 'sessions/' + encodeURIComponent(s.jid)).then(function () { say('ended the session ' + s.jid); load(); }, failed);
            }, 'danger')]);
          tr.dataset.jid = s.jid;
          tb.appendChild(tr);
        });
      }, failed);
    }
    load();
  }

  // ---------------------------------------------------------------- rooms
  function rooms() {
    function load() {
      api('GET', 'rooms').then(function (p) {
        var tb = $('rooms');
        tb.replaceChildren();
        if (p.rooms.length === 0) tb.appendChild(row(['no rooms']));
        p.rooms.forEach(function (r) {
          var tr = row([r.jid, r.title || '', r.persistent ? 'yes' : 'no', r.occupants,
            button('Destroy', function () {
              if (window.confirm('Destroy ' + r.jid + '? Its occupants are told and its history goes.')) {
                api('DELETE', 'rooms/' + encodeURIComponent(r.jid)).then(function () { say('destroyed ' + r.jid); load(); }, failed);
              }
            }, 'danger')]);
          tr.dataset.jid = r.jid;
          tb.appendChild(tr);
        });
      }, failed);
    }
    load();
  }
})();
`;
