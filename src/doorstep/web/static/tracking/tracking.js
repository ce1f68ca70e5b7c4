/* The recipient's tracking page (tracking/page.html), made live.
 *
 * The page is complete without this script. With it: an EventSource on data-events-url; each
 * "snapshot" message carries the page's texts (already translated by the server) and replaces
 * the elements marked data-live / data-live-list; each "position" message moves the driver's
 * marker. "end" closes the stream (the delivery is over). EventSource reconnects by itself
 * after a network error; the server then sends a fresh snapshot.
 *
 * No inline scripts or styles (the page's CSP forbids them).
 */
(function () {
  "use strict";

  var root = document.querySelector("[data-track]");
  if (!root) return;
  var mapEl = document.getElementById("track-map");
  var mapBox = document.querySelector('[data-live-box="map"]');
  var map = null;
  var driverMarker = null;
  var homeMarker = null;

  function setText(name, text) {
    document.querySelectorAll('[data-live="' + name + '"]').forEach(function (node) {
      node.textContent = text || "";
      if (node.hasAttribute("hidden") || !text) node.hidden = !text;
    });
    var box = document.querySelector('[data-live-box="' + name + '"]');
    if (box) box.hidden = !text;
  }

  function setTimeline(items) {
    var list = document.querySelector('[data-live-list="timeline"]');
    if (!list) return;
    while (list.firstChild) list.removeChild(list.firstChild);
    items.forEach(function (item) {
      var li = document.createElement("li");
      var time = document.createElement("time");
      time.setAttribute("datetime", item.datetime);
      time.textContent = item.when;
      li.appendChild(time);
      li.appendChild(document.createTextNode(" "));
      var span = document.createElement("span");
      span.textContent = item.text;
      li.appendChild(span);
      if (item.reason) {
        var why = document.createElement("span");
        why.className = "track-timeline__why";
        why.textContent = " " + item.reason;
        li.appendChild(why);
      }
      list.appendChild(li);
    });
  }

  // The "Change delivery" forms close once the driver sets off or the delivery is over.
  var ON_THE_WAY = ["out_for_delivery", "delivery_delayed"];
  var OVER = ["delivered", "cancelled", "return_to_sender"];
  function closeChanges(status) {
    var forms = document.querySelector("[data-change-forms]");
    var note = document.querySelector("[data-change-closed]");
    if (!forms || !note) return;
    var onTheWay = ON_THE_WAY.indexOf(status) >= 0;
    var over = OVER.indexOf(status) >= 0;
    if (!onTheWay && !over) return;
    forms.hidden = true;
    note.hidden = false;
    note.querySelector('[data-closed-when="on_the_way"]').hidden = !onTheWay;
    note.querySelector('[data-closed-when="over"]').hidden = !over;
  }

  function ensureMap() {
    if (map || !mapEl || typeof L === "undefined" || (mapBox && mapBox.hidden)) return;
    var data = mapEl.dataset;
    var home = [parseFloat(data.destLat), parseFloat(data.destLon)];
    map = L.map(mapEl, { zoomControl: true, scrollWheelZoom: false, keyboard: true });
    if (data.tilesUrl) {
      L.tileLayer(data.tilesUrl, { attribution: data.tilesAttribution || "", maxZoom: 19 }).addTo(map);
    }
    homeMarker = L.circleMarker(home, {
      radius: 9, color: "#1b1b1f", weight: 2, fillColor: "#ffffff", fillOpacity: 1,
    }).addTo(map).bindTooltip(data.labelHome || "Home");
    map.setView(home, 15);
    if (data.driverLat && data.driverLon) {
      moveDriver(parseFloat(data.driverLat), parseFloat(data.driverLon));
    }
  }

  function moveDriver(lat, lon) {
    ensureMap();
    if (!map) return;
    var at = [lat, lon];
    if (!driverMarker) {
      driverMarker = L.circleMarker(at, {
        radius: 11, color: "#ffffff", weight: 3, fillColor: "#b3261e", fillOpacity: 1,
        className: "track-driver-marker",
      }).addTo(map).bindTooltip(mapEl.dataset.labelDriver || "Driver");
    } else {
      driverMarker.setLatLng(at);
    }
    var note = document.querySelector("[data-map-note]");
    if (note && note.dataset.textShown) note.textContent = note.dataset.textShown;
    mapEl.setAttribute("data-driver-lat", String(lat));
    mapEl.setAttribute("data-driver-lon", String(lon));
    var bounds = L.latLngBounds([at, homeMarker.getLatLng()]);
    map.fitBounds(bounds, { padding: [40, 40], maxZoom: 16 });
  }

  function hideDriver() {
    if (driverMarker && map) {
      map.removeLayer(driverMarker);
      driverMarker = null;
    }
    if (mapEl) {
      mapEl.removeAttribute("data-driver-lat");
      mapEl.removeAttribute("data-driver-lon");
    }
  }

  function applySnapshot(page) {
    root.setAttribute("data-status", page.status);
    [
      "headline", "reason_text", "eta_text", "stops_text", "driver_text", "delivered_text",
      "window_day", "window_text",
    ].forEach(function (name) { setText(name, page[name]); });
    setTimeline(page.timeline || []);
    closeChanges(page.status);
    if (mapBox) mapBox.hidden = !page.driver_visible;
    if (page.driver_visible && page.driver) {
      moveDriver(page.driver.lat, page.driver.lon);
    } else if (!page.driver_visible) {
      hideDriver();
    }
    root.setAttribute("data-seq", String(page.seq));
  }

  ensureMap();
  if (typeof EventSource === "undefined" || !root.dataset.eventsUrl) return;
  var source = new EventSource(root.dataset.eventsUrl);
  var status = document.querySelector("[data-live-connection]");
  source.addEventListener("open", function () {
    root.setAttribute("data-live", "on");
    if (status) status.hidden = false;
  });
  source.addEventListener("error", function () {
    root.setAttribute("data-live", "reconnecting");
  });
  source.addEventListener("snapshot", function (event) {
    applySnapshot(JSON.parse(event.data));
  });
  source.addEventListener("position", function (event) {
    var pos = JSON.parse(event.data);
    moveDriver(pos.lat, pos.lon);
  });
  source.addEventListener("end", function () {
    source.close();
    root.setAttribute("data-live", "ended");
  });
})();
