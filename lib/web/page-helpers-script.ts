// Browser helpers shared by the web admin's and the account pages' scripts: element lookups and
// builders that only ever set textContent, the message line, and the JSON API call that sends the
// session's CSRF token and sends a logged-out page back to its login form.
/** The helpers as browser JavaScript for the pages under `base` ('/admin' or '/account'). */
export function pageHelpersScript(base: '/admin' | '/account'): string {
  return String.raw`  var base = '${base}';
  var page = document.body.dataset.page;
  var csrf = '';

  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function say(text, bad) {
    var m = $('message');
    m.textContent = text;
    m.className = bad ? 'bad' : 'good';
    m.hidden = false;
  }
  function api(method, path, body) {
    var headers = {};
    if (method !== 'GET') headers['X-CSRF-Token'] = csrf;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return fetch(base + '/api/' + path, { method: method, headers: headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (r.status === 401 && page !== 'login') { location.href = base + '/login'; throw new Error('not logged in'); }
          if (!r.ok) { var e = new Error(data.message || ('HTTP ' + r.status)); e.code = data.error; throw e; }
          return data;
        });
      });
  }
  function button(text, onClick, cls) {
    var b = el('button', text, cls);
    b.type = 'button';
    b.addEventListener('click', onClick);
    return b;
  }
  function row(cells) {
    var tr = document.createElement('tr');
    cells.forEach(function (c) {
      var td = document.createElement('td');
      if (c instanceof Node) td.appendChild(c); else td.textContent = c === undefined || c === null ? '' : String(c);
      tr.appendChild(td);
    });
    return tr;
  }
  function failed(err) { say(err.message, true); }
`;
}
