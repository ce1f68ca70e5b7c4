/* Doorstep driver app service worker (served at /driver/sw.js, scope /driver).
 *
 * Keeps the app shell so the app opens without a network: the /driver page (network first,
 * the last copy when offline; the app fetches it again after each action it sends, so the
 * copy shows the route as it now is) and its CSS and JS (cache first, refreshed in the
 * background).
 * Actions (POST) are never cached here: the page queues them itself (app.js).
 */
"use strict";

const CACHE = "doorstep-driver-v2";
const PAGE = "/driver";
// The page itself is kept by pageFirst, from the app's own requests, never at install: an
// install-time copy could land after a fresher one and bring back an out-of-date route.
const SHELL = ["/static/doorstep.css", "/static/driver/driver.css", "/static/driver/app.js",
  "/static/favicon.svg", "/static/driver/manifest.webmanifest"];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) =>
      Promise.all(SHELL.map((url) =>
        fetch(url, { credentials: "same-origin" })
          .then((resp) => (resp.ok ? cache.put(url, resp) : null))
          .catch(() => null))))
      .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys
        .filter((key) => key.startsWith("doorstep-driver-") && key !== CACHE)
        .map((key) => caches.delete(key))))
      .then(() => self.clients.claim()));
});

// When the request behind the kept copy was sent: an answer to an older request that arrives
// late never replaces a newer copy.
let keptSentAt = 0;

function keptPage(retries = 10) {
  // A copy being written the moment the phone goes offline is not readable yet: look again,
  // for up to 1.5 s (a busy phone's storage; 0.45 s was not always enough on a loaded CI).
  return caches.open(CACHE)
    .then((cache) => cache.match(PAGE, { ignoreSearch: true, ignoreVary: true }))
    .then((hit) => (hit || retries === 0
      ? hit
      : new Promise((resolve) => setTimeout(resolve, 150)).then(() => keptPage(retries - 1))));
}

function pageFirst(request) {
  const sentAt = Date.now() + performance.now() % 1;
  return fetch(request)
    .then((resp) => {
      if (!resp.ok || resp.redirected || sentAt < keptSentAt) return resp;
      keptSentAt = sentAt;
      const copy = resp.clone();
      return caches.open(CACHE).then((cache) => cache.put(PAGE, copy)).then(() => resp, () => resp);
    })
    .catch(() => keptPage().then((hit) => hit || Response.error()));
}

function staticFirst(request) {
  return caches.match(request, { ignoreSearch: true }).then((hit) => {
    const fresh = fetch(request)
      .then((resp) => {
        if (resp.ok) {
          const copy = resp.clone();
          const url = new URL(request.url);
          caches.open(CACHE).then((cache) => cache.put(url.pathname, copy));
        }
        return resp;
      })
      .catch(() => hit || Response.error());
    return hit || fresh;
  });
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname === PAGE) {
    event.respondWith(pageFirst(request));
  } else if (SHELL.includes(url.pathname)) {
    event.respondWith(staticFirst(request));
  }
});
