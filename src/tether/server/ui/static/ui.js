/* Tether UI: sign-in, live refresh by polling, and the run actions. No dependencies.
   The token is kept for this tab in sessionStorage and sent in the Authorization header
   of every action (a cookie alone never authorises one). */
(function () {
  "use strict";
  var KEY = "tether-token";
  var body = document.body;
  var needsToken = body.dataset.auth === "token";

  function headers() {
    var h = {"Content-Type": "application/json", "X-Tether-UI": "1"};
    var t = sessionStorage.getItem(KEY);
    if (needsToken && t) { h.Authorization = "Bearer " + t; }
    return h;
  }

  function say(el, text) { if (el) { el.textContent = text; } }

  /* ---- sign in / out */
  var login = document.getElementById("login");
  if (login) {
    login.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var token = login.elements.token.value.trim();
      sessionStorage.setItem(KEY, token);
      fetch("/ui/session", {method: "POST", headers: headers(), credentials: "same-origin", body: "{}"})
        .then(function (r) {
          if (r.ok) { location.replace(login.dataset.next || "/ui/"); return; }
          sessionStorage.removeItem(KEY);
          say(document.getElementById("login-error"), "That token is not known to this server.");
        })
        .catch(function () { say(document.getElementById("login-error"), "The server cannot be reached."); });
    });
  }
  document.querySelectorAll("[data-logout]").forEach(function (b) {
    b.addEventListener("click", function () {
      sessionStorage.removeItem(KEY);
      fetch("/ui/logout", {method: "POST", credentials: "same-origin"}).then(function () { location.assign("/ui/"); });
    });
  });

  /* ---- live refresh: every [data-live] element with an id is replaced by its new version */
  var live = document.querySelectorAll("[data-live][id]");
  if (live.length) {
    var timer = setInterval(function () {
      if (document.hidden) { return; }
      if (document.activeElement && document.activeElement.closest("[data-live]")) { return; }
      fetch(location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var doc = new DOMParser().parseFromString(html, "text/html");
          var still = 0;
          document.querySelectorAll("[data-live][id]").forEach(function (el) {
            var fresh = doc.getElementById(el.id);
            if (fresh) { el.replaceWith(document.importNode(fresh, true)); if (fresh.hasAttribute("data-live")) { still++; } }
          });
          if (!still) { clearInterval(timer); }
        })
        .catch(function () { /* offline for a moment: try again next time */ });
    }, 3000);
  }

  /* ---- actions */
  function parseSet(text) {
    var out = {};
    (text || "").split("\n").forEach(function (line) {
      line = line.trim();
      if (!line) { return; }
      var i = line.indexOf("=");
      if (i < 1) { throw new Error("each line is NAME=VALUE: " + line); }
      var name = line.slice(0, i).trim(), raw = line.slice(i + 1).trim(), value;
      try { value = JSON.parse(raw); } catch (e) { value = raw; }
      out[name] = value;
    });
    return out;
  }

  var outcome = document.getElementById("action-outcome");
  function show(text, link) {
    if (!outcome) { return; }
    outcome.textContent = text + " ";
    if (link) {
      var a = document.createElement("a");
      a.href = "/ui/runs/" + encodeURIComponent(link);
      a.textContent = "Open run " + link;
      a.id = "outcome-link";
      outcome.appendChild(a);
    }
  }

  document.querySelectorAll("form[data-action]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var verb = form.dataset.action, payload = {};
      try {
        if (form.elements.set) { payload.set = parseSet(form.elements.set.value); }
      } catch (e) { show(e.message); return; }
      if (form.elements.from_step && form.elements.from_step.value) { payload.from_step = form.elements.from_step.value; }
      if (form.elements.retry_failed) { payload.retry_failed = form.elements.retry_failed.checked; }
      if (!window.confirm(form.dataset.confirm || ("Do " + verb + "?"))) { return; }
      if (needsToken && !sessionStorage.getItem(KEY)) {
        var t = window.prompt("Your write token for this tab:");
        if (!t) { return; }
        sessionStorage.setItem(KEY, t.trim());
      }
      show(verb + ": sending…");
      fetch("/ui/runs/" + encodeURIComponent(form.dataset.run) + "/actions/" + verb,
            {method: "POST", headers: headers(), credentials: "same-origin", body: JSON.stringify(payload)})
        .then(function (r) { return r.json().catch(function () { return {ok: false, message: "HTTP " + r.status}; }); })
        .then(function (doc) {
          if (!doc.ok) { show(verb + " refused: " + doc.message); return; }
          show(doc.message + ".", verb === "delete" ? null : doc.run_id);
        })
        .catch(function () { show(verb + ": the server cannot be reached."); });
    });
  });
}());
