/* The dispatcher's map (console/dispatch.html).
 *
 * Reads its configuration from data- attributes on #dispatch-map (the plan's GeoJSON URL, the
 * tiles URL and attribution, the depot), fetches the plan with the session cookie and draws
 * the depot, one line per route in its colour and a numbered marker per stop with a popup.
 * Markers and lines need no tiles: when tiles fail (offline) the map still shows the plan on a
 * plain background. Also: clicking a stop number in the panel shows it on the map, opening a
 * route card fits the map to that route, and planning forms show that they are busy.
 *
 * No inline scripts or styles (the page's CSP forbids them): text goes in with textContent,
 * colours come from the route-cN classes of dispatch.css.
 */
(function () {
  "use strict";

  var mapEl = document.getElementById("dispatch-map");
  var statusEl = document.getElementById("map-status");
  var stopMarkers = {}; // order id -> marker
  var routeLayers = {}; // route id -> {line, bounds}
  var routeStyles = {}; // route id -> {number, colour, driver}
  var vehicleMarkers = {}; // route id -> marker
  var pendingVehicles = []; // positions that arrived before the plan was drawn
  var map = null;

  function setStatus(text) {
    if (!statusEl) return;
    statusEl.textContent = text || "";
    statusEl.hidden = !text;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function latLng(coords) {
    return [coords[1], coords[0]]; // GeoJSON is lon/lat, Leaflet lat/lon
  }

  function colourClass(props) {
    return "route-c" + ((props.number - 1) % 12);
  }

  function stopIcon(props) {
    var span = el("span", colourClass(props), props.sequence);
    return L.divIcon({
      html: span,
      className: "stop-marker" + (props.status === "delivered" ? " is-done" : ""),
      iconSize: [28, 28],
      iconAnchor: [14, 14],
      popupAnchor: [0, -12],
    });
  }

  function depotIcon() {
    return L.divIcon({
      html: el("span", "", "Depot"),
      className: "depot-marker",
      iconSize: [52, 28],
      iconAnchor: [26, 14],
      popupAnchor: [0, -12],
    });
  }

  function stopPopup(props) {
    var box = el("div", "stop-pop");
    var title = el("p", "stop-pop__title");
    title.appendChild(el("span", "stop-pop__num " + colourClass(props), props.sequence));
    title.appendChild(el("span", "", props.reference));
    box.appendChild(title);
    var list = el("dl");
    var address = [props.address, props.city].filter(Boolean).join(", ");
    [
      ["Recipient", props.recipient],
      ["Address", address],
      ["Window", props.window || "any time"],
      ["Arrival", props.arrival ? props.arrival + " (planned)" : "–"],
      ["Route", props.number + " · " + props.driver],
    ].forEach(function (row) {
      list.appendChild(el("dt", "", row[0]));
      list.appendChild(el("dd", "", row[1]));
    });
    box.appendChild(list);
    return box;
  }

  function markCurrentStop(orderId) {
    document.querySelectorAll(".stop.is-current").forEach(function (row) {
      row.classList.remove("is-current");
    });
    if (!orderId) return;
    var row = document.querySelector('.stop[data-order-id="' + CSS.escape(orderId) + '"]');
    if (row) row.classList.add("is-current");
  }

  function draw(collection) {
    var bounds = L.latLngBounds([]);
    var stops = 0;
    var routes = 0;
    collection.features.forEach(function (feature) {
      var props = feature.properties || {};
      var geometry = feature.geometry;
      if (props.kind === "depot") {
        var depot = L.marker(latLng(geometry.coordinates), {
          icon: depotIcon(),
          title: "Depot: " + props.name,
          alt: "Depot: " + props.name,
          zIndexOffset: 1000,
          keyboard: false,
        }).addTo(map);
        depot.bindPopup(el("strong", "", "Depot: " + props.name));
        bounds.extend(depot.getLatLng());
      } else if (props.kind === "route" && props.stops > 0) {
        var points = geometry.coordinates.map(latLng);
        L.polyline(points, {
          color: "#ffffff",
          weight: 7,
          opacity: 0.9,
          interactive: false,
          className: "route-casing",
        }).addTo(map);
        var line = L.polyline(points, {
          color: props.colour,
          weight: 4,
          opacity: 0.9,
          className: "route-line",
        }).addTo(map);
        line.bindTooltip(
          "Route " + props.number + " · " + props.driver + " · " + props.stops + " stops",
          { sticky: true }
        );
        routeLayers[props.route_id] = { line: line, bounds: line.getBounds() };
        routeStyles[props.route_id] = { number: props.number, driver: props.driver };
        routes += 1;
      } else if (props.kind === "vehicle") {
        routeStyles[props.route_id] = routeStyles[props.route_id] || { number: props.number, driver: props.driver };
        moveVehicle(props.route_id, geometry.coordinates[1], geometry.coordinates[0]);
      } else if (props.kind === "stop") {
        var marker = L.marker(latLng(geometry.coordinates), {
          icon: stopIcon(props),
          title: "Stop " + props.sequence + " of route " + props.number + " (" +
            props.driver + "): " + props.reference,
          alt: "Stop " + props.sequence + ": " + props.reference,
          riseOnHover: true,
          keyboard: false, // the panel's stop numbers are the keyboard way in
        }).addTo(map);
        marker.bindPopup(stopPopup(props));
        marker.on("popupopen", function () { markCurrentStop(props.order_id); });
        marker.on("popupclose", function () { markCurrentStop(null); });
        stopMarkers[props.order_id] = marker;
        bounds.extend(marker.getLatLng());
        stops += 1;
      }
    });
    if (bounds.isValid()) {
      map.fitBounds(bounds, { padding: [36, 36], maxZoom: 16, animate: false });
    }
    pendingVehicles.splice(0).forEach(function (v) { moveVehicle(v.route_id, v.lat, v.lon); });
    mapEl.setAttribute("data-stops", String(stops));
    mapEl.setAttribute("data-routes", String(routes));
    mapEl.classList.add("is-ready");
  }

  function showStop(orderId) {
    var marker = stopMarkers[orderId];
    if (!marker || !map) return;
    var rect = mapEl.getBoundingClientRect();
    if (rect.top < 0 || rect.bottom > window.innerHeight) {
      mapEl.scrollIntoView({ behavior: "smooth", block: "start" });
    }
    map.setView(marker.getLatLng(), Math.max(map.getZoom(), 16));
    marker.openPopup();
  }

  function fitRoute(routeId) {
    var layer = routeLayers[routeId];
    if (!layer || !map) return;
    layer.line.bringToFront();
    map.fitBounds(layer.bounds, { padding: [36, 36], maxZoom: 16 });
  }

  function initMap() {
    if (!mapEl || typeof L === "undefined") return;
    var data = mapEl.dataset;
    map = L.map(mapEl, { zoomControl: true, scrollWheelZoom: true, zoomSnap: 0.5 });
    var tilesFailed = false;
    if (data.tilesUrl) {
      L.tileLayer(data.tilesUrl, {
        attribution: data.tilesAttribution || "",
        maxZoom: 19,
        crossOrigin: false,
      })
        .on("tileerror", function () {
          if (tilesFailed) return;
          tilesFailed = true;
          setStatus("The map background is unavailable (offline?); routes and stops are still shown.");
        })
        .addTo(map);
    }
    if (data.depotLat && data.depotLon) {
      map.setView([parseFloat(data.depotLat), parseFloat(data.depotLon)], 14);
    } else {
      map.setView([43.7384, 7.4246], 13);
    }
    if (!data.geojsonUrl) {
      if (data.depotLat && data.depotLon) {
        L.marker([parseFloat(data.depotLat), parseFloat(data.depotLon)], {
          icon: depotIcon(),
          title: "Depot: " + (data.depotName || ""),
          alt: "Depot: " + (data.depotName || ""),
        }).addTo(map);
      }
      mapEl.classList.add("is-ready");
      return;
    }
    setStatus("Loading the plan…");
    fetch(data.geojsonUrl, {
      credentials: "same-origin",
      headers: { Accept: "application/geo+json, application/json" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (collection) {
        if (!tilesFailed) setStatus("");
        draw(collection);
      })
      .catch(function () {
        setStatus("The plan could not be loaded on the map. Reload the page to try again.");
      });
  }

  // Map picker: while an order's "Set the spot" form is open, a click on the map fills it.
  function initPicker() {
    if (!map) return;
    map.on("click", function (event) {
      var open = document.querySelector("details.locate-spot[open]");
      if (!open) return;
      var lat = open.querySelector("input[name=lat]");
      var lon = open.querySelector("input[name=lon]");
      if (!lat || !lon) return;
      lat.value = event.latlng.lat.toFixed(6);
      lon.value = event.latlng.lng.toFixed(6);
      setStatus("Spot picked: " + lat.value + ", " + lon.value + ". Press Place to keep it.");
    });
  }

  function initPanel() {
    document.querySelectorAll("[data-show-stop]").forEach(function (button) {
      button.addEventListener("click", function () {
        showStop(button.getAttribute("data-show-stop"));
      });
    });
    document.querySelectorAll(".route-card").forEach(function (card) {
      card.addEventListener("toggle", function () {
        if (card.open) fitRoute(card.getAttribute("data-route-id"));
      });
    });
    document.querySelectorAll("form[data-busy]").forEach(function (form) {
      form.addEventListener("submit", function () {
        var button = form.querySelector("button[type=submit]");
        if (!button) return;
        button.textContent = form.getAttribute("data-busy");
        button.disabled = true;
        form.setAttribute("aria-busy", "true");
      });
    });
  }


  // --- Live updates (dispatch_live.py): vehicles move, stop statuses change, late and
  // at-risk stops are listed first under "Needs attention". ---------------------------------

  function vehicleIcon(routeId) {
    var style = routeStyles[routeId] || {};
    var number = style.number || 0;
    var span = el("span", number ? "route-c" + ((number - 1) % 12) : "", number || "•");
    return L.divIcon({ html: span, className: "vehicle-marker", iconSize: [30, 30], iconAnchor: [15, 15] });
  }

  function moveVehicle(routeId, lat, lon) {
    if (!map || !routeId) return;
    if (!mapEl.classList.contains("is-ready") && !routeStyles[routeId]) {
      pendingVehicles.push({ route_id: routeId, lat: lat, lon: lon });
      return;
    }
    var marker = vehicleMarkers[routeId];
    var style = routeStyles[routeId] || {};
    if (!marker) {
      marker = L.marker([lat, lon], {
        icon: vehicleIcon(routeId),
        title: "Vehicle of route " + (style.number || "") + (style.driver ? " (" + style.driver + ")" : ""),
        alt: "Vehicle of route " + (style.number || ""),
        zIndexOffset: 2000,
        keyboard: false,
      }).addTo(map);
      vehicleMarkers[routeId] = marker;
    } else {
      marker.setLatLng([lat, lon]);
    }
    var count = Object.keys(vehicleMarkers).length;
    mapEl.setAttribute("data-vehicles", String(count));
    mapEl.setAttribute("data-vehicle-" + routeId, lat.toFixed(5) + "," + lon.toFixed(5));
  }

  function attentionRow(stop) {
    var li = el("li", "attention-item attention-item--" + stop.attention);
    li.setAttribute("data-order-id", stop.order_id);
    li.appendChild(el("span", "tag tag--" + stop.attention, stop.attention_text));
    li.appendChild(document.createTextNode(" "));
    var button = el("button", "link-button", stop.reference);
    button.type = "button";
    button.addEventListener("click", function () { showStop(stop.order_id); });
    li.appendChild(button);
    var detail = "window ends " + stop.window_end + (stop.expected ? " · expected " + stop.expected : "");
    li.appendChild(el("span", "muted", " " + detail));
    return li;
  }

  function updateAttention(stop) {
    var list = document.querySelector("[data-attention-list]");
    if (!list) return;
    var old = list.querySelector('[data-order-id="' + CSS.escape(stop.order_id) + '"]');
    if (old) old.remove();
    if (stop.attention) {
      var row = attentionRow(stop);
      if (stop.attention === "late") {
        // Late first: after the last late row.
        var lates = list.querySelectorAll(".attention-item--late");
        var after = lates.length ? lates[lates.length - 1].nextSibling : list.firstChild;
        list.insertBefore(row, after);
      } else {
        list.appendChild(row);
      }
    }
    var count = list.children.length;
    var counter = document.querySelector("[data-attention-count]");
    if (counter) counter.textContent = String(count);
    var empty = document.querySelector("[data-attention-empty]");
    if (empty) empty.hidden = count > 0;
  }

  function updateStop(stop) {
    var row = document.querySelector('.stop[data-order-id="' + CSS.escape(stop.order_id) + '"]');
    if (!row) return; // not a stop of the plan on show
    row.setAttribute("data-order-status", stop.status);
    row.classList.toggle("is-late", stop.attention === "late");
    row.classList.toggle("is-at-risk", stop.attention === "at_risk");
    var tag = row.querySelector("[data-stop-status]");
    if (tag) {
      tag.textContent = stop.status_text;
      tag.hidden = false;
    }
    var marker = stopMarkers[stop.order_id];
    if (marker && marker._icon) {
      marker._icon.classList.toggle("is-done", stop.status === "delivered");
      marker._icon.classList.toggle("is-late", stop.attention === "late");
    }
    updateAttention(stop);
  }

  function initLive() {
    if (!mapEl || !mapEl.dataset.eventsUrl || typeof EventSource === "undefined") return;
    var statusLine = document.querySelector("[data-live-status]");
    var source = new EventSource(mapEl.dataset.eventsUrl, { withCredentials: true });
    source.addEventListener("ready", function () {
      mapEl.setAttribute("data-live", "on");
      if (statusLine) statusLine.textContent = "";
    });
    source.addEventListener("error", function () {
      mapEl.setAttribute("data-live", "reconnecting");
      if (statusLine) statusLine.textContent = "Live updates interrupted; reconnecting…";
    });
    source.addEventListener("vehicle", function (event) {
      var v = JSON.parse(event.data);
      moveVehicle(v.route_id, v.lat, v.lon);
    });
    source.addEventListener("stop", function (event) {
      updateStop(JSON.parse(event.data));
    });
  }

  initMap();
  initPanel();
  initLive();
  initPicker();
})();
