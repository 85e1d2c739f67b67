// The console's progressive script: a copy button beside a value shown once.
// Every page works without it.
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-copy]");
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(function () {
    var status = document.getElementById(button.getAttribute("data-copy") + "-status");
    if (status) status.textContent = "Copied.";
  });
});
document.querySelectorAll("button[data-copy]").forEach(function (b) { b.hidden = false; });

// Live status: an element with data-poll is fetched again from that address
// every two seconds and replaced in place, until the answer no longer asks
// to be polled (the sync has ended). Without the script, a link refreshes.
function poll(element) {
  var url = element.getAttribute("data-poll");
  if (!url) return;
  setTimeout(function () {
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        // Signed out meanwhile (sent to the sign-in page): stop.
        return response.ok && !response.redirected ? response.text() : null;
      })
      .then(function (html) {
        if (html === null) return;
        var template = document.createElement("template");
        template.innerHTML = html.trim();
        var fresh = template.content.firstElementChild;
        if (!fresh) return;
        element.replaceWith(fresh);
        poll(fresh);
      })
      .catch(function () { poll(element); });
  }, 2000);
}
document.querySelectorAll("[data-poll]").forEach(poll);
