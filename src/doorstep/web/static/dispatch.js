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
        routes += 1;
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

  initMap();
  initPanel();
  initPicker();
})();
