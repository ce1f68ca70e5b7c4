/* Doorstep driver app service worker (served at /driver/sw.js, scope /driver).
 *
 * Keeps the app shell so the app opens without a network: the /driver page (network first,
 * the last copy when offline) and its CSS and JS (cache first, refreshed in the background).
 * Actions (POST) are never cached here: the page queues them itself (app.js).
 */
"use strict";

const CACHE = "doorstep-driver-v1";
const PAGE = "/driver";
const SHELL = [PAGE, "/static/doorstep.css", "/static/driver/driver.css", "/static/driver/app.js",
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

function pageFirst(request) {
  return fetch(request)
    .then((resp) => {
      if (resp.ok) {
        const copy = resp.clone();
        caches.open(CACHE).then((cache) => cache.put(PAGE, copy));
      }
      return resp;
    })
    .catch(() => caches.match(PAGE).then((hit) => hit || Response.error()));
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
  if (url.pathname === PAGE && request.mode === "navigate") {
    event.respondWith(pageFirst(request));
  } else if (SHELL.includes(url.pathname) && url.pathname !== PAGE) {
    event.respondWith(staticFirst(request));
  }
});
