/* Doorstep driver app: actions that survive a bad connection, proof of delivery, position.
 *
 * Every action (start, arrive, deliver, fail) is first written to a queue in IndexedDB with
 * its own Idempotency-Key and the time it happened, then sent; the queue is replayed in order
 * whenever the network returns (the "online" event, and a retry every few seconds). The server
 * answers a replayed key with its first answer, so a stop is never completed twice. A refused
 * action (wrong PIN, stop already done) leaves the queue and its message shows on the stop.
 * What the server confirmed is also remembered (localStorage), so a page opened offline from
 * the service worker's copy never shows a stop as still to do once it is done.
 * While a route is active the phone's position goes to /ingest/osmand every few seconds
 * (OsmAnd/Traccar JSON); failures there are ignored, a position is only worth sending fresh.
 * Every text comes from the page (#driver-texts, in the driver's language). While online and
 * idle the page asks /driver/state every 20 s and reloads when a recipient or the dispatcher
 * changed the day (a redirect, a hold, new instructions, a stop moved).
 */
(() => {
  "use strict";

  const root = document.getElementById("driver-app");
  if (!root) return;

  const DB_NAME = "doorstep-driver";
  const STORE = "actions";
  const POSITION_EVERY_MS = 10000;
  const RETRY_EVERY_MS = 5000;
  const POLL_EVERY_MS = 20000;
  const CHANGED_KEY = "doorstep-driver-changed";

  // --- words (the page's, in the driver's language) ----------------------------------------

  let TEXTS = {};
  try { TEXTS = JSON.parse(document.getElementById("driver-texts").textContent); } catch (err) { TEXTS = {}; }
  const lang = root.dataset.lang || document.documentElement.lang || "en";
  const plurals = window.Intl && Intl.PluralRules ? new Intl.PluralRules(lang) : null;

  function fill(text, values) {
    return String(text).replace(/%\((\w+)\)s/g, (all, name) => (name in values ? String(values[name]) : all));
  }

  function t(key, values) {
    const text = TEXTS[key];
    if (text === undefined) return key;
    return fill(text, values || {});
  }

  function tn(key, count, values) {
    const forms = TEXTS[key] || {};
    const form = plurals ? plurals.select(count) : (count === 1 ? "one" : "other");
    return fill(forms[form] || forms.other || key, Object.assign({ count }, values || {}));
  }

  const LABELS = TEXTS.labels || {};
  const PENDING = { start: "active", arrive: "arrived", deliver: "done", fail: "failed" };
  const OPEN = new Set(["planned", "en_route", "arrived"]);
  const deviceId = root.dataset.deviceId || "";
  const net = document.getElementById("net-status");
  let lastFix = null;
  let online = navigator.onLine;

  // --- the queue (IndexedDB) ---------------------------------------------------------------

  function openDb() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "id", autoIncrement: true });
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }

  function withStore(mode, fn) {
    return openDb().then((db) => new Promise((resolve, reject) => {
      const t = db.transaction(STORE, mode);
      const req = fn(t.objectStore(STORE));
      t.oncomplete = () => { db.close(); resolve(req ? req.result : undefined); };
      t.onerror = () => { db.close(); reject(t.error); };
      t.onabort = () => { db.close(); reject(t.error); };
    }));
  }

  const queueAdd = (item) => withStore("readwrite", (s) => s.add(item));
  const queueAll = () => withStore("readonly", (s) => s.getAll());
  const queueDelete = (id) => withStore("readwrite", (s) => s.delete(id));

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // --- what the server last confirmed (survives a page served from the offline copy) --------

  // Statuses only move forward; a copy of the page kept by the service worker may be older
  // than what the server already confirmed, so the furthest known status wins on load.
  const KNOWN_KEY = "doorstep-driver-known";
  const ROUTE_RANK = { planned: 0, active: 1, done: 2 };
  const STOP_RANK = { planned: 0, en_route: 1, arrived: 2, done: 3, failed: 3, skipped: 3 };

  function known() {
    try { return JSON.parse(localStorage.getItem(KNOWN_KEY)) || { routes: {}, stops: {} }; }
    catch (err) { return { routes: {}, stops: {} }; }
  }

  function remember(kind, id, value) {
    const state = known();
    state[kind][id] = value;
    try { localStorage.setItem(KNOWN_KEY, JSON.stringify(state)); } catch (err) { /* full */ }
  }

  function applyKnown() {
    const state = known();
    Object.entries(state.routes).forEach(([id, value]) => {
      const route = routeEl(id);
      if (route && ROUTE_RANK[value] > ROUTE_RANK[route.dataset.routeStatus]) route.dataset.routeStatus = value;
    });
    Object.entries(state.stops).forEach(([id, value]) => {
      const li = stopEl(id);
      if (li && STOP_RANK[value] > STOP_RANK[li.dataset.status]) setStop(id, value, false);
    });
  }

  // --- what the page shows -----------------------------------------------------------------

  const stopEl = (id) => document.getElementById("stop-" + id);
  const routeEl = (id) => document.querySelector(`.drv-route[data-route-id="${CSS.escape(id)}"]`);

  function setStop(id, status, pending) {
    const li = stopEl(id);
    if (!li) return;
    li.dataset.status = status;
    li.className = "drv-stop drv-stop--" + status;
    const badge = li.querySelector("[data-stop-state]");
    badge.textContent = (LABELS[status] || status) + (pending ? " · " + t("waiting") : "");
    badge.classList.toggle("drv-badge--pending", Boolean(pending));
  }

  function stopMessage(id, text, isError) {
    const li = stopEl(id);
    if (!li) return;
    const msg = li.querySelector("[data-stop-msg]");
    msg.textContent = text || "";
    msg.classList.toggle("drv-stop__msg--error", Boolean(isError));
  }

  function refresh() {
    document.querySelectorAll(".drv-route").forEach((route) => {
      const status = route.dataset.routeStatus;
      const stops = Array.from(route.querySelectorAll(".drv-stop"));
      const left = stops.filter((li) => OPEN.has(li.dataset.status)).length;
      if (status === "active" && left === 0) route.dataset.routeStatus = "done";
      const now = route.dataset.routeStatus;
      route.querySelector("[data-do=start]").hidden = now !== "planned";
      route.querySelector("[data-route-state]").textContent =
        now === "planned" ? t("not_started") : now === "active" ? t("under_way", { count: left }) : t("finished");
      stops.forEach((li) => {
        const open = now === "active" && OPEN.has(li.dataset.status);
        li.querySelector("[data-actions]").hidden = !open;
        li.querySelector("[data-do=arrive]").hidden = !open || li.dataset.status === "arrived";
        li.querySelector("[data-do=deliver]").hidden = !open || li.dataset.doNotDeliver === "true";
      });
    });
    track();
  }

  function applyPending(item) {
    if (item.kind === "start") {
      const route = routeEl(item.target);
      if (route) route.dataset.routeStatus = "active";
    } else {
      setStop(item.target, PENDING[item.kind], true);
      stopMessage(item.target, "");
    }
  }

  function applyResult(item, body) {
    if (item.kind === "start" && body && body.stops) {
      const route = routeEl(body.id);
      if (route) route.dataset.routeStatus = body.status;
      remember("routes", body.id, body.status);
      body.stops.forEach((s) => { setStop(s.id, s.status, false); remember("stops", s.id, s.status); });
    } else if (body && body.id) {
      setStop(body.id, body.status, false);
      remember("stops", body.id, body.status);
    }
  }

  // Why the server refused, in the driver's words where the problem names a known cause.
  function refusal(httpStatus, body) {
    const errors = (body && body.errors) || [];
    const known = errors.map((e) => TEXTS["code_" + e.code]).filter(Boolean);
    if (known.length) return known.join("; ");
    if (httpStatus === 409) return t("conflict");
    if (httpStatus === 404) return t("not_found");
    return (body && (errors.length ? errors.map((e) => e.message).join("; ") : body.detail)) || t("refused");
  }

  function applyRefusal(item, httpStatus, body) {
    const detail = refusal(httpStatus, body);
    if (item.kind === "start") {
      const route = routeEl(item.target);
      if (route) route.dataset.routeStatus = item.before || "planned";
      status(t("start_refused", { detail }), "offline");
      return;
    }
    setStop(item.target, item.before || "planned", false);
    stopMessage(item.target, t(item.kind + "_refused", { detail }), true);
  }

  function status(text, kind) {
    net.textContent = text;
    net.className = "drv-net" + (kind ? " drv-net--" + kind : "");
  }

  // Actions that waited on this phone and have now been sent, by key: a replay of the same
  // key is the same action, counted once.
  const replayed = new Set();

  async function showQueue() {
    const waiting = (await queueAll()).length;
    if (!online) {
      status(waiting ? tn("offline_queued", waiting) : t("offline"), "offline");
    } else if (waiting) {
      status(tn("sending", waiting), "queued");
    } else if (replayed.size) {
      status(tn("replayed", replayed.size), "");
      replayed.clear();
    } else if (net.className.indexOf("drv-net--") !== -1) {
      status("", "");
    }
  }

  // --- sending -----------------------------------------------------------------------------

  let flushing = false;

  function retryLater(resp, body) {
    if (resp.status >= 500 || resp.status === 429) return true;
    if (resp.status === 401) {
      status(t("signed_out"), "offline");
      return true;
    }
    if (resp.status === 403) {
      status(t("out_of_date"), "offline");
      return true;
    }
    return resp.status === 409 && body && String(body.type || "").endsWith("idempotency-key-in-flight");
  }

  function refreshShell() {
    // Through the service worker, which keeps this copy for opening the app offline.
    fetch(window.location.pathname, { credentials: "same-origin" }).catch(() => {});
  }

  async function flush() {
    if (flushing) return;
    flushing = true;
    let sent = 0;
    try {
      for (const item of await queueAll()) {
        const form = new FormData();
        item.fields.forEach(([name, value, filename]) => {
          if (value instanceof Blob) form.append(name, value, filename || name);
          else form.append(name, value);
        });
        let resp;
        try {
          resp = await fetch(item.url, {
            method: "POST",
            body: form,
            credentials: "same-origin",
            headers: { "Idempotency-Key": item.key, "X-CSRF-Token": root.dataset.csrf, Accept: "application/json" },
          });
        } catch (err) {
          online = false;
          markWaiting();
          break;
        }
        online = true;
        let body = null;
        try { body = await resp.json(); } catch (err) { body = null; }
        if (retryLater(resp, body)) break;
        await queueDelete(item.id);
        sent += 1;
        if (item.waited) replayed.add(item.key);
        if (resp.ok) applyResult(item, body); else applyRefusal(item, resp.status, body);
        refresh();
      }
    } finally {
      flushing = false;
      await showQueue();
      if (sent) refreshShell();
    }
  }

  // Actions still queued when the network failed are "replayed" once they finally go.
  function markWaiting() {
    withStore("readwrite", (s) => {
      const req = s.openCursor();
      req.onsuccess = () => {
        const cursor = req.result;
        if (!cursor) return;
        if (!cursor.value.waited) cursor.update(Object.assign({}, cursor.value, { waited: true }));
        cursor.continue();
      };
      return null;
    }).catch(() => {});
  }

  async function act(kind, url, target, fields) {
    const before = kind === "start" ? routeEl(target).dataset.routeStatus : stopEl(target).dataset.status;
    const all = fields.slice();
    all.push(["occurred_at", new Date().toISOString()]);
    if (lastFix && kind !== "start") {
      all.push(["lat", String(lastFix.coords.latitude)], ["lon", String(lastFix.coords.longitude)]);
    }
    const item = { kind, url, target, before, key: newKey(), fields: all, created: Date.now(), waited: !online };
    await queueAdd(item);
    applyPending(item);
    refresh();
    await flush();
  }

  // --- proof of delivery and failed attempts -----------------------------------------------

  const deliverDialog = document.getElementById("deliver-dialog");
  const deliverForm = document.getElementById("deliver-form");
  const failDialog = document.getElementById("fail-dialog");
  const failForm = document.getElementById("fail-form");
  const canvas = document.getElementById("pod-signature");
  const pen = canvas.getContext("2d");
  let signed = false;
  let current = null;

  function clearSignature() {
    pen.clearRect(0, 0, canvas.width, canvas.height);
    signed = false;
  }

  function point(event) {
    const rect = canvas.getBoundingClientRect();
    return [(event.clientX - rect.left) * canvas.width / rect.width,
      (event.clientY - rect.top) * canvas.height / rect.height];
  }

  let drawing = false;
  canvas.addEventListener("pointerdown", (event) => {
    drawing = true;
    canvas.setPointerCapture(event.pointerId);
    const [x, y] = point(event);
    pen.lineWidth = 3;
    pen.lineCap = "round";
    pen.lineJoin = "round";
    pen.strokeStyle = "#1b2430";
    pen.beginPath();
    pen.moveTo(x, y);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const [x, y] = point(event);
    pen.lineTo(x, y);
    pen.stroke();
    signed = true;
  });
  ["pointerup", "pointercancel"].forEach((name) => canvas.addEventListener(name, () => { drawing = false; }));
  document.getElementById("pod-signature-clear").addEventListener("click", clearSignature);

  function describe(li) {
    return t("stop_label", { number: li.querySelector(".drv-stop__num").textContent, reference: li.dataset.reference });
  }

  function openDeliver(li, url) {
    current = { li, url };
    deliverForm.reset();
    clearSignature();
    document.getElementById("deliver-error").hidden = true;
    document.getElementById("deliver-stop").textContent = describe(li);
    const needsPin = li.dataset.requiresPin === "true";
    document.getElementById("pod-pin-field").hidden = !needsPin;
    document.getElementById("pod-pin").required = needsPin;
    deliverDialog.showModal();
  }

  function openFail(li, url) {
    current = { li, url };
    failForm.reset();
    document.getElementById("fail-stop").textContent = describe(li);
    failDialog.showModal();
  }

  function signatureBlob() {
    return new Promise((resolve) => {
      if (!signed) { resolve(null); return; }
      canvas.toBlob((blob) => resolve(blob), "image/png");
    });
  }

  deliverForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const pinField = document.getElementById("pod-pin");
    if (pinField.required && !/^\d{4,6}$/.test(pinField.value.trim())) {
      const error = document.getElementById("deliver-error");
      error.textContent = t("pin_hint");
      error.hidden = false;
      pinField.focus();
      return;
    }
    const fields = [];
    const photo = document.getElementById("pod-photo").files[0];
    if (photo) fields.push(["photo", photo, photo.name || "photo.jpg"]);
    const signature = await signatureBlob();
    if (signature) fields.push(["signature", signature, "signature.png"]);
    const receivedBy = document.getElementById("pod-received-by").value.trim();
    if (receivedBy) fields.push(["received_by", receivedBy]);
    if (pinField.required) fields.push(["pin", pinField.value.trim()]);
    const { li, url } = current;
    deliverDialog.close();
    await act("deliver", url, li.dataset.stopId, fields);
  });

  failForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const fields = [["reason", document.getElementById("fail-reason").value]];
    const note = document.getElementById("fail-note").value.trim();
    if (note) fields.push(["note", note]);
    const photo = document.getElementById("fail-photo").files[0];
    if (photo) fields.push(["photo", photo, photo.name || "photo.jpg"]);
    const { li, url } = current;
    failDialog.close();
    await act("fail", url, li.dataset.stopId, fields);
  });

  document.querySelectorAll("dialog [data-close]").forEach((button) =>
    button.addEventListener("click", () => button.closest("dialog").close()));

  root.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-do]");
    if (!button) return;
    const li = button.closest(".drv-stop");
    const url = button.dataset.url;
    switch (button.dataset.do) {
      case "start": act("start", url, button.closest(".drv-route").dataset.routeId, []); break;
      case "arrive": act("arrive", url, li.dataset.stopId, []); break;
      case "deliver": openDeliver(li, url); break;
      case "fail": openFail(li, url); break;
      default: break;
    }
  });

  // --- position while a route is active ----------------------------------------------------

  let watchId = null;
  let lastSentAt = 0;
  let battery = null;

  function routeActive() {
    return Array.from(document.querySelectorAll(".drv-route"))
      .some((route) => route.dataset.routeStatus === "active");
  }

  function track() {
    if (!navigator.geolocation) return;
    if (routeActive() && watchId === null) {
      watchId = navigator.geolocation.watchPosition((fix) => { lastFix = fix; }, () => {},
        { enableHighAccuracy: true, maximumAge: 5000, timeout: 30000 });
    } else if (!routeActive() && watchId !== null) {
      navigator.geolocation.clearWatch(watchId);
      watchId = null;
    }
  }

  function sendPosition() {
    if (!deviceId || !lastFix || !routeActive() || lastFix.timestamp <= lastSentAt) return;
    lastSentAt = lastFix.timestamp;
    const c = lastFix.coords;
    const level = battery ? { level: battery.level, is_charging: battery.charging } : undefined;
    const payload = {
      device_id: deviceId,
      location: {
        timestamp: new Date(lastFix.timestamp).toISOString(),
        coords: { latitude: c.latitude, longitude: c.longitude, accuracy: c.accuracy,
          speed: c.speed, heading: c.heading, altitude: c.altitude },
        battery: level,
      },
      battery: level,
    };
    fetch("/ingest/osmand", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
      credentials: "omit",
      keepalive: true,
    }).catch(() => {});
  }

  if (navigator.getBattery) navigator.getBattery().then((b) => { battery = b; }).catch(() => {});

  // --- start-up ----------------------------------------------------------------------------

  window.addEventListener("online", () => { online = true; flush(); });
  window.addEventListener("offline", () => { online = false; markWaiting(); showQueue(); });

  // --- news from others: reload when the day changed ---------------------------------------

  async function poll() {
    if (!online || flushing || document.hidden) return;
    if (document.querySelector("dialog[open]")) return;  // never under a driver's hands
    if ((await queueAll()).length) return;
    let body = null;
    try {
      const resp = await fetch("/driver/state", { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } });
      if (!resp.ok) return;
      body = await resp.json();
    } catch (err) { return; }
    if (body && body.stamp && body.stamp !== root.dataset.stamp) {
      try { sessionStorage.setItem(CHANGED_KEY, "1"); } catch (err) { /* private mode */ }
      window.location.reload();
    }
  }
  setInterval(poll, POLL_EVERY_MS);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });
  setInterval(() => { queueAll().then((items) => { if (items.length) flush(); }); }, RETRY_EVERY_MS);
  setInterval(sendPosition, POSITION_EVERY_MS);

  document.getElementById("signout-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    const done = () => form.submit();
    try { localStorage.removeItem(KNOWN_KEY); } catch (err) { /* private mode */ }
    if (window.caches) {
      caches.keys()
        .then((keys) => Promise.all(keys.filter((k) => k.startsWith("doorstep-driver-")).map((k) => caches.delete(k))))
        .then(done, done);
    } else done();
  });

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/driver/sw.js", { scope: "/driver" }).catch(() => {});
    // Once a worker controls the page, let it keep a copy of the page for offline starts.
    if (navigator.serviceWorker.controller) refreshShell();
    navigator.serviceWorker.addEventListener("controllerchange", refreshShell);
  }

  try {
    if (sessionStorage.getItem(CHANGED_KEY)) {
      sessionStorage.removeItem(CHANGED_KEY);
      status(t("changed"), "");
    }
  } catch (err) { /* private mode */ }

  applyKnown();
  queueAll().then((items) => {
    items.forEach(applyPending);
    refresh();
    if (items.length) flush(); else showQueue();
  }).catch(() => refresh());
})();
