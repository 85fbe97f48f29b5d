// The account pages' script, served as /account/assets/account.js. Plain browser JavaScript: it
// fills the pages from the account API and sends every state-changing request with the
// session's CSRF token. Data is only ever set as textContent (or an img src the server made),
// never as HTML. The body gets data-ready once the handlers are in place. Forms are
// method="post" so that a submit before the script runs never puts a password in a URL.
import { pageHelpersScript } from './page-helpers-script.js';

export const ACCOUNT_SCRIPT = String.raw`'use strict';
(function () {
${pageHelpersScript('/account')}  function when(ms) { return ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : ''; }

  // ---------------------------------------------------------------- login
  if (page === 'login') {
    $('login').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var body = { username: $('username').value, password: $('password').value };
      if (!$('code-label').hidden && $('code').value.trim() !== '') body.code = $('code').value;
      api('POST', 'login', body).then(function () { location.href = '/account/'; }, function (err) {
        if (err.code === 'code_required') {
          $('code-label').hidden = false;
          $('code').focus();
        }
        failed(err);
      });
    });
    document.body.dataset.ready = '1';
    return;
  }

  api('GET', 'session').then(function (s) {
    csrf = s.csrf;
    $('who').textContent = s.account;
    if (page === 'two-factor') twoFactor();
    if (page === 'clients') clients();
    if (page === 'events') events();
    document.body.dataset.ready = '1';
  }, function () {});

  $('logout').addEventListener('click', function () {
    api('POST', 'logout').then(function () { location.href = '/account/login'; }, failed);
  });

  // ---------------------------------------------------------------- two-factor
  function twoFactor() {
    function load() {
      return api('GET', 'totp').then(function (t) {
        $('totp-on').hidden = !t.enabled;
        $('totp-off').hidden = t.enabled;
        $('recovery-left').textContent = t.recoveryCodesLeft;
      }, failed);
    }
    $('totp-start').addEventListener('click', function () {
      api('POST', 'totp/start').then(function (e) {
        $('totp-qr').src = e.qr;
        $('totp-secret').textContent = e.secret;
        $('totp-uri').textContent = e.uri;
        $('enrol').hidden = false;
        $('totp-start').hidden = true;
        $('confirm-code').focus();
      }, failed);
    });
    $('totp-confirm').addEventListener('submit', function (ev) {
      ev.preventDefault();
      api('POST', 'totp/confirm', { code: $('confirm-code').value }).then(function (r) {
        var ol = $('recovery-codes');
        ol.replaceChildren();
        r.recoveryCodes.forEach(function (c) { ol.appendChild(el('li', c)); });
        $('recovery').hidden = false;
        $('enrol').hidden = true;
        $('totp-confirm').reset();
        say('Two-factor authentication is on.');
        load();
      }, failed);
    });
    $('totp-disable').addEventListener('submit', function (ev) {
      ev.preventDefault();
      api('POST', 'totp/disable', { code: $('disable-code').value }).then(function () {
        $('totp-disable').reset();
        $('recovery').hidden = true;
        $('enrol').hidden = true;
        $('totp-start').hidden = false;
        say('Two-factor authentication is off.');
        load();
      }, failed);
    });
    load();
  }

  // ---------------------------------------------------------------- clients and app passwords
  function clients() {
    function load() {
      api('GET', 'clients').then(function (p) {
        var tb = $('clients');
        tb.replaceChildren();
        if (p.clients.length === 0) tb.appendChild(row(['no client has access']));
        p.clients.forEach(function (c) {
          var kind = c.id.indexOf('a-') === 0 ? 'app password' : c.auth.indexOf('fast') >= 0 ? 'FAST token' : 'session (account password)';
          var action = c.revocable
            ? button('Revoke', function () {
                if (window.confirm('Revoke ' + (c.software || c.id) + '? Its sessions end and it can no longer log in.')) {
                  api('DELETE', 'clients/' + encodeURIComponent(c.id)).then(function () { say('revoked ' + (c.software || c.id)); load(); }, failed);
                }
              }, 'danger')
            : el('span', 'change your password to shut it out', 'muted');
          var name = (c.software || '(unnamed)') + (c.device ? ' on ' + c.device : '');
          var tr = row([name, kind, c.connected ? 'yes' : 'no', when(c.firstSeen), when(c.lastSeen), action]);
          tr.dataset.id = c.id;
          tr.dataset.name = c.software || '';
          tb.appendChild(tr);
        });
      }, failed);
    }
    $('create-app-password').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var label = $('app-label').value.trim();
      api('POST', 'app-passwords', { label: label }).then(function (r) {
        $('new-password-label').textContent = label;
        $('new-password-value').textContent = r.password;
        $('new-password').hidden = false;
        $('create-app-password').reset();
        say('created an app password for ' + label);
        load();
      }, failed);
    });
    load();
  }

  // ---------------------------------------------------------------- events
  function events() {
    api('GET', 'events').then(function (p) {
      var tb = $('events');
      tb.replaceChildren();
      if (p.events.length === 0) tb.appendChild(row(['no events yet']));
      p.events.forEach(function (e) {
        var details = Object.keys(e.detail).map(function (k) { return k + '=' + (typeof e.detail[k] === 'string' ? e.detail[k] : JSON.stringify(e.detail[k])); }).join(', ');
        var tr = row([when(e.at), e.kind, details]);
        tr.dataset.kind = e.kind;
        tb.appendChild(tr);
      });
    }, failed);
  }
})();
`;
