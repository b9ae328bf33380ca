// Kaizen's only script. Every page works without it; it adds what a browser can do better:
// times in the reader's locale, copy buttons, link secrets read from the URL fragment (which never
// reaches the server or its logs), and the API reference's "try it".
(function () {
  "use strict";

  // Times: the server writes UTC; show the reader's local time, keep UTC on hover.
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when.getTime())) return;
    el.title = el.getAttribute("datetime").replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC");
    el.textContent = el.hasAttribute("data-date") ? when.toLocaleDateString() : when.toLocaleString();
  });

  // Copy buttons: hidden until the script can make them work.
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent).then(function () {
        button.textContent = "Copied";
      }, function () {
        button.textContent = "Select and copy";
      });
    });
  });

  // One-time links carry their secret after '#': put it in the form and out of the address bar.
  var fragment = window.location.hash.slice(1);
  document.querySelectorAll("input[data-from-fragment]").forEach(function (input) {
    if (fragment && !input.value) {
      input.value = decodeURIComponent(fragment);
      var row = input.closest("[data-fragment-row]");
      if (row) row.hidden = true;
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
  });

  // Parts that only work with script.
  document.querySelectorAll("[data-needs-script]").forEach(function (el) { el.hidden = false; });

  // The API reference: send a call with a token (or this session's cookie and CSRF proof).
  var csrf = document.querySelector("meta[name=kaizen-csrf]");
  document.querySelectorAll("form.try").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var method = form.getAttribute("data-method");
      var path = form.getAttribute("data-path");
      form.querySelectorAll("input[data-in=path]").forEach(function (input) {
        path = path.replace("{" + input.name + "}", encodeURIComponent(input.value));
      });
      var query = [];
      form.querySelectorAll("input[data-in=query]").forEach(function (input) {
        if (input.value) query.push(encodeURIComponent(input.name) + "=" + encodeURIComponent(input.value));
      });
      if (query.length) path += "?" + query.join("&");
      var headers = { "Accept": "application/json" };
      var token = document.getElementById("try-token");
      if (token && token.value) headers["Authorization"] = "Bearer " + token.value;
      else if (csrf) headers["X-CSRF-Token"] = csrf.content;
      var init = { method: method, headers: headers, credentials: "same-origin" };
      var body = form.querySelector("textarea[name=body]");
      if (body && body.value.trim()) {
        headers["Content-Type"] = "application/json";
        init.body = body.value;
      }
      var out = form.querySelector("output");
      out.textContent = method + " " + path + " …";
      fetch(path, init).then(function (response) {
        return response.text().then(function (text) {
          try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON: as sent */ }
          out.textContent = response.status + " " + response.statusText + "\n" + text.slice(0, 20000);
        });
      }, function (error) {
        out.textContent = "Failed: " + error;
      });
    });
  });
})();
